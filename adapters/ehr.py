"""Health and dental care events, translated into canonical FHIR messages."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.consent import Consent
from pydantic import ValidationError

from adapters import social
from adapters._build import TASK_STEP, Draft, agency_identifier, hsa, routing_address, task_state_output
from contracts.agencies import AgencyKind
from contracts.envelope import Envelope, describe_validation_error
from contracts.errors import InvalidEventError
from contracts.events import ehr
from contracts.events import social as social_events
from contracts.fhir import SIP_REASON_SYSTEM, EventCode, ProcessStep, TaskCode
from contracts.fhir.codes import CONCERN_SYSTEM, STATEMENT_SYSTEM
from contracts.fhir.consent import consent_fields
from contracts.fhir.task import coding
from contracts.intent import Intent


def translate_sip_initiated(envelope: Envelope, event: ehr.SipInitiated) -> list[Intent]:
    """A care unit's SIP initiative: a Task inviting each named agency."""
    draft = Draft(envelope, event.child, EventCode.SIP_INITIATED)
    for invitee in event.invite:
        draft.add_task(
            code=TaskCode.SIP_INVITATION,
            step=ProcessStep.SIP_INVITED,
            owner=agency_identifier(invitee),
            requester=hsa(event.hsa_id),
            intent="proposal",
            reason=coding(SIP_REASON_SYSTEM, str(event.reason)),
        )
    return [draft.intent()]


def _statement(document_id: str, kind: str) -> dict[str, Any]:
    return {
        "type": coding(STATEMENT_SYSTEM, kind),
        "valueReference": {"type": "DocumentReference", "identifier": {"value": document_id}},
    }


def translate_health_exam_completed(envelope: Envelope, event: ehr.HealthExamCompleted) -> list[Intent]:
    """A 2017:209 statement (mental+physical, or oral) for social services to take note of."""
    draft = Draft(envelope, event.child, EventCode.HEALTH_EXAM_COMPLETED, process_id=event.process_id)
    draft.add_task(
        code=TaskCode.EXAM_STATEMENT,
        step=ProcessStep.EXAM_COMPLETED,
        owner=agency_identifier(event.answer_to),
        requester=hsa(event.hsa_id),
        outputs=[_statement(event.document_id, str(event.statement))],
    )
    return [draft.intent()]


def translate_lvu32_exam_completed(envelope: Envelope, event: ehr.Lvu32ExamCompleted) -> list[Intent]:
    """An LVU § 32 exam report for the ordering social board."""
    draft = Draft(envelope, event.child, EventCode.LVU32_EXAM_COMPLETED, process_id=event.process_id)
    draft.add_task(
        code=TaskCode.EXAM_STATEMENT,
        step=ProcessStep.EXAM_COMPLETED,
        owner=agency_identifier(event.answer_to),
        requester=hsa(event.hsa_id),
        outputs=[_statement(event.document_id, "lvu32")],
    )
    return [draft.intent()]


def translate_task_status(envelope: Envelope, event: ehr.TaskStatus) -> list[Intent]:
    """A care unit's Task status, as a Task for the sending agency to take note of."""
    draft = Draft(envelope, event.child, EventCode.TASK_STATUS_CHANGED, process_id=event.process_id)
    draft.add_task(
        code=TaskCode.TASK_STATUS,
        step=TASK_STEP[event.status],
        owner=agency_identifier(event.answer_to),
        requester=hsa(event.hsa_id),
        outputs=[task_state_output(event.task_id, event.status)],
    )
    return [draft.intent()]


def translate_concern_reported(envelope: Envelope, event: ehr.ConcernReported) -> list[Intent]:
    """A report of concern to social services of the child's municipality."""
    draft = Draft(envelope, event.child, EventCode.CONCERN_REPORTED)
    draft.address = {"district": event.residence_municipality}
    draft.add_task(
        code=TaskCode.ASSESS_CONCERN,
        step=ProcessStep.CONCERN_REPORTED,
        owner=routing_address(f"{AgencyKind.SOCIAL_SERVICES}@{event.residence_municipality}"),
        requester=hsa(event.hsa_id),
        reason=coding(CONCERN_SYSTEM, str(event.category)),
    )
    return [draft.intent()]


def translate_fhir_consent(envelope: Envelope, event: ehr.FhirConsent) -> list[Intent]:
    """An inbound FHIR R4 ``Consent`` (sambus's consent profile), read into the same message as JSON.

    Raises:
        InvalidEventError: the resource is not a valid FHIR Consent, or lacks what the profile needs.
    """
    resource = event.resource()
    try:
        Consent.model_validate(resource)
    except ValidationError as exc:
        raise describe_validation_error(exc, prefix="data.") from exc
    try:
        fields = consent_fields(resource)
    except ValueError as exc:
        raise InvalidEventError(str(exc), field="data") from exc
    try:
        recorded = social_events.ConsentRecorded.model_validate(fields)
    except ValidationError as exc:
        raise describe_validation_error(exc, prefix="data.") from exc
    return social.translate_consent_recorded(envelope, recorded)
