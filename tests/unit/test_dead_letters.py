"""The one dead-letter type: made from a record, shown to operators without content, replayed as it came."""

from __future__ import annotations

import json

from aiokafka.structs import ConsumerRecord

from sambus.contracts.errors import InvalidEventError
from sambus.router.kafka.dead_letters import DLQ_PSEUDONYM, DeadLetter, dead_letter

PERSONNUMMER = b"20120315-0006"


def _record(
    topic: str, key: bytes | None, value: bytes, headers: tuple[tuple[str, bytes], ...], offset: int = 7
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=2,
        offset=offset,
        timestamp=1_767_225_600_000,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value),
        headers=headers,
    )


def _on_the_dlq(
    source: ConsumerRecord[bytes, bytes], *, keep_pseudonym: bool = False
) -> ConsumerRecord[bytes, bytes]:
    out = dead_letter(
        source, InvalidEventError("no 'type'"), dlq_topic="sambus.dlq", keep_pseudonym=keep_pseudonym
    )
    return _record(out.topic, out.key, out.value, out.headers, offset=3)


def test_a_dead_letter_says_where_from_and_why():
    source = _record("agency.school.events", PERSONNUMMER, b'{"pnr": "20120315-0006"}', (("origin", b"x"),))

    letter = DeadLetter.from_record(_on_the_dlq(source))

    assert (letter.ref, letter.id) == ("2:3", "2-3")
    assert (letter.error, letter.reason) == ("invalid_event", "no 'type'")
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "agency.school.events",
        2,
        7,
    )
    assert letter.attempts == 1
    assert not letter.replayed
    assert letter.size == len(source.value)


def test_operators_see_no_content_and_no_key():
    source = _record("agency.school.events", PERSONNUMMER, b'{"pnr": "20120315-0006"}', (("origin", b"x"),))

    letter = DeadLetter.from_record(_on_the_dlq(source))
    shown = json.dumps(letter.summary())

    assert "20120315-0006" not in shown
    assert "20120315-0006" not in repr(letter)
    assert set(letter.summary()) == {
        "id", "error", "reason", "source_topic", "source_partition", "source_offset",
        "attempts", "replayed", "size", "timestamp",
    }  # fmt: skip


def test_a_replay_restores_the_pseudonym_key_and_drops_the_dead_letter_headers():
    source = _record(
        "sambus.intents", b"pseudonym-abc", b"{}", (("origin", b"x"), ("sambus-retry-history", b"[1, 2]"))
    )

    letter = DeadLetter.from_record(_on_the_dlq(source, keep_pseudonym=True))
    again = letter.replay_record()

    assert letter.attempts == 2
    assert (again.topic, again.key, again.value) == ("sambus.intents", b"pseudonym-abc", b"{}")
    assert again.headers == (("origin", b"x"),)
    assert DLQ_PSEUDONYM not in dict(again.headers)


def test_a_record_without_dead_letter_headers_is_an_unknown_error():
    letter = DeadLetter.from_record(_record("sambus.dlq", None, b"", ()))

    assert (letter.error, letter.source_topic, letter.source_offset) == ("unknown", "", None)
