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
    task_status_notice,
)
from sambus.contracts.envelope import Envelope, describe_validation_error
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.events import ehr
from sambus.contracts.events import social as social_events
from sambus.contracts.fhir import EventCode, ProcessStep, TaskCode
from sambus.contracts.fhir.care_contact import care_contact
from sambus.contracts.fhir.codes import SOURCE_ENDPOINT_PREFIX, STATEMENT_SYSTEM
from sambus.contracts.fhir.consent import consent_fields, is_objection
from sambus.contracts.fhir.task import coding
from sambus.contracts.intent import Intent


def translate_sip_initiated(envelope: Envelope, event: ehr.SipInitiated) -> list[Intent]:
    """A care unit's SIP initiative: a Task inviting each named agency."""
    return sip_invitations(
        envelope, event.child, event.invite, requester=hsa(event.hsa_id), reason=event.reason
    )


def _statement(envelope: Envelope, document_id: str, kind: str) -> dict[str, Any]:
    """``Task.output``: a statement or record, a DocumentReference by its id in the sending record system."""
    return {
        "type": coding(STATEMENT_SYSTEM, kind),
        "valueReference": {
            "type": "DocumentReference",
            "identifier": {"system": f"{SOURCE_ENDPOINT_PREFIX}{envelope.source}", "value": document_id},
        },
    }


_EXAMINATION = {
    ehr.StatementKind.MENTAL_PHYSICAL: TaskCode.HEALTH_EXAMINATION,
    ehr.StatementKind.ORAL: TaskCode.DENTAL_EXAMINATION,
}


def translate_health_exam_completed(envelope: Envelope, event: ehr.HealthExamCompleted) -> list[Intent]:
    """A 2017:209 statement (mental+physical, or oral): the examining unit's exam Task, completed with it."""
    draft = Draft(envelope, event.child, EventCode.HEALTH_EXAM_COMPLETED, process_id=event.process_id)
    draft.sender = hsa(event.hsa_id)
    draft.add_task(
        code=_EXAMINATION[event.statement],
        step=ProcessStep.EXAM_COMPLETED,
        owner=hsa(event.hsa_id),
        requester=agency_identifier(event.answer_to),
        status="completed",
        update=True,
        outputs=[_statement(envelope, event.document_id, str(event.statement))],
    )
    return [draft.intent()]


def translate_lvu32_exam_completed(envelope: Envelope, event: ehr.Lvu32ExamCompleted) -> list[Intent]:
    """An LVU § 32 exam report: the examining unit's exam Task, completed with it, for the social board."""
    draft = Draft(envelope, event.child, EventCode.LVU32_EXAM_COMPLETED, process_id=event.process_id)
    draft.sender = hsa(event.hsa_id)
    draft.add_task(
        code=TaskCode.LVU32_EXAMINATION,
        step=ProcessStep.EXAM_COMPLETED,
        owner=hsa(event.hsa_id),
        requester=agency_identifier(event.answer_to),
        status="completed",
        update=True,
        outputs=[_statement(envelope, event.document_id, "lvu32")],
    )
    return [draft.intent()]


def translate_investigation_info_provided(
    envelope: Envelope, event: ehr.InvestigationInfoProvided
) -> list[Intent]:
    """Records for an investigation: the information request ``taskId``, completed with them."""
    draft = Draft(envelope, event.child, EventCode.INVESTIGATION_INFO_PROVIDED, process_id=event.process_id)
    draft.sender = hsa(event.hsa_id)
    draft.add_task(
        code=TaskCode.PROVIDE_INFORMATION,
        step=ProcessStep.INFORMATION_PROVIDED,
        owner=hsa(event.hsa_id),
        requester=agency_identifier(event.answer_to),
        status="completed",
        update=True,
        task_id=event.task_id,
        outputs=[_statement(envelope, document, "records") for document in event.document_ids],
    )
    return [draft.intent()]


def translate_consultation_answered(envelope: Envelope, event: ehr.ConsultationAnswered) -> list[Intent]:
    """A care contact's answer to a consultation: its consultation Task, completed with the assessment."""
    draft = Draft(envelope, event.child, EventCode.CONSULTATION_ANSWERED, process_id=event.process_id)
    draft.sender = hsa(event.hsa_id)
    draft.add_task(
        code=TaskCode.CONSULTATION,
        step=ProcessStep.CONSULTATION_ANSWERED,
        owner=hsa(event.hsa_id),
        requester=agency_identifier(event.answer_to),
        status="completed",
        update=True,
        task_id=event.task_id,
        outputs=[_statement(envelope, event.document_id, "combined-assessment")],
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
    except (TypeError, LookupError) as exc:  # fhir.resources on a resourceType it cannot look up
        raise InvalidEventError(
            "not a valid FHIR Consent: a resource in it has a missing or unknown resourceType", field="data"
        ) from exc
    if is_objection(resource):
        raise InvalidEventError(
            "a Consent with provision.type deny is the child's objection: send ehr.child-objected, which "
            "names who heard the child",
            field="data.provision.type",
        )
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
