"""School and preschool events, translated into canonical FHIR messages."""

from __future__ import annotations

from adapters._build import Draft, agency_identifier, routing_address
from contracts.agencies import AgencyKind
from contracts.envelope import Envelope
from contracts.events import school
from contracts.fhir import SCHOOL_UNIT_SYSTEM, SIP_REASON_SYSTEM, EventCode, ProcessStep, TaskCode
from contracts.fhir.codes import CONCERN_SYSTEM
from contracts.fhir.task import coding, consent_input
from contracts.intent import Intent


def _school_unit(code: str) -> dict[str, str]:
    return {"system": SCHOOL_UNIT_SYSTEM, "value": code}


def translate_sip_initiated(envelope: Envelope, event: school.SipInitiated) -> list[Intent]:
    """A school-initiated SIP becomes one message: a Task inviting each named agency.

    The router later gives each invited agency only its own Task.
    """
    draft = Draft(envelope, event.child, EventCode.SIP_INITIATED)
    for invitee in event.invite:
        draft.add_task(
            code=TaskCode.SIP_INVITATION,
            step=ProcessStep.SIP_INVITED,
            owner=agency_identifier(invitee),
            requester=_school_unit(event.school_unit_code),
            intent="proposal",
            reason=coding(SIP_REASON_SYSTEM, str(event.reason)),
        )
    return [draft.intent()]


def translate_sip_answered(envelope: Envelope, event: school.SipAnswered) -> list[Intent]:
    """The school's answer to a SIP invitation, as a Task for the inviting agency to take note of."""
    draft = Draft(envelope, event.child, EventCode.SIP_INVITATION_ANSWERED, process_id=event.process_id)
    accepted = event.answer is school.Answer.ACCEPTED
    draft.add_task(
        code=TaskCode.SIP_ANSWER,
        step=ProcessStep.SIP_ACCEPTED if accepted else ProcessStep.SIP_DECLINED,
        owner=agency_identifier(event.answer_to),
        requester=_school_unit(event.school_unit_code),
        intent="proposal",
    )
    return [draft.intent()]


def translate_concern_reported(envelope: Envelope, event: school.ConcernReported) -> list[Intent]:
    """A report of concern goes to social services of the child's municipality (kept in Patient.address)."""
    draft = Draft(envelope, event.child, EventCode.CONCERN_REPORTED)
    draft.address = {"district": event.residence_municipality}
    draft.add_task(
        code=TaskCode.ASSESS_CONCERN,
        step=ProcessStep.CONCERN_REPORTED,
        owner=routing_address(f"{AgencyKind.SOCIAL_SERVICES}@{event.residence_municipality}"),
        requester=_school_unit(event.school_unit_code),
        reason=coding(CONCERN_SYSTEM, str(event.category)),
    )
    return [draft.intent()]


def translate_kontaktcenter_referral(envelope: Envelope, event: school.KontaktcenterReferral) -> list[Intent]:
    """A referral to Kontaktcenter: a Task and its ServiceRequest."""
    draft = Draft(envelope, event.child, EventCode.KONTAKTCENTER_REFERRAL)
    draft.add_task(
        code=TaskCode.KONTAKTCENTER_REFERRAL,
        step=ProcessStep.REFERRED,
        owner=routing_address(AgencyKind.KONTAKTCENTER),
        requester=_school_unit(event.school_unit_code),
        request=True,
        reason=coding(SIP_REASON_SYSTEM, str(event.reason)),
        inputs=[consent_input(event.consent_id)],
    )
    return [draft.intent()]


def translate_newly_arrived_referral(envelope: Envelope, event: school.NewlyArrivedReferral) -> list[Intent]:
    """A newly arrived child who was not health-examined is referred to primary care (lag 2008:344)."""
    draft = Draft(envelope, event.child, EventCode.NEWLY_ARRIVED_HEALTH_REFERRAL)
    draft.add_task(
        code=TaskCode.NEWLY_ARRIVED_HEALTH_EXAMINATION,
        step=ProcessStep.EXAM_REQUESTED,
        owner=routing_address(AgencyKind.PRIMARY_CARE),
        requester=_school_unit(event.school_unit_code),
        request=True,
    )
    return [draft.intent()]
