"""SIP lifecycle events (meeting, plan, follow-up, closure), translated into canonical FHIR messages."""

from __future__ import annotations

from sambus.adapters._build import Draft, agency_identifier, staff_person
from sambus.contracts.envelope import Envelope
from sambus.contracts.events import sip
from sambus.contracts.fhir import EventCode, ProcessStep, TaskCode, urn
from sambus.contracts.fhir.careplan import sip_care_plan
from sambus.contracts.fhir.codes import SIP_CLOSURE_SYSTEM
from sambus.contracts.fhir.task import Identifier, coding
from sambus.contracts.intent import Intent


def _each_participant(
    draft: Draft,
    event: sip.MeetingScheduled | sip.MeetingHeld | sip.FollowedUp | sip.Closed | sip.LeadCoordinatorChanged,
    **task: object,
) -> None:
    for agency in event.participants:
        draft.add_task(owner=agency_identifier(agency), requester=agency_identifier(event.organizer), **task)  # type: ignore[arg-type]


def translate_meeting_scheduled(envelope: Envelope, event: sip.MeetingScheduled) -> list[Intent]:
    """The SIP meeting: a Task per participating agency, due at the meeting."""
    draft = Draft(envelope, event.child, EventCode.SIP_MEETING_SCHEDULED, process_id=event.process_id)
    _each_participant(
        draft,
        event,
        code=TaskCode.SIP_MEETING,
        step=ProcessStep.SIP_MEETING_SCHEDULED,
        due=event.start.date(),
    )
    return [draft.intent()]


def translate_meeting_held(envelope: Envelope, event: sip.MeetingHeld) -> list[Intent]:
    """The SIP meeting took place: a completed meeting Task per agency that attended."""
    draft = Draft(envelope, event.child, EventCode.SIP_MEETING_HELD, process_id=event.process_id)
    _each_participant(
        draft,
        event,
        code=TaskCode.SIP_MEETING,
        step=ProcessStep.SIP_MEETING_HELD,
        status="completed",
    )
    return [draft.intent()]


def translate_plan_established(envelope: Envelope, event: sip.PlanEstablished) -> list[Intent]:
    """The SIP plan as a CarePlan, and a Task per participating agency pointing at it."""
    draft = Draft(envelope, event.child, EventCode.SIP_PLAN_ESTABLISHED, process_id=event.process_id)
    plan_id = draft.id_for("careplan")
    participants: list[Identifier] = [agency_identifier(a) for a in event.participants]
    lead = agency_identifier(event.lead_coordinator)
    coordinator_ref = staff_person(draft, lead, event.lead_coordinator_person)
    draft.supporting.append(
        sip_care_plan(
            plan_id=plan_id,
            process_id=draft.process,
            patient_ref=draft.patient_ref,
            created=envelope.time,
            lead_coordinator=lead,
            participants=participants,
            activities=[(agency_identifier(a.agency), str(a.action)) for a in event.activities],
            follow_up=event.follow_up,
            coordinator_ref=coordinator_ref,
            security=draft.security,
        )
    )
    for owner in participants:
        draft.add_task(
            code=TaskCode.SIP_PLAN_ACTIVITY,
            step=ProcessStep.SIP_PLAN_ESTABLISHED,
            owner=owner,
            requester=agency_identifier(event.lead_coordinator),
            focus=urn(plan_id),
            due=event.follow_up,
        )
    return [draft.intent()]


def translate_lead_coordinator_changed(envelope: Envelope, event: sip.LeadCoordinatorChanged) -> list[Intent]:
    """A new lead coordinator: a Task per participant, focused on the new coordinator's PractitionerRole."""
    draft = Draft(envelope, event.child, EventCode.SIP_LEAD_COORDINATOR_CHANGED, process_id=event.process_id)
    coordinator_ref = staff_person(
        draft, agency_identifier(event.lead_coordinator), event.lead_coordinator_person, event.since
    )
    _each_participant(
        draft,
        event,
        code=TaskCode.SIP_LEAD_COORDINATOR,
        step=ProcessStep.SIP_LEAD_COORDINATOR_CHANGED,
        focus=coordinator_ref,
    )
    return [draft.intent()]


def translate_followed_up(envelope: Envelope, event: sip.FollowedUp) -> list[Intent]:
    """The follow-up: a Task per participant; the next follow-up date as its due date."""
    draft = Draft(envelope, event.child, EventCode.SIP_FOLLOWED_UP, process_id=event.process_id)
    _each_participant(
        draft, event, code=TaskCode.SIP_FOLLOW_UP, step=ProcessStep.SIP_FOLLOWED_UP, due=event.next_follow_up
    )
    return [draft.intent()]


def translate_closed(envelope: Envelope, event: sip.Closed) -> list[Intent]:
    """The SIP closed: each participant is told, with the reason."""
    draft = Draft(envelope, event.child, EventCode.SIP_CLOSED, process_id=event.process_id)
    _each_participant(
        draft,
        event,
        code=TaskCode.SIP_CLOSURE,
        step=ProcessStep.SIP_CLOSED,
        reason=coding(SIP_CLOSURE_SYSTEM, str(event.reason)),
    )
    return [draft.intent()]
