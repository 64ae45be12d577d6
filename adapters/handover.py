"""The hand-over meeting to adult care, called before the young person turns 18."""

from __future__ import annotations

from sambus.adapters._build import Draft, agency_identifier
from sambus.contracts.envelope import Envelope
from sambus.contracts.events import HandoverMeetingCalled
from sambus.contracts.fhir import EventCode, ProcessStep, TaskCode
from sambus.contracts.intent import Intent


def translate_handover_meeting_called(envelope: Envelope, event: HandoverMeetingCalled) -> list[Intent]:
    """A Task to each invited agency, due on the meeting day, asked by the caller (answers go back to it)."""
    draft = Draft(envelope, event.child, EventCode.HANDOVER_MEETING_CALLED)
    for agency in event.invite:
        draft.add_task(
            code=TaskCode.HANDOVER_MEETING,
            step=ProcessStep.HANDOVER_MEETING_CALLED,
            owner=agency_identifier(agency),
            requester=agency_identifier(event.caller),
            due=event.meeting.date(),
        )
    return [draft.intent()]
