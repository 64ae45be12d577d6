"""Dead letters: why and where from in ``sambus-dlq-*`` headers; the original sealed, for a replay only.

What a dead letter shows in clear is what operators may see: the reason (which names the field and the
kind of problem, never a value), the error code, the source topic, partition and offset, the retry history
and the size of the original. The original bytes and headers (which may hold a personnummer, a name or an
address) are sealed with AES-256-GCM under ``SAMBUS_DLQ_ENCRYPTION_KEYS`` (each sealed value names its key
id, so keys can be rotated) and bound to the dead letter's source; only a replay opens them. Without a key
the original is not kept at all (:func:`seal`).

A record too large to copy (the copy would pass :data:`~sambus.router.kafka.records.MAX_RECORD_BYTES`) is
dead-lettered as a reference: no payload, its size, and its topic, partition and offset, so that it never
blocks its topic.

Also the one :class:`DeadLetter` type, reading them back and replaying them (``sambus dlq list`` /
``sambus dlq replay``, the operations page and API through :class:`KafkaDeadLetters`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from sambus.consent.keys import FieldCipher, LedgerKeyError
from sambus.contracts.errors import SambusError, map_errors
from sambus.contracts.topics import Header, RecordHeaders, Topics
from sambus.router.kafka.admin import BOUNDED_EXACT_LIMIT, ensure_topics, read_topic
from sambus.router.kafka.connection import Broker, client_kwargs
from sambus.router.kafka.partitioner import PARTITIONER
from sambus.router.kafka.reader import Clients, KafkaReader, run_on, transient_clients
from sambus.router.kafka.records import MAX_RECORD_BYTES, Outgoing

T = TypeVar("T")


_SAMBUS_DLQ_HEADERS = {
    Header.DLQ_PSEUDONYM,
    Header.DLQ_SIZE,
    Header.DLQ_PAYLOAD_OMITTED,
    Header.DLQ_REASON,
    Header.DLQ_ERROR,
    Header.DLQ_SOURCE_TOPIC,
    Header.DLQ_SOURCE_PARTITION,
    Header.DLQ_SOURCE_OFFSET,
}


SEALED_AES_GCM = "aes-256-gcm"
SEALED_DROPPED = "dropped"
_CLEAR = frozenset(
    {
        Header.DLQ_REASON,
        Header.DLQ_ERROR,
        Header.DLQ_SOURCE_TOPIC,
        Header.DLQ_SOURCE_PARTITION,
        Header.DLQ_SOURCE_OFFSET,
        Header.RETRY_HISTORY,
        Header.DLQ_SEALED,
        Header.DLQ_KEY_ID,
        Header.DLQ_SIZE,
        Header.DLQ_PAYLOAD_OMITTED,
    }
)
"""The headers a stored dead letter keeps in clear: none carries a value of the original."""


class SealedDeadLetterError(SambusError):
    """A dead letter's original cannot be opened: it was not kept, or its key is not configured."""

    code = "dead_letter_sealed"


def _aad(headers: RecordHeaders) -> bytes:
    """What a sealed original is bound to: its source, so it cannot be moved to another dead letter."""
    parts = (Header.DLQ_SOURCE_TOPIC, Header.DLQ_SOURCE_PARTITION, Header.DLQ_SOURCE_OFFSET)
    return b"sambus-dlq|" + b"|".join(headers.get(name) or b"" for name in parts)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def seal(letter: Outgoing, cipher: FieldCipher | None) -> Outgoing:
    """The dead letter as it is stored: operator headers in clear, the original sealed (or dropped).

    The original value, its headers and the pseudonym header are sealed together with ``cipher`` (AES-GCM,
    bound to the source topic, partition and offset). Without a cipher the original is not kept: the dead
    letter still says where from, why and how big, but cannot be replayed.
    """
    headers = RecordHeaders(letter.headers)
    if headers.get(Header.DLQ_SEALED) is not None:
        return letter
    clear = tuple((k, v) for k, v in letter.headers if k in _CLEAR)
    if headers.get(Header.DLQ_PAYLOAD_OMITTED) is not None:  # a reference: there is no original to keep
        return Outgoing(
            letter.topic, b"", None, (*clear, (Header.DLQ_SEALED, SEALED_DROPPED.encode("ascii")))
        )
    size = (Header.DLQ_SIZE, str(len(letter.value)).encode("ascii"))
    if cipher is None:
        return Outgoing(
            letter.topic, b"", None, (*clear, (Header.DLQ_SEALED, SEALED_DROPPED.encode("ascii")), size)
        )
    original = {
        "headers": [[k, _b64(v)] for k, v in letter.headers if k not in _CLEAR],
        "value": _b64(letter.value),
    }
    key_id, sealed = cipher.seal(json.dumps(original).encode("ascii"), aad=_aad(headers))
    return Outgoing(
        letter.topic,
        sealed,
        None,
        (
            *clear,
            (Header.DLQ_SEALED, SEALED_AES_GCM.encode("ascii")),
            (Header.DLQ_KEY_ID, key_id.encode("utf-8")),
            size,
        ),
    )


def open_sealed(
    value: bytes, headers: tuple[tuple[str, bytes], ...], cipher: FieldCipher | None
) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    """The original value and headers of a stored dead letter (a dead letter stored in clear as it is).

    Raises:
        SealedDeadLetterError: the original was not kept, no key is configured, or it does not open.
    """
    found = RecordHeaders(headers)
    how = found.text(Header.DLQ_SEALED, errors="replace")
    if how is None:
        return value, headers
    if how != SEALED_AES_GCM:
        raise SealedDeadLetterError(
            "the dead letter's content was not kept (SAMBUS_DLQ_ENCRYPTION_KEYS was not set), "
            "so it cannot be replayed"
        )
    if cipher is None:
        raise SealedDeadLetterError(
            "SAMBUS_DLQ_ENCRYPTION_KEYS is not set: sealed dead letters cannot be opened"
        )
    try:
        opened = json.loads(cipher.open(found.text(Header.DLQ_KEY_ID) or "", value, aad=_aad(found)))
        original = tuple((str(k), base64.b64decode(v, validate=True)) for k, v in opened["headers"])
        return base64.b64decode(opened["value"], validate=True), original
    except LedgerKeyError as exc:
        raise SealedDeadLetterError(f"the dead letter does not open: {exc}") from exc
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise SealedDeadLetterError("the dead letter's sealed content is malformed") from exc


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
    :data:`Header.DLQ_PSEUDONYM` header so a replay can restore it. A dead letter that would be larger than
    ``max_bytes`` leaves the value and the original headers out (:data:`Header.DLQ_PAYLOAD_OMITTED`).
    """
    value = record.value if record.value is not None else b""
    pseudonym = ((Header.DLQ_PSEUDONYM, record.key),) if keep_pseudonym and record.key else ()
    original = RecordHeaders.of(record.headers).without(_SAMBUS_DLQ_HEADERS)
    where = (
        (Header.DLQ_ERROR, error.code.encode("ascii")),
        (Header.DLQ_SOURCE_TOPIC, record.topic.encode("utf-8")),
        (Header.DLQ_SOURCE_PARTITION, str(record.partition).encode("ascii")),
        (Header.DLQ_SOURCE_OFFSET, str(record.offset).encode("ascii")),
        (Header.DLQ_SIZE, str(len(value)).encode("ascii")),
    )
    letter = Outgoing(
        topic=dlq_topic,
        key=None,
        value=value,
        headers=(*original, *pseudonym, (Header.DLQ_REASON, str(error).encode("utf-8")), *where),
    )
    if letter.size * 4 // 3 + 1024 <= max_bytes:  # sealing (base64 in JSON) makes it a third larger
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
            (Header.DLQ_PAYLOAD_OMITTED, b"true"),
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
    """As stored: sealed (see :func:`seal`)."""
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
        return RecordHeaders(self.headers).get(Header.DLQ_PAYLOAD_OMITTED) == b"true"

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
        """The size of the original content in bytes."""
        stored = RecordHeaders(self.headers).get(Header.DLQ_SIZE)
        return int(stored) if stored is not None and stored.isdigit() else len(self.value)

    @property
    def kept(self) -> bool:
        """Whether the original was kept (sealed or, from before sealing, in clear), so it can be replayed."""
        return RecordHeaders(self.headers).text(Header.DLQ_SEALED, errors="replace") != SEALED_DROPPED

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
            "kept": self.kept,
            "timestamp": self.timestamp.isoformat(),
        }

    def replay_record(self, cipher: FieldCipher | None = None) -> Outgoing:
        """The original record, back on its source topic, keyed by the child's pseudonym when it had one.

        Raises:
            SealedDeadLetterError: the original was not kept or does not open with ``cipher``.
        """
        value, original = open_sealed(self.value, self.headers, cipher)
        headers = RecordHeaders(original)
        return Outgoing(
            topic=self.source_topic,
            value=value,
            key=headers.get(Header.DLQ_PSEUDONYM),
            headers=tuple(
                (k, v) for k, v in headers.without(_SAMBUS_DLQ_HEADERS) if not k.startswith("sambus-retry-")
            ),
        )


def _int_or_none(value: bytes | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _attempts(headers: RecordHeaders) -> int:
    try:
        history = json.loads(headers.get(Header.RETRY_HISTORY) or b"[]")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return 1
    return max(1, len(history)) if isinstance(history, list) else 1


async def read_dead_letters(bootstrap_servers: Broker, topics: Topics) -> list[DeadLetter]:
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


def parse_ref(ref: str) -> tuple[int, int] | None:
    """The partition and offset of a ``<partition>:<offset>`` ref, or None when it is not one."""
    partition, _, offset = ref.partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        return None
    return int(partition), int(offset)


async def _replayed_since(clients: Clients, topics: Topics, timestamp_ms: int) -> set[str]:
    """The refs in the replay log written at or after ``timestamp_ms`` (nothing older is read)."""
    _, ends = await clients.topic_bounds(topics.dlq_replayed)
    found = await clients.consumer.offsets_for_times(dict.fromkeys(ends, timestamp_ms)) if ends else {}
    ranges = {tp: (ends[tp] if found.get(tp) is None else found[tp].offset, ends[tp]) for tp in ends}
    return {(r.key or b"").decode() for r in await clients.read_ranges(ranges)}


async def read_refs(clients: Clients, topics: Topics, refs: Sequence[str]) -> list[DeadLetter]:
    """The dead letters named by ``refs`` (``<partition>:<offset>``), each read alone at its offset.

    A ref that names no dead letter (not a ref, no such partition or offset, a commit marker) is left out.
    Whether each was replayed comes from the replay log since the oldest of them was written (a replay
    always comes after its dead letter): neither topic is read whole.
    """
    wanted = {parsed for parsed in map(parse_ref, refs) if parsed is not None}
    if not wanted:
        return []
    begins, ends = await clients.topic_bounds(topics.dlq)
    ranges: dict[TopicPartition, list[int]] = {}
    for partition, offset in wanted:
        tp = TopicPartition(topics.dlq, partition)
        if tp in ends and begins[tp] <= offset < ends[tp]:
            ranges.setdefault(tp, []).append(offset)
    records = []
    for tp, offsets in ranges.items():  # one partition's letters in one read, from its lowest to its highest
        got = await clients.read_ranges({tp: (min(offsets), max(offsets) + 1)}, idle_polls=3)
        records += [r for r in got if (r.partition, r.offset) in wanted]
    if not records:
        return []
    replayed = await _replayed_since(clients, topics, min(r.timestamp for r in records))
    letters = [DeadLetter.from_record(r, replayed=f"{r.partition}:{r.offset}" in replayed) for r in records]
    return sorted(letters, key=lambda d: (d.partition, d.offset))


async def replay(
    bootstrap_servers: Broker,
    topics: Topics,
    select: Callable[[DeadLetter], bool],
    *,
    transactional_id: str,
    cipher: FieldCipher | None = None,
    refs: Sequence[str] | None = None,
) -> list[DeadLetter]:
    """Put the selected dead letters not yet replayed back on their source topics; returns those replayed.

    With ``refs`` only the dead letters they name are read, each at its offset; without, the whole
    dead-letter topic is read and ``select`` picks among them. Each goes back with its original bytes and
    headers (opened with ``cipher``), and the router decides consent for it again. The replay and its entry in
    the replay log commit in one Kafka transaction, so a dead letter is never replayed twice. A reference to
    a record too large to copy (:attr:`DeadLetter.payload_omitted`) is never replayed: sambus would refuse the
    record again.

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
        SealedDeadLetterError: a chosen dead letter cannot be opened (nothing is replayed then).
    """
    if refs is None:
        candidates = await read_dead_letters(bootstrap_servers, topics)
    else:
        named = list(refs)
        async with transient_clients(bootstrap_servers, "read dead letters") as clients:
            candidates = await read_refs(clients, topics, named)
    chosen = [d for d in candidates if select(d) and not d.replayed and not d.payload_omitted]
    return await publish_replays(
        bootstrap_servers, topics, chosen, transactional_id=transactional_id, cipher=cipher
    )


async def publish_replays(
    bootstrap_servers: Broker,
    topics: Topics,
    chosen: Sequence[DeadLetter],
    *,
    transactional_id: str,
    cipher: FieldCipher | None = None,
) -> list[DeadLetter]:
    """Put ``chosen`` back on their source topics and in the replay log, in one transaction; returns them.

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
        SealedDeadLetterError: a chosen dead letter cannot be opened (nothing is replayed then).
    """
    if not chosen:
        return []
    await ensure_topics(bootstrap_servers, [topics.spec("dlq-replayed")])  # an operator may replay first
    records = [(letter, letter.replay_record(cipher)) for letter in chosen]
    producer = AIOKafkaProducer(
        **client_kwargs(bootstrap_servers),
        transactional_id=transactional_id,
        enable_idempotence=True,
        acks="all",
        partitioner=PARTITIONER,
    )
    try:
        with map_errors("replay dead letters"):
            await producer.start()
            async with producer.transaction():
                for letter, out in records:
                    await producer.send(out.topic, out.value, key=out.key, headers=list(out.headers))
                    await producer.send(topics.dlq_replayed, b"replayed", key=letter.ref.encode("ascii"))
    finally:
        await producer.stop()
    return list(chosen)


class DeadLetterTail:
    """The newest dead letters and which of them were replayed, kept current by bounded reads.

    Each :meth:`newest` reads only what was appended to the dead-letter topic and the replay log since the
    previous call (at most a window of ``2 * count`` offsets per partition from the end), so a page costs
    the same with a hundred dead letters as with a million. Not for concurrent use (a
    :class:`~sambus.router.kafka.reader.KafkaReader` serves one call at a time).
    """

    def __init__(self, topics: Topics) -> None:
        """The tail of ``topics.dlq``; empty until the first :meth:`newest`."""
        self._topics = topics
        self._keep = 0
        self._records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        self._read_from: dict[TopicPartition, int] = {}
        self._read_to: dict[TopicPartition, int] = {}
        self._replayed: set[str] = set()
        self._replays_to: dict[TopicPartition, int] | None = None

    async def newest(self, clients: Clients, count: int) -> list[DeadLetter]:
        """The newest ``count`` dead letters, newest first."""
        self._keep = max(self._keep, count, 1)
        window = 2 * self._keep  # transaction markers take offsets too
        begins, ends = await clients.topic_bounds(self._topics.dlq)
        expanded = await self._follow(clients, begins, ends, window)
        await self._follow_replays(clients, rescan=expanded)
        records = sorted(
            (r for kept in self._records.values() for r in kept),
            key=lambda r: (r.timestamp, r.partition, r.offset),
            reverse=True,
        )[:count]
        return [
            DeadLetter.from_record(r, replayed=f"{r.partition}:{r.offset}" in self._replayed) for r in records
        ]

    async def _follow(
        self,
        clients: Clients,
        begins: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        window: int,
    ) -> bool:
        """Read what is new at each partition's end; go further back while too few; whether it went back."""
        for gone in set(self._records) - set(ends):  # a partition (or the topic) deleted
            self._forget(gone)
        ranges = {}
        for tp, end in ends.items():
            to = self._read_to.get(tp)
            if to is None or end < to or end - to > window:  # new, recreated, or too far behind: start afresh
                self._forget(tp)
                self._read_from[tp] = to = max(begins[tp], end - window)
            self._records[tp] = [r for r in self._records.get(tp, []) if r.offset >= begins[tp]]  # retention
            ranges[tp] = (to, end)
            self._read_to[tp] = end
        for record in await clients.read_ranges(ranges):
            self._records[TopicPartition(record.topic, record.partition)].append(record)
        expanded = False
        while sum(map(len, self._records.values())) < self._keep:  # aborted transactions: look further back
            back = {tp: (max(begins[tp], start - window), start) for tp, start in self._read_from.items()}
            back = {tp: span for tp, span in back.items() if span[0] < span[1]}
            if not back:
                break
            older = await clients.read_ranges(back)
            for tp, (start, _) in back.items():
                self._read_from[tp] = start
                self._records[tp] = [r for r in older if (r.topic, r.partition) == tp] + self._records[tp]
            window *= 4
            expanded = True
        for tp, records in self._records.items():  # memory stays bounded: the newest `keep` per partition
            if len(records) > self._keep:
                self._records[tp] = records[-self._keep :]
                self._read_from[tp] = records[-self._keep].offset
        return expanded

    def _forget(self, tp: TopicPartition) -> None:
        self._records.pop(tp, None)
        self._read_from.pop(tp, None)
        self._read_to.pop(tp, None)
        self._replays_to = None  # refs of the forgotten letters may come back: read the replay log again

    async def _follow_replays(self, clients: Clients, *, rescan: bool) -> None:
        """Keep the replayed refs of the kept letters: new replays only, or afresh since the oldest kept."""
        kept = [r for records in self._records.values() for r in records]
        if not kept:
            self._replayed, self._replays_to = set(), None
            return
        _, ends = await clients.topic_bounds(self._topics.dlq_replayed)
        since = self._replays_to
        if rescan or since is None or any(ends[tp] < since.get(tp, 0) for tp in ends):
            found = await clients.consumer.offsets_for_times(
                dict.fromkeys(ends, min(r.timestamp for r in kept))
            )
            ranges = {tp: (ends[tp] if found.get(tp) is None else found[tp].offset, ends[tp]) for tp in ends}
            self._replayed = set()
        else:
            ranges = {tp: (since.get(tp, 0), end) for tp, end in ends.items()}
        self._replayed |= {(r.key or b"").decode() for r in await clients.read_ranges(ranges)}
        self._replays_to = dict(ends)
        lowest = {tp.partition: self._read_from[tp] for tp in self._read_from}
        self._replayed = {  # refs of letters no longer kept are dropped (they are older than every kept one)
            ref
            for ref in self._replayed
            if (parsed := parse_ref(ref)) is not None and parsed[1] >= lowest.get(parsed[0], 0)
        }


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
    """Dead letters read from the tail of ``sambus.dlq``; a replay re-publishes on the source topic.

    With a ``reader`` (the web service's long-lived clients) the newest dead letters are kept between
    calls and each call reads only what is new (:class:`DeadLetterTail`); without, clients are started for
    each call and the tail is read afresh.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: Broker,
        topics: Topics,
        cipher: FieldCipher | None = None,
        reader: KafkaReader | None = None,
    ) -> None:
        """Read ``topics.dlq`` on the broker at ``bootstrap_servers``; open originals with ``cipher``."""
        self._servers = bootstrap_servers
        self._topics = topics
        self._cipher = cipher
        self._reader = reader
        self._tail = DeadLetterTail(topics)

    async def _run(self, work: Callable[[Clients], Awaitable[T]], doing: str) -> T:
        return await run_on(self._reader, self._servers, work, doing)

    async def list(self, *, limit: int = 100) -> Sequence[DeadLetter]:
        """The most recent dead letters, newest first, reading only the topic's tail (only what is new)."""

        async def newest(clients: Clients) -> list[DeadLetter]:
            if self._reader is None:
                return await DeadLetterTail(self._topics).newest(clients, limit)
            try:
                return await self._tail.newest(clients, limit)
            except BaseException:
                self._tail = DeadLetterTail(self._topics)  # a read cut short: start afresh next time
                raise

        return await self._run(newest, f"read {self._topics.dlq}")

    async def count(self) -> int:
        """How many dead letters are on the topic (see :func:`count_committed`)."""
        return await self._run(
            lambda clients: count_committed(clients, self._topics.dlq), f"read {self._topics.dlq}"
        )

    async def replay(self, letter_id: str) -> str:
        """Put the dead letter back on its source topic, once; returns the topic.

        Only that letter is read (at its partition and offset) with the replay log since it was written. It
        goes back with its original bytes, headers and key (the child's pseudonym), through
        :func:`publish_replays`, which logs the replay in the same transaction so no dead letter is replayed
        twice; the router decides consent for it again.

        Raises:
            UnknownDeadLetterError: no dead letter has that id, it was replayed already, or it does not say
                where it came from.
            BrokerUnavailableError: the broker cannot be reached.
        """
        ref = _parse_id(letter_id)
        if ref is None:
            raise UnknownDeadLetterError(f"{letter_id!r} is not a dead-letter id (<partition>-<offset>)")
        found = await self._run(
            lambda clients: read_refs(clients, self._topics, [ref]), f"read {self._topics.dlq}"
        )
        chosen = [
            d
            for d in found
            if not d.replayed and not d.payload_omitted and self._topics.is_ours(d.source_topic)
        ]
        done = await publish_replays(
            self._servers,
            self._topics,
            chosen,
            transactional_id=f"{self._topics.prefix}sambus-web-replay-{secrets.token_hex(4)}",
            cipher=self._cipher,
        )
        if not done:
            raise UnknownDeadLetterError(
                f"no dead letter {letter_id} to replay (unknown, replayed already, or of unknown source)"
            )
        return done[0].source_topic


async def count_committed(clients: Clients, topic: str) -> int:
    """How many records ``topic`` holds, without reading more than :data:`BOUNDED_EXACT_LIMIT` of them.

    Exact while the topic spans at most that many offsets; above it, the offsets it spans (an upper bound:
    transaction markers and aborted records take offsets too).
    """
    begins, ends = await clients.topic_bounds(topic)
    span = sum(ends[tp] - begins[tp] for tp in ends)
    if span > BOUNDED_EXACT_LIMIT:
        return span
    return len(await clients.read_ranges({tp: (begins[tp], ends[tp]) for tp in ends}))
