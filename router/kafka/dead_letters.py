"""Dead letters: the original bytes and headers, with why and where from in ``sambus-dlq-*`` headers.

A record too large to copy (the copy would pass :data:`~sambus.router.kafka.records.MAX_RECORD_BYTES`) is
dead-lettered as a reference: no payload, its size, and its topic, partition and offset, so that it never
blocks its topic.

Also the one :class:`DeadLetter` type, reading them back and replaying them (``sambus dlq list`` /
``sambus dlq replay``, the operations page and API through :class:`KafkaDeadLetters`).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from sambus.contracts.errors import SambusError, map_errors
from sambus.contracts.topics import Header, RecordHeaders, Topics
from sambus.router.kafka.admin import ensure_topics, read_topic
from sambus.router.kafka.records import MAX_RECORD_BYTES, Outgoing

DLQ_PSEUDONYM = "sambus-dlq-pseudonym"
"""Header: the Kafka key of a dead-lettered intent (the child's keyed pseudonym), so a replay can key it."""

DLQ_SIZE = "sambus-dlq-size"
"""Header: the size in bytes of the dead-lettered record's value."""
DLQ_PAYLOAD_OMITTED = "sambus-dlq-payload-omitted"
"""Header: ``true`` when the dead letter is a reference, without the record's value and headers."""

_SAMBUS_DLQ_HEADERS = {
    DLQ_PSEUDONYM,
    DLQ_SIZE,
    DLQ_PAYLOAD_OMITTED,
    Header.DLQ_REASON,
    Header.DLQ_ERROR,
    Header.DLQ_SOURCE_TOPIC,
    Header.DLQ_SOURCE_PARTITION,
    Header.DLQ_SOURCE_OFFSET,
}


def dead_letter(
    record: ConsumerRecord[bytes, bytes],
    error: SambusError,
    *,
    dlq_topic: str,
    keep_pseudonym: bool = False,
    max_bytes: int = MAX_RECORD_BYTES,
) -> Outgoing:
    """A dead letter for ``record``: its value and headers unchanged, plus the reason and its origin.

    The original key is not copied: a source system may have keyed by a personal identity number. With
    ``keep_pseudonym`` (records of sambus's own topics, keyed by the child's pseudonym) the key is kept in the
    :data:`DLQ_PSEUDONYM` header so a replay can restore it. A dead letter that would be larger than
    ``max_bytes`` leaves the value and the original headers out (:data:`DLQ_PAYLOAD_OMITTED`).
    """
    value = record.value if record.value is not None else b""
    pseudonym = ((DLQ_PSEUDONYM, record.key),) if keep_pseudonym and record.key else ()
    original = RecordHeaders.of(record.headers).without(_SAMBUS_DLQ_HEADERS)
    where = (
        (Header.DLQ_ERROR, error.code.encode("ascii")),
        (Header.DLQ_SOURCE_TOPIC, record.topic.encode("utf-8")),
        (Header.DLQ_SOURCE_PARTITION, str(record.partition).encode("ascii")),
        (Header.DLQ_SOURCE_OFFSET, str(record.offset).encode("ascii")),
        (DLQ_SIZE, str(len(value)).encode("ascii")),
    )
    letter = Outgoing(
        topic=dlq_topic,
        key=None,
        value=value,
        headers=(*original, *pseudonym, (Header.DLQ_REASON, str(error).encode("utf-8")), *where),
    )
    if letter.size <= max_bytes:
        return letter
    reason = (
        f"{error} (the record's {len(value):,} bytes are too large to copy here; "
        f"it stays at {record.topic}[{record.partition}]@{record.offset})"
    )
    return Outgoing(
        topic=dlq_topic,
        key=None,
        value=b"",
        headers=(
            *pseudonym,
            (Header.DLQ_REASON, reason.encode("utf-8")),
            *where,
            (DLQ_PAYLOAD_OMITTED, b"true"),
        ),
    )


class UnknownDeadLetterError(SambusError):
    """A dead letter asked for (e.g. to replay it) is not on the dead-letter topic."""

    code = "unknown_dead_letter"


@dataclass(frozen=True)
class DeadLetter:
    """A record on ``sambus.dlq``: where it came from and why; its content only for a replay.

    The one dead-letter type: ``sambus dlq``, ``sambus queues``, the operations page and the API all read
    it. Operators see :meth:`summary` (never ``value`` or ``headers``, which may hold personal data).
    """

    partition: int
    offset: int
    error: str
    reason: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    attempts: int
    replayed: bool
    timestamp: dt.datetime
    value: bytes = field(repr=False)
    headers: tuple[tuple[str, bytes], ...] = field(repr=False)

    @classmethod
    def from_record(cls, record: ConsumerRecord[bytes, bytes], *, replayed: bool = False) -> DeadLetter:
        """The dead letter a record on the dead-letter topic holds."""
        headers = RecordHeaders.of(record.headers)
        return cls(
            partition=record.partition,
            offset=record.offset,
            error=headers.text(Header.DLQ_ERROR, errors="replace") or "unknown",
            reason=headers.text(Header.DLQ_REASON, errors="replace") or "",
            source_topic=headers.text(Header.DLQ_SOURCE_TOPIC, errors="replace") or "",
            source_partition=_int_or_none(headers.get(Header.DLQ_SOURCE_PARTITION)),
            source_offset=_int_or_none(headers.get(Header.DLQ_SOURCE_OFFSET)),
            attempts=_attempts(headers),
            replayed=replayed,
            timestamp=dt.datetime.fromtimestamp(record.timestamp / 1000, tz=dt.UTC),
            value=record.value or b"",
            headers=headers.items,
        )

    @property
    def payload_omitted(self) -> bool:
        """Whether this dead letter is a reference to a record too large to copy (it cannot be replayed)."""
        return RecordHeaders(self.headers).get(DLQ_PAYLOAD_OMITTED) == b"true"

    @property
    def ref(self) -> str:
        """``<partition>:<offset>``: the dead letter's name on the command line and in the replay log."""
        return f"{self.partition}:{self.offset}"

    @property
    def id(self) -> str:
        """``<partition>-<offset>``: the dead letter's name in web addresses and the API."""
        return f"{self.partition}-{self.offset}"

    @property
    def size(self) -> int:
        """The size of its content in bytes (as recorded, when the content was too large to copy)."""
        recorded = _int_or_none(RecordHeaders(self.headers).get(DLQ_SIZE)) if self.payload_omitted else None
        return len(self.value) if recorded is None else recorded

    def summary(self) -> dict[str, Any]:
        """What operators see, JSON-ready: where from, why, how big, when; never the content."""
        return {
            "id": self.id,
            "error": self.error,
            "reason": self.reason,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "attempts": self.attempts,
            "replayed": self.replayed,
            "size": self.size,
            "timestamp": self.timestamp.isoformat(),
        }

    def replay_record(self) -> Outgoing:
        """The original record, back on its source topic, keyed by the child's pseudonym when it had one."""
        headers = RecordHeaders(self.headers)
        return Outgoing(
            topic=self.source_topic,
            value=self.value,
            key=headers.get(DLQ_PSEUDONYM),
            headers=tuple(
                (k, v) for k, v in headers.without(_SAMBUS_DLQ_HEADERS) if not k.startswith("sambus-retry-")
            ),
        )


def _int_or_none(value: bytes | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _attempts(headers: RecordHeaders) -> int:
    try:
        history = json.loads(headers.get("sambus-retry-history") or b"[]")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return 1
    return max(1, len(history)) if isinstance(history, list) else 1


async def read_dead_letters(bootstrap_servers: str, topics: Topics) -> list[DeadLetter]:
    """Every dead letter, oldest first, with whether it has been replayed.

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
    """
    replayed = {(r.key or b"").decode() for r in await read_topic(bootstrap_servers, topics.dlq_replayed)}
    letters = [
        DeadLetter.from_record(record, replayed=f"{record.partition}:{record.offset}" in replayed)
        for record in await read_topic(bootstrap_servers, topics.dlq)
    ]
    return sorted(letters, key=lambda d: (d.partition, d.offset))


async def replay(
    bootstrap_servers: str, topics: Topics, select: Callable[[DeadLetter], bool], *, transactional_id: str
) -> list[DeadLetter]:
    """Put the selected dead letters not yet replayed back on their source topics; returns those replayed.

    Each goes back with its original bytes and headers, and the router decides consent for it again. The
    replay and its entry in the replay log commit in one Kafka transaction, so a dead letter is never
    replayed twice. A reference to a record too large to copy (:attr:`DeadLetter.payload_omitted`) is never
    replayed: sambus would refuse the record again.

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
    """
    chosen = [
        d
        for d in await read_dead_letters(bootstrap_servers, topics)
        if select(d) and not d.replayed and not d.payload_omitted
    ]
    if not chosen:
        return []
    await ensure_topics(bootstrap_servers, [topics.spec("dlq-replayed")])  # an operator may replay first
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        transactional_id=transactional_id,
        enable_idempotence=True,
        acks="all",
    )
    try:
        with map_errors("replay dead letters"):
            await producer.start()
            async with producer.transaction():
                for letter in chosen:
                    out = letter.replay_record()
                    await producer.send(out.topic, out.value, key=out.key, headers=list(out.headers))
                    await producer.send(topics.dlq_replayed, b"replayed", key=letter.ref.encode("ascii"))
    finally:
        await producer.stop()
    return chosen


class DeadLetters(Protocol):
    """The dead letters: list, count, and replay one onto the topic it came from."""

    async def list(self, *, limit: int = 100) -> Sequence[DeadLetter]:
        """The most recent dead letters, newest first."""
        ...

    async def count(self) -> int:
        """How many dead letters there are."""
        ...

    async def replay(self, letter_id: str) -> str:
        """Publish the dead letter's original bytes and headers again on its source topic; returns the topic.

        Raises:
            UnknownDeadLetterError: there is no dead letter with that id.
        """
        ...


def _parse_id(letter_id: str) -> str | None:
    """The ``<partition>:<offset>`` ref of a ``<partition>-<offset>`` id, or None when it is not one."""
    partition, _, offset = letter_id.partition("-")
    if not (partition.isdigit() and offset.isdigit()):
        return None
    return f"{int(partition)}:{int(offset)}"


class KafkaDeadLetters:
    """Dead letters read straight from ``sambus.dlq``; a replay re-publishes on the source topic."""

    def __init__(self, *, bootstrap_servers: str, topics: Topics) -> None:
        """Read ``topics.dlq`` on the broker at ``bootstrap_servers``."""
        self._servers = bootstrap_servers
        self._topics = topics

    async def list(self, *, limit: int = 100) -> Sequence[DeadLetter]:
        """The most recent dead letters, newest first."""
        letters = await read_dead_letters(self._servers, self._topics)
        letters.sort(key=lambda d: (d.timestamp, d.partition, d.offset), reverse=True)
        return letters[:limit]

    async def count(self) -> int:
        """How many dead letters are on the topic."""
        return len(await read_topic(self._servers, self._topics.dlq))

    async def replay(self, letter_id: str) -> str:
        """Put the dead letter back on its source topic, once; returns the topic.

        It goes back with its original bytes, headers and key (the child's pseudonym), through :func:`replay`,
        which logs the replay in the same transaction so no dead letter is replayed twice; the router decides
        consent for it again.

        Raises:
            UnknownDeadLetterError: no dead letter has that id, it was replayed already, or it does not say
                where it came from.
            BrokerUnavailableError: the broker cannot be reached.
        """
        ref = _parse_id(letter_id)
        if ref is None:
            raise UnknownDeadLetterError(f"{letter_id!r} is not a dead-letter id (<partition>-<offset>)")
        done = await replay(
            self._servers,
            self._topics,
            lambda letter: letter.ref == ref and self._topics.is_ours(letter.source_topic),
            transactional_id=f"{self._topics.prefix}sambus-web-replay-{secrets.token_hex(4)}",
        )
        if not done:
            raise UnknownDeadLetterError(
                f"no dead letter {letter_id} to replay (unknown, replayed already, or of unknown source)"
            )
        return done[0].source_topic
