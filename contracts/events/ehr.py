"""Events sent by health and dental care record systems (EHR, dental records)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field

from sambus.contracts.events._base import EventModel
from sambus.contracts.events._common import (
    Agencies,
    Agency,
    Child,
    ProcessId,
    Reference,
    SuicideRisk,
    TaskState,
)
from sambus.contracts.events.school import Concern, SipReason
from sambus.contracts.events.social import ConsentRecorded, ConsentWithdrawn
from sambus.contracts.identifiers import HsaId


class CareUnitKind(StrEnum):
    """The kind of health or dental care unit that initiates a SIP."""

    BVC = "bvc"
    BU_HALSAN = "bu_halsan"
    BUP = "bup"
    YOUTH_CLINIC = "youth_clinic"
    PRIMARY_CARE = "primary_care"
    HABILITATION = "habilitation"
    DENTAL = "dental"


class SipInitiated(EventModel):
    """A health or dental care unit initiates a SIP and names the agencies to invite."""

    child: Child
    hsa_id: HsaId = Field(alias="hsaId", description="The initiating care unit.")
    unit_kind: CareUnitKind = Field(alias="unitKind")
    reason: SipReason
    invite: Agencies


class StatementKind(StrEnum):
    """Lag (2017:209) statements: health care's on mental and physical health, dental's on oral health."""

    MENTAL_PHYSICAL = "mental_physical"
    ORAL = "oral"


class HealthExamCompleted(EventModel):
    """Health care or dental care completed a 2017:209 examination; its statement goes to social services."""

    process_id: ProcessId = Field(alias="processId")
    child: Child
    hsa_id: HsaId = Field(alias="hsaId")
    statement: StatementKind
    document_id: Reference = Field(alias="documentId", description="The statement's id in the record system.")
    answer_to: Agency = Field(alias="answerTo")


class Lvu32ExamCompleted(EventModel):
    """Health care completed an LVU § 32 medical exam; the report goes to the ordering social board."""

    process_id: ProcessId = Field(alias="processId")
    child: Child
    hsa_id: HsaId = Field(alias="hsaId")
    document_id: Reference = Field(alias="documentId")
    answer_to: Agency = Field(alias="answerTo")


class InvestigationInfoProvided(EventModel):
    """Health or dental care answers a social-services investigation's request with records.

    The answer goes to the social services that asked (no consent needed: the duty to inform runs to the
    social board only); the documents are named by id, their content stays in the record system.
    """

    process_id: ProcessId = Field(alias="processId")
    child: Child
    hsa_id: HsaId = Field(alias="hsaId")
    task_id: Reference = Field(alias="taskId", description="The id of the information request answered.")
    document_ids: tuple[Reference, ...] = Field(alias="documentIds", min_length=1, max_length=20)
    answer_to: Agency = Field(alias="answerTo")


class ConsultationAnswered(EventModel):
    """A care contact answers a consultation with its combined assessment of the child's health.

    The assessment is a document named by id (its content stays in the record system); the answer goes to the
    social services that asked (no consent needed).
    """

    process_id: ProcessId = Field(alias="processId")
    child: Child
    hsa_id: HsaId = Field(alias="hsaId", description="The care contact that answers.")
    task_id: Reference = Field(alias="taskId", description="The id of the consultation Task answered.")
    document_id: Reference = Field(
        alias="documentId", description="The combined assessment of the child's health."
    )
    answer_to: Agency = Field(alias="answerTo")


class TaskStatus(EventModel):
    """A care unit reports the state of a Task it received, to the agency that sent it."""

    process_id: ProcessId = Field(alias="processId")
    child: Child
    task_id: Reference = Field(alias="taskId")
    status: TaskState
    hsa_id: HsaId = Field(alias="hsaId")
    answer_to: Agency = Field(alias="answerTo")


class CareContactStated(EventModel):
    """A care unit states whether it has an active care contact with the child.

    BUP and habilitation are invited to a SIP only with one; the care side states it, not the inviter.
    """

    child: Child
    hsa_id: HsaId = Field(alias="hsaId", description="The care unit that has (or no longer has) the contact.")
    active: bool
    at: AwareDatetime = Field(description="Since when the contact is active, or when it ended.")


class ConcernReported(Concern):
    """A care unit reports concern (orosanmälan) to social services where the child lives."""

    hsa_id: HsaId = Field(alias="hsaId")


class SuicideRiskReported(SuicideRisk):
    """A health or dental care unit sees acute suicide risk: social services and BUP are alerted at once."""

    hsa_id: HsaId = Field(alias="hsaId", description="The care unit that saw the risk.")


class FhirConsent(EventModel):
    """A FHIR R4 ``Consent`` resource as ``data``, read into the same consent the JSON event gives.

    The resource is checked with ``fhir.resources`` and then against sambus's consent profile (see the
    integrator's guide): the child in ``patient.identifier``, purpose in ``category``, agency kinds in
    ``provision.actor``, guardians in ``performer``.
    """

    model_config = EventModel.model_config | {"extra": "allow"}

    resource_type: str = Field(alias="resourceType", pattern="^Consent$")

    def resource(self) -> dict[str, Any]:
        """The whole Consent resource as sent."""
        return self.model_dump(by_alias=True)


__all__ = [
    "CareContactStated",
    "CareUnitKind",
    "ConcernReported",
    "ConsentRecorded",
    "ConsentWithdrawn",
    "ConsultationAnswered",
    "FhirConsent",
    "HealthExamCompleted",
    "InvestigationInfoProvided",
    "Lvu32ExamCompleted",
    "SipInitiated",
    "StatementKind",
    "SuicideRiskReported",
    "TaskStatus",
]
