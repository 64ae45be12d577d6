"""The one dead-letter type: made from a record, shown to operators without content, replayed as it came."""

from __future__ import annotations

import json

import pytest
from aiokafka.structs import ConsumerRecord

from sambus.consent import FieldCipher
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.topics import Header
from sambus.router.kafka.dead_letters import DeadLetter, SealedDeadLetterError, dead_letter, seal

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
        "attempts", "replayed", "size", "kept", "timestamp",
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
    assert Header.DLQ_PSEUDONYM not in dict(again.headers)


def test_a_record_without_dead_letter_headers_is_an_unknown_error():
    letter = DeadLetter.from_record(_record("sambus.dlq", None, b"", ()))

    assert (letter.error, letter.source_topic, letter.source_offset) == ("unknown", "", None)


CIPHER = FieldCipher({"k1": b"k" * 32}, "k1")


def _stored(source: ConsumerRecord[bytes, bytes], cipher: FieldCipher | None) -> ConsumerRecord[bytes, bytes]:
    out = seal(
        dead_letter(source, InvalidEventError("no 'type'"), dlq_topic="sambus.dlq", keep_pseudonym=True),
        cipher,
    )
    return _record(out.topic, out.key, out.value, out.headers, offset=3)


def test_the_original_is_stored_sealed_and_opened_only_for_a_replay():
    source = _record("sambus.intents", b"pseudonym-abc", b'{"pnr": "20120315-0006"}', (("origin", b"Anna"),))

    stored = _stored(source, CIPHER)
    letter = DeadLetter.from_record(stored)

    assert b"20120315-0006" not in stored.value
    assert {name for name, _ in stored.headers} == {
        "sambus-dlq-reason", "sambus-dlq-error", "sambus-dlq-source-topic", "sambus-dlq-source-partition",
        "sambus-dlq-source-offset", "sambus-dlq-sealed", "sambus-dlq-key-id", "sambus-dlq-size",
    }  # fmt: skip
    assert (letter.size, letter.kept) == (len(source.value), True)
    again = letter.replay_record(CIPHER)
    assert (again.key, again.value, again.headers) == (b"pseudonym-abc", source.value, (("origin", b"Anna"),))
    with pytest.raises(SealedDeadLetterError, match="SAMBUS_DLQ_ENCRYPTION_KEYS is not set"):
        letter.replay_record(None)
    with pytest.raises(SealedDeadLetterError, match="does not open"):
        letter.replay_record(FieldCipher({"k1": b"x" * 32}, "k1"))


def test_a_sealed_original_moved_to_another_dead_letter_does_not_open():
    first = _stored(_record("sambus.intents", b"p", b"{}", ()), CIPHER)
    other = _stored(_record("sambus.intents", b"p", b"{}", (), offset=8), CIPHER)
    moved = _record(other.topic, None, first.value, other.headers, offset=4)

    with pytest.raises(SealedDeadLetterError, match="does not open"):
        DeadLetter.from_record(moved).replay_record(CIPHER)


def test_without_a_key_the_original_is_not_kept():
    source = _record("agency.school.events", None, b'{"pnr": "20120315-0006"}', (("origin", b"Anna"),))

    stored = _stored(source, None)
    letter = DeadLetter.from_record(stored)

    assert stored.value == b""
    assert "origin" not in dict(stored.headers)
    assert (letter.size, letter.kept) == (len(source.value), False)
    with pytest.raises(SealedDeadLetterError, match="was not kept"):
        letter.replay_record(CIPHER)
