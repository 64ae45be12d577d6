"""Builders shared by the unit tests: inbound events shaped as a school system sends them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

SipEventFactory = Callable[..., dict[str, Any]]

_BASE_EVENT: dict[str, Any] = {
    "type": "se.sambus.school.sip-initiated.v1",
    "id": "event-1",
    "source": "skolsystem-vasteras",
    "time": "2026-11-20T09:00:00+01:00",
    "data": {
        "child": {"civicNo": "20120315-0006"},
        "schoolUnitCode": "19800001",
        "initiatedBy": "student_health",
        "reason": "mental_health",
        "invite": [
            {"organisationNumber": "212000-2080"},
            {"hsaId": "SE2321000206-1001"},
            {"hsaId": "SE2321000206-1003"},
        ],
    },
}


@pytest.fixture
def sip_event() -> SipEventFactory:
    """Makes SIP-initiated events (plain JSON form); keywords replace envelope fields or ``data`` fields."""

    def make(*, data: dict[str, Any] | None = None, **envelope: Any) -> dict[str, Any]:
        event = copy.deepcopy(_BASE_EVENT)
        event.update(envelope)
        event["data"].update(data or {})
        return event

    return make
