"""School and preschool events, translated into canonical FHIR messages."""

from __future__ import annotations

from sambus.adapters._build import (
    Draft,
    agency_identifier,
    concern_report,
    kontaktcenter_referral,
    routing_address,
    sip_invitations,
    suicide_risk_alert,
    task_status_notice,
)
from sambus.contracts.agencies import AgencyKind
from sambus.contracts.envelope import Envelope
from sambus.contracts.events import school
from sambus.contracts.fhir import SCHOOL_UNIT_SYSTEM, EventCode, ProcessStep, TaskCode
from sambus.contracts.intent import Intent


def _school_unit(code: str) -> dict[str, str]:
    return {"system": SCHOOL_UNIT_SYSTEM, "value": code}


def translate_sip_initiated(envelope: Envelope, event: school.SipInitiated) -> list[Intent]:
    """A school-initiated SIP becomes one message: a Task inviting each named agency.

    The router later gives each invited agency only its own Task.
    """
    return sip_invitations(
        envelope,
        event.child,
        event.invite,
        requester=_school_unit(event.school_unit_code),
        reason=event.reason,
    )


def translate_sip_answered(envelope: Envelope, event: school.SipAnswered) -> list[Intent]:
    """The school's answer to a SIP invitation: its SIP Task, accepted or rejected, for the inviter."""
    draft = Draft(envelope, event.child, EventCode.SIP_INVITATION_ANSWERED, process_id=event.process_id)
    draft.sender = _school_unit(event.school_unit_code)
    accepted = event.answer is school.Answer.ACCEPTED
    draft.add_task(
        code=TaskCode.SIP_PARTICIPATION,
        step=ProcessStep.SIP_ACCEPTED if accepted else ProcessStep.SIP_DECLINED,
        owner=_school_unit(event.school_unit_code),
        requester=agency_identifier(event.answer_to),
        status="accepted" if accepted else "rejected",
        update=True,
    )
    return [draft.intent()]


def translate_concern_reported(envelope: Envelope, event: school.ConcernReported) -> list[Intent]:
    """A report of concern goes to social services of the child's municipality (kept in Patient.address)."""
    return concern_report(envelope, event, requester=_school_unit(event.school_unit_code))


def translate_kontaktcenter_referral(envelope: Envelope, event: school.KontaktcenterReferral) -> list[Intent]:
    """Student health's referral to Kontaktcenter, after the guardians' consent."""
    return kontaktcenter_referral(
        envelope,
        event.child,
        requester=_school_unit(event.school_unit_code),
        reason=event.reason,
        consent_id=event.consent_id,
    )


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


def translate_task_status(envelope: Envelope, event: school.TaskStatus) -> list[Intent]:
    """The school's Task status (e.g. a placement notice accepted), for the agency that sent the Task."""
    return task_status_notice(
        envelope,
        event.child,
        process_id=event.process_id,
        task_id=event.task_id,
        status=event.status,
        answer_to=event.answer_to,
        answerer=_school_unit(event.school_unit_code),
    )


def translate_suicide_risk_reported(envelope: Envelope, event: school.SuicideRiskReported) -> list[Intent]:
    """Acute suicide risk: urgent Tasks to social services where the child lives and to BUP."""
    return suicide_risk_alert(envelope, event, requester=_school_unit(event.school_unit_code))
