"""SIP lifecycle events (meeting, plan, follow-up, closure), translated into canonical FHIR messages.

Each participant has one SIP Task from the invitation on (:data:`TaskCode.SIP_PARTICIPATION`, the same id
and ``intent`` ``order`` in every message): ``requested`` when invited, ``accepted`` / ``rejected`` when it
answers, ``in-progress`` from the meeting on, ``completed`` when the SIP closes (``cancelled`` when it was
withdrawn); ``businessStatus`` names the step.
"""

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
        draft.add_task(
            code=TaskCode.SIP_PARTICIPATION,
            owner=agency_identifier(agency),
            requester=agency_identifier(event.organizer),
            update=True,
            **task,  # type: ignore[arg-type]
        )


def translate_meeting_scheduled(envelope: Envelope, event: sip.MeetingScheduled) -> list[Intent]:
    """The SIP meeting is set: each participant's SIP Task in progress, due at the meeting."""
    draft = Draft(envelope, event.child, EventCode.SIP_MEETING_SCHEDULED, process_id=event.process_id)
    _each_participant(
        draft,
        event,
        step=ProcessStep.SIP_MEETING_SCHEDULED,
        status="in-progress",
        due=event.start.date(),
    )
    return [draft.intent()]


def translate_meeting_held(envelope: Envelope, event: sip.MeetingHeld) -> list[Intent]:
    """The SIP meeting took place: the SIP Task of each agency that attended, still in progress."""
    draft = Draft(envelope, event.child, EventCode.SIP_MEETING_HELD, process_id=event.process_id)
    _each_participant(draft, event, step=ProcessStep.SIP_MEETING_HELD, status="in-progress")
    return [draft.intent()]


def translate_plan_established(envelope: Envelope, event: sip.PlanEstablished) -> list[Intent]:
    """The SIP plan as a CarePlan; each participant's SIP Task, in progress, acts on it (``Task.focus``)."""
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
            code=TaskCode.SIP_PARTICIPATION,
            step=ProcessStep.SIP_PLAN_ESTABLISHED,
            owner=owner,
            requester=agency_identifier(event.lead_coordinator),
            status="in-progress",
            update=True,
            focus=urn(plan_id),
            due=event.follow_up,
        )
    return [draft.intent()]


def translate_lead_coordinator_changed(envelope: Envelope, event: sip.LeadCoordinatorChanged) -> list[Intent]:
    """A new lead coordinator: each participant's SIP Task, in progress, focused on the new coordinator."""
    draft = Draft(envelope, event.child, EventCode.SIP_LEAD_COORDINATOR_CHANGED, process_id=event.process_id)
    coordinator_ref = staff_person(
        draft, agency_identifier(event.lead_coordinator), event.lead_coordinator_person, event.since
    )
    _each_participant(
        draft,
        event,
        step=ProcessStep.SIP_LEAD_COORDINATOR_CHANGED,
        status="in-progress",
        focus=coordinator_ref,
    )
    return [draft.intent()]


def translate_followed_up(envelope: Envelope, event: sip.FollowedUp) -> list[Intent]:
    """The follow-up: each participant's SIP Task, in progress; the next follow-up date as its due date."""
    draft = Draft(envelope, event.child, EventCode.SIP_FOLLOWED_UP, process_id=event.process_id)
    _each_participant(
        draft, event, step=ProcessStep.SIP_FOLLOWED_UP, status="in-progress", due=event.next_follow_up
    )
    return [draft.intent()]


_CANCELLED = frozenset({sip.ClosureReason.WITHDRAWN, sip.ClosureReason.DECLINED})
"""Closure reasons that end the SIP without its plan carried out."""


def translate_closed(envelope: Envelope, event: sip.Closed) -> list[Intent]:
    """The SIP closed: each participant's SIP Task completed (cancelled if withdrawn or declined), why."""
    draft = Draft(envelope, event.child, EventCode.SIP_CLOSED, process_id=event.process_id)
    _each_participant(
        draft,
        event,
        step=ProcessStep.SIP_CLOSED,
        status="cancelled" if event.reason in _CANCELLED else "completed",
        status_reason=coding(SIP_CLOSURE_SYSTEM, str(event.reason)),
    )
    return [draft.intent()]
