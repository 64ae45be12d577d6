"""The one Kafka header reader: first value wins, text is UTF-8, and a bad intent header is a clear error."""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord

from sambus.contracts.errors import InvalidIntentError
from sambus.contracts.topics import Header, RecordHeaders
from sambus.router.stages.delivery import header


def test_the_first_value_of_a_repeated_name_counts():
    headers = RecordHeaders.of([("a", b"1"), ("b", b"2"), ("a", b"3")])

    assert headers.get("a") == b"1"
    assert headers.text("b") == "2"
    assert headers.get("c") is None
    assert headers.text("c") is None
    assert headers.without({"a"}) == (("b", b"2"),)


def test_first_text_reads_raw_headers_as_text_does():
    raw = [("a", b"1"), ("b", bytearray(b"2")), ("a", b"3"), ("c", b"\xff")]
    headers = RecordHeaders.of(raw)

    for name in ("a", "b", "d"):
        assert RecordHeaders.first_text(raw, name) == headers.text(name)
    assert (
        RecordHeaders.first_text(raw, "c", errors="replace")
        == headers.text("c", errors="replace")
        == "\ufffd"
    )
    assert RecordHeaders.first_text(None, "a") is None
    with pytest.raises(UnicodeDecodeError):
        RecordHeaders.first_text(raw, "c")


def test_no_headers_at_all_read_as_none():
    assert RecordHeaders.of(None).get("a") is None
    assert RecordHeaders.of(None).without({"a"}) == ()


def test_text_that_is_not_utf8_is_refused_unless_asked_to_replace():
    headers = RecordHeaders.of([("a", b"\xff")])

    with pytest.raises(UnicodeDecodeError):
        headers.text("a")
    assert headers.text("a", errors="replace") == "\ufffd"


def test_an_intent_header_that_is_not_utf8_is_an_invalid_intent():
    record = ConsumerRecord(
        topic="sambus.intents", partition=0, offset=0, timestamp=0, timestamp_type=0, key=b"k", value=b"{}",
        checksum=None, serialized_key_size=1, serialized_value_size=2, headers=[(Header.EVENT_CODE, b"\xff")],
    )  # fmt: skip

    with pytest.raises(InvalidIntentError, match="not UTF-8"):
        header(record, Header.EVENT_CODE)
