"""Notices sambus sends back: valid FHIR messages that say what happened, and to whom, without the child."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from sambus.contracts.fhir import EventCode
from sambus.contracts.fhir.codes import PROCESS_ID_SYSTEM
from sambus.contracts.fhir.notices import NOTICE_EVENTS, Addressee, notice

TO = Addressee(
    "vasteras-skola-norra", "Norra skolan", "https://sambus.se/fhir/NamingSystem/skolenhetskod", "19800001"
)
AT = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
ABOUT = {"system": PROCESS_ID_SYSTEM, "value": "P-1"}


@pytest.mark.parametrize("event", sorted(NOTICE_EVENTS))
def test_each_notice_is_a_valid_fhir_message_addressed_to_the_organisation(event: EventCode) -> None:
    data = notice(event=event, to=TO, about=ABOUT, text="why it happened", at=AT)

    bundle = Bundle.model_validate(data)
    header, communication, outcome = (entry.resource for entry in bundle.entry)
    assert bundle.type == "message"
    assert header.eventCoding.code == str(event)
    assert header.destination[0].receiver.identifier.value == "19800001"
    assert header.destination[0].endpoint == "urn:sambus:recipient:vasteras-skola-norra"
    assert header.response is None
    assert [f.reference for f in header.focus] == [f"urn:uuid:{communication.id}"]
    assert communication.about[0].identifier.value == "P-1"
    assert communication.recipient[0].identifier.value == "19800001"
    assert communication.payload[0].contentString == "why it happened"
    assert outcome.issue[0].diagnostics == "why it happened"


@pytest.mark.parametrize("event", sorted(NOTICE_EVENTS))
@pytest.mark.parametrize(
    "at",
    [AT, AT.replace(microsecond=5), AT.astimezone(dt.timezone(dt.timedelta(hours=1)))],
    ids=["utc", "microseconds", "plus-one-hour"],
)
def test_a_notice_is_written_as_fhir_resources_would_write_it(event: EventCode, at: dt.datetime) -> None:
    data = notice(event=event, to=TO, about=ABOUT, text="why", at=at, tasks=("task-1",))  # built as JSON

    written = Bundle.model_validate(data).model_dump(mode="json", exclude_none=True)
    assert json.dumps(data) == json.dumps(written)  # the same bytes, keys in the same order


def test_notice_ids_are_deterministic_and_differ_by_key() -> None:
    one = notice(event=EventCode.DELIVERY_DENIED, to=TO, about=ABOUT, text="x", at=AT, key="a")
    again = notice(event=EventCode.DELIVERY_DENIED, to=TO, about=ABOUT, text="x", at=AT, key="a")
    other = notice(event=EventCode.DELIVERY_DENIED, to=TO, about=ABOUT, text="x", at=AT, key="b")

    assert one["id"] == again["id"]
    assert one["id"] != other["id"]


def test_only_sambus_own_events_make_notices() -> None:
    with pytest.raises(ValueError, match="sip-initiated is not a notice"):
        notice(event=EventCode.SIP_INITIATED, to=TO, about=ABOUT, text="x", at=AT)
