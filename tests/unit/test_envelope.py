"""Reading inbound events: the envelope, the CloudEvents binary binding and the errors a sender sees."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sambus.adapters import translate_message
from sambus.contracts.envelope import Envelope, open_envelope, parse_event
from sambus.contracts.errors import InvalidEventError, SambusError
from sambus.contracts.events import SipInitiated
from sambus.contracts.identifiers import PERSONNUMMER_SYSTEM

CHILD = "201203150006"


def _encode(event: object) -> bytes:
    return json.dumps(event).encode("utf-8")


def _binary(event: dict) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The same event in the CloudEvents Kafka binary binding: attributes in headers, data as the value."""
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_type", event["type"].encode()),
        ("ce_id", event["id"].encode()),
        ("ce_source", event["source"].encode()),
        ("ce_time", event["time"].encode()),
        ("content-type", b"application/json"),
    ]
    return _encode(event["data"]), headers


def _assert_no_personnummer(error: Exception) -> None:
    text = str(error)
    assert CHILD not in text
    assert "20120315-0006" not in text
    assert "201203150007" not in text
    assert "20120315-0007" not in text


def test_plain_json_envelope_is_read(sip_event):
    envelope = open_envelope(_encode(sip_event()))

    assert envelope.type == "se.sambus.school.sip-initiated.v1"
    assert envelope.id == "event-1"
    assert envelope.source == "skolsystem-vasteras"
    assert envelope.time == dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
    assert envelope.data["schoolUnitCode"] == "19800001"


def test_parse_event_gives_the_typed_event(sip_event):
    event = parse_event(open_envelope(_encode(sip_event())))

    assert isinstance(event, SipInitiated)
    assert event.child.civic_no == CHILD
    assert len(event.invite) == 3


def test_binary_binding_envelope_equals_plain_json_envelope(sip_event):
    value, headers = _binary(sip_event())

    assert open_envelope(value, headers) == open_envelope(_encode(sip_event()))


def test_binary_binding_translates_like_plain_json(sip_event):
    value, headers = _binary(sip_event())

    assembled = dt.datetime(2027, 1, 1, 12, 0, tzinfo=dt.UTC)
    from_binary = translate_message(value, headers, clock=lambda: assembled)
    from_plain = translate_message(_encode(sip_event()), clock=lambda: assembled)

    assert from_binary == from_plain
    assert len(from_binary) == 1


def test_binary_binding_is_recognised_by_ce_type_alone(sip_event):
    value, headers = _binary(sip_event())
    without_specversion = [(k, v) for k, v in headers if k != "ce_specversion"]

    assert open_envelope(value, without_specversion) == open_envelope(_encode(sip_event()))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        ('{"source": "Västerås"}'.encode("latin-1"), "not UTF-8"),
        (b'{"type": "\xff"}', "not UTF-8"),
        (b"[1, 2, 3]", "JSON object"),
        (b'"a string"', "JSON object"),
        (b"42", "JSON object"),
        (b"null", "JSON object"),
        (None, "no value"),
    ],
)
def test_unreadable_message_is_an_invalid_event(value, problem):
    with pytest.raises(InvalidEventError, match=problem):
        translate_message(value)


def test_invalid_json_error_says_where_but_not_what(sip_event):
    broken = _encode(sip_event())[:-5]

    with pytest.raises(InvalidEventError, match=r"line 1 column \d+") as caught:
        translate_message(broken)

    _assert_no_personnummer(caught.value)


@pytest.mark.parametrize("missing", ["type", "id", "source", "time", "data"])
def test_missing_envelope_field_is_named(sip_event, missing):
    event = sip_event()
    del event[missing]

    with pytest.raises(InvalidEventError) as caught:
        translate_message(_encode(event))

    assert caught.value.field == missing
    assert str(caught.value).startswith(f"{missing}: ")
    _assert_no_personnummer(caught.value)


@pytest.mark.parametrize("missing", ["ce_type", "ce_id", "ce_source", "ce_time"])
def test_missing_cloudevents_header_is_named(sip_event, missing):
    value, headers = _binary(sip_event())
    headers = [(k, v) for k, v in headers if k != missing]
    if missing == "ce_type":
        headers.append(("ce_specversion", b"1.0"))

    with pytest.raises(InvalidEventError) as caught:
        translate_message(value, headers)

    assert caught.value.field == missing


def test_cloudevents_header_that_is_not_utf8_is_named(sip_event):
    value, headers = _binary(sip_event())
    headers = [(k, b"\xff\xfe" if k == "ce_source" else v) for k, v in headers]

    with pytest.raises(InvalidEventError, match="not UTF-8") as caught:
        translate_message(value, headers)

    assert caught.value.field == "ce_source"


def test_unknown_event_type_is_named(sip_event):
    with pytest.raises(InvalidEventError, match="unknown event type") as caught:
        translate_message(_encode(sip_event(type="se.sambus.school.sip-initiated.v99")))

    assert caught.value.field == "type"
    assert "v99" not in str(caught.value), "the sender's type is not repeated (it may carry personal data)"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"child": {"civicNo": "20120315-0007"}}, "data.child.civicNo"),
        ({"child": {"civicNo": "201203150007"}}, "data.child.civicNo"),
        ({"child": {"civicNo": "20120230-0006"}}, "data.child.civicNo"),
        ({"child": {"civicNo": "2012031500"}}, "data.child.civicNo"),
        ({"child": {"civicNo": 201203150006}}, "data.child.civicNo"),
        ({"child": {}}, "data.child"),
        ({"child": {"civicNo": CHILD, "lmaNumber": "12-345678"}}, "data.child"),
        ({"child": {"lmaNumber": "12-34567"}}, "data.child.lmaNumber"),
        ({"child": {"reserveNumber": {"value": "x"}}}, "data.child.reserveNumber.value"),
        (
            {"child": {"reserveNumber": {"system": PERSONNUMMER_SYSTEM, "value": CHILD}}},
            "data.child.reserveNumber.system",
        ),
        ({"child": {"civicNo": CHILD, "birthDate": "2012-03-15"}}, "data.child"),
        ({"child": {"civicNo": CHILD, "name": "Alva"}}, "data.child.<key>"),
        ({"invite": []}, "data.invite"),
        ({"invite": [{}]}, "data.invite.0"),
        ({"invite": [{"hsaId": "SE2321000206-1001", "organisationNumber": "212000-2080"}]}, "data.invite.0"),
        ({"invite": [{"hsaId": "nonsense"}]}, "data.invite.0.hsaId"),
        ({"invite": [{"organisationNumber": "212000-2081"}]}, "data.invite.0.organisationNumber"),
        ({"reason": "because"}, "data.reason"),
        ({"schoolUnitCode": "1980001"}, "data.schoolUnitCode"),
        ({"initiatedBy": "principal"}, "data.initiatedBy"),
        ({"extra": "field"}, "data.<key>"),
    ],
)
def test_invalid_event_data_names_the_field_and_never_the_personnummer(sip_event, data, field):
    with pytest.raises(InvalidEventError) as caught:
        translate_message(_encode(sip_event(data=data)))

    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    _assert_no_personnummer(caught.value)


def test_invalid_data_in_binary_binding_names_the_same_field(sip_event):
    value, headers = _binary(sip_event(data={"child": {"civicNo": "20120315-0007"}}))

    with pytest.raises(InvalidEventError) as caught:
        translate_message(value, headers)

    assert caught.value.field == "data.child.civicNo"
    _assert_no_personnummer(caught.value)


def test_several_problems_are_counted(sip_event):
    event = sip_event(data={"reason": "because", "schoolUnitCode": "x"})

    with pytest.raises(InvalidEventError, match=r"\(and 1 more problem\)"):
        translate_message(_encode(event))


def test_invalid_event_is_not_retriable(sip_event):
    with pytest.raises(InvalidEventError) as caught:
        translate_message(_encode(sip_event(data={"reason": "because"})))

    assert isinstance(caught.value, SambusError)
    assert caught.value.retriable is False
    assert caught.value.code == "invalid_event"


def test_envelope_is_frozen(sip_event):
    envelope = open_envelope(_encode(sip_event()))

    with pytest.raises(ValueError, match="frozen"):
        envelope.id = "other"  # type: ignore[misc]
    assert isinstance(envelope, Envelope)


def test_event_time_without_timezone_is_an_invalid_event_naming_time(sip_event):
    # A sender that forgets the UTC offset must get an InvalidEventError naming "time", not an internal
    # pydantic error from the FHIR model (which the intake stage dead-letters as "internal error").
    with pytest.raises(InvalidEventError) as caught:
        translate_message(_encode(sip_event(time="2026-11-20T09:00:00")))

    assert caught.value.field == "time"
