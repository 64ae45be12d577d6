"""Inbound agency events: one frozen pydantic model per event type, registered by its versioned type."""

from __future__ import annotations

from contracts.events._base import EventModel
from contracts.events.school import Child, Invitee, SipInitiated, SipInitiator, SipReason

EVENT_TYPES: dict[str, type[EventModel]] = {
    "se.sambus.school.sip-initiated.v1": SipInitiated,
}
"""Every inbound event type, by the versioned name an envelope declares."""

__all__ = ["EVENT_TYPES", "Child", "EventModel", "Invitee", "SipInitiated", "SipInitiator", "SipReason"]
