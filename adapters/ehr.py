"""Health and dental care events, translated into canonical FHIR messages."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.consent import Consent
from pydantic import ValidationError

from sambus.adapters import social
from sambus.adapters._build import (
    Draft,
    agency_identifier,
    concern_report,
    hsa,
    sip_invitations,
    suicide_risk_alert,
    task_state_output,
    task_status_notice,
)
from sambus.contracts.envelope import Envelope, describe_validation_error
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.events import TaskState, ehr
from sambus.contracts.events import social as social_events
from sambus.contracts.fhir import EventCode, ProcessStep, TaskCode
from sambus.contracts.fhir.care_contact import care_contact
from sambus.contracts.fhir.codes import STATEMENT_SYSTEM
from sambus.contracts.fhir.consent import consent_fields
from sambus.contracts.fhir.task import coding
from sambus.contracts.intent import Intent


def translate_sip_initiated(envelope: Envelope, event: ehr.SipInitiated) -> list[Intent]:
    """A care unit's SIP initiative: a Task inviting each named agency."""
    return sip_invitations(
        envelope, event.child, event.invite, requester=hsa(event.hsa_id), reason=event.reason
    )


def _statement(document_id: str, kind: str) -> dict[str, Any]:
    return {
        "type": coding(STATEMENT_SYSTEM, kind),
        "valueReference": {"type": "DocumentReference", "identifier": {"value": document_id}},
    }


def translate_health_exam_completed(envelope: Envelope, event: ehr.HealthExamCompleted) -> list[Intent]:
    """A 2017:209 statement (mental+physical, or oral): the examining unit's completed Task, for the asker."""
    draft = Draft(envelope, event.child, EventCode.HEALTH_EXAM_COMPLETED, process_id=event.process_id)
    draft.add_task(
        code=TaskCode.EXAM_STATEMENT,
        step=ProcessStep.EXAM_COMPLETED,
        owner=hsa(event.hsa_id),
        requester=agency_identifier(event.answer_to),
        status="completed",
        outputs=[_statement(event.document_id, str(event.statement))],
    )
    return [draft.intent()]


def translate_lvu32_exam_completed(envelope: Envelope, event: ehr.Lvu32ExamCompleted) -> list[Intent]:
    """An LVU § 32 exam report: a completed Task of the examining unit, for the ordering social board."""
    draft = Draft(envelope, event.child, EventCode.LVU32_EXAM_COMPLETED, process_id=event.process_id)
    draft.add_task(
        code=TaskCode.EXAM_STATEMENT,
        step=ProcessStep.EXAM_COMPLETED,
        owner=hsa(event.hsa_id),
        requester=agency_identifier(event.answer_to),
        status="completed",
        outputs=[_statement(event.document_id, "lvu32")],
    )
    return [draft.intent()]


def translate_investigation_info_provided(
    envelope: Envelope, event: ehr.InvestigationInfoProvided
) -> list[Intent]:
    """Records for a social-services investigation: a completed Task of the unit, for the social services."""
    draft = Draft(envelope, event.child, EventCode.INVESTIGATION_INFO_PROVIDED, process_id=event.process_id)
    draft.add_task(
        code=TaskCode.INFORMATION_PROVIDED,
        step=ProcessStep.INFORMATION_PROVIDED,
        owner=hsa(event.hsa_id),
        requester=agency_identifier(event.answer_to),
        status="completed",
        outputs=[
            task_state_output(event.task_id, TaskState.COMPLETED),
            *(
                {
                    "type": coding(STATEMENT_SYSTEM, "records"),
                    "valueReference": {"type": "DocumentReference", "identifier": {"value": document}},
                }
                for document in event.document_ids
            ),
        ],
    )
    return [draft.intent()]


def translate_task_status(envelope: Envelope, event: ehr.TaskStatus) -> list[Intent]:
    """A care unit's Task status, as a Task for the sending agency to take note of."""
    return task_status_notice(
        envelope,
        event.child,
        process_id=event.process_id,
        task_id=event.task_id,
        status=event.status,
        answer_to=event.answer_to,
        answerer=hsa(event.hsa_id),
    )


def translate_care_contact_stated(envelope: Envelope, event: ehr.CareContactStated) -> list[Intent]:
    """A unit's care contact with the child, for the router (an ``EpisodeOfCare``; nothing is delivered)."""
    draft = Draft(envelope, event.child, EventCode.CARE_CONTACT_STATED)
    draft.focus.append(
        care_contact(
            resource_id=draft.id_for("care-contact"),
            patient_ref=draft.patient_ref,
            unit=hsa(event.hsa_id),
            active=event.active,
            at=event.at,
            security=draft.security,
        )
    )
    return [draft.intent()]


def translate_concern_reported(envelope: Envelope, event: ehr.ConcernReported) -> list[Intent]:
    """A report of concern to social services of the child's municipality."""
    return concern_report(envelope, event, requester=hsa(event.hsa_id))


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


def translate_suicide_risk_reported(envelope: Envelope, event: ehr.SuicideRiskReported) -> list[Intent]:
    """Acute suicide risk: urgent Tasks to social services where the child lives and to BUP."""
    return suicide_risk_alert(envelope, event, requester=hsa(event.hsa_id))
