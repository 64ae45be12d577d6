"""Dead letters: the original bytes and headers, with why and where from in ``sambus-dlq-*`` headers.

Also reading them back and replaying them (``sambus dlq list`` / ``sambus dlq replay``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from sambus.contracts.errors import BrokerUnavailableError, SambusError
from sambus.contracts.topics import Header, Topics, TopicSpec
from sambus.router.kafka.admin import ensure_topics, read_topic
from sambus.router.kafka.records import Outgoing

DLQ_PSEUDONYM = "sambus-dlq-pseudonym"
"""Header: the Kafka key of a dead-lettered intent (the child's keyed pseudonym), so a replay can key it."""

_SAMBUS_DLQ_HEADERS = {
    DLQ_PSEUDONYM,
    Header.DLQ_REASON,
    Header.DLQ_ERROR,
    Header.DLQ_SOURCE_TOPIC,
    Header.DLQ_SOURCE_PARTITION,
    Header.DLQ_SOURCE_OFFSET,
}


def dead_letter(
    record: ConsumerRecord[bytes, bytes], error: SambusError, *, dlq_topic: str, keep_pseudonym: bool = False
) -> Outgoing:
    """A dead letter for ``record``: its value and headers unchanged, plus the reason and its origin.

    The original key is not copied: a source system may have keyed by a personal identity number. With
    ``keep_pseudonym`` (records of sambus's own topics, keyed by the child's pseudonym) the key is kept in the
    :data:`DLQ_PSEUDONYM` header so a replay can restore it.
    """
    original = tuple((k, v) for k, v in (record.headers or ()) if k not in _SAMBUS_DLQ_HEADERS)
    if keep_pseudonym and record.key:
        original = (*original, (DLQ_PSEUDONYM, record.key))
    return Outgoing(
        topic=dlq_topic,
        key=None,
        value=record.value if record.value is not None else b"",
        headers=(
            *original,
            (Header.DLQ_REASON, str(error).encode("utf-8")),
            (Header.DLQ_ERROR, error.code.encode("ascii")),
            (Header.DLQ_SOURCE_TOPIC, record.topic.encode("utf-8")),
            (Header.DLQ_SOURCE_PARTITION, str(record.partition).encode("ascii")),
            (Header.DLQ_SOURCE_OFFSET, str(record.offset).encode("ascii")),
        ),
    )


def replayed_topic(topics: Topics) -> str:
    """The compacted topic that remembers which dead letters were replayed (key ``<partition>:<offset>``)."""
    return f"{topics.prefix}sambus.dlq.replayed"


def replayed_topic_spec(topics: Topics) -> TopicSpec:
    """The replay log: compacted, so it keeps one entry per replayed dead letter for ever."""
    return TopicSpec(replayed_topic(topics), partitions=1, config={"cleanup.policy": "compact"})


@dataclass(frozen=True)
class DeadLetter:
    """A record on ``sambus.dlq``, as an operator sees it."""

    partition: int
    offset: int
    error: str
    reason: str
    source_topic: str
    attempts: int
    replayed: bool
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    @property
    def ref(self) -> str:
        """``<partition>:<offset>``: the dead letter's name on the command line and in the replay log."""
        return f"{self.partition}:{self.offset}"

    def replay_record(self) -> Outgoing:
        """The original record, back on its source topic, keyed by the child's pseudonym when it had one."""
        headers = dict(self.headers)
        return Outgoing(
            topic=self.source_topic,
            value=self.value,
            key=headers.get(DLQ_PSEUDONYM),
            headers=tuple(
                (k, v)
                for k, v in self.headers
                if k not in _SAMBUS_DLQ_HEADERS and not k.startswith("sambus-retry-")
            ),
        )


def _text(headers: dict[str, bytes], name: str) -> str:
    return headers.get(name, b"").decode("utf-8", errors="replace")


def _attempts(headers: dict[str, bytes]) -> int:
    try:
        history = json.loads(headers.get("sambus-retry-history", b"[]"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return 1
    return max(1, len(history)) if isinstance(history, list) else 1


async def read_dead_letters(bootstrap_servers: str, topics: Topics) -> list[DeadLetter]:
    """Every dead letter, oldest first, with whether it has been replayed."""
    replayed = {(r.key or b"").decode() for r in await read_topic(bootstrap_servers, replayed_topic(topics))}
    letters = []
    for record in await read_topic(bootstrap_servers, topics.dlq):
        headers = dict(record.headers or ())
        letters.append(
            DeadLetter(
                partition=record.partition,
                offset=record.offset,
                error=_text(headers, Header.DLQ_ERROR),
                reason=_text(headers, Header.DLQ_REASON),
                source_topic=_text(headers, Header.DLQ_SOURCE_TOPIC),
                attempts=_attempts(headers),
                replayed=f"{record.partition}:{record.offset}" in replayed,
                value=record.value or b"",
                headers=tuple(record.headers or ()),
            )
        )
    return sorted(letters, key=lambda d: (d.partition, d.offset))


async def replay(
    bootstrap_servers: str, topics: Topics, select: Callable[[DeadLetter], bool], *, transactional_id: str
) -> list[DeadLetter]:
    """Put the selected dead letters not yet replayed back on their source topics; returns those replayed.

    Each goes back with its original bytes and headers, and the router decides consent for it again. The
    replay and its entry in the replay log commit in one Kafka transaction, so a dead letter is never
    replayed twice.

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
    """
    chosen = [d for d in await read_dead_letters(bootstrap_servers, topics) if select(d) and not d.replayed]
    if not chosen:
        return []
    await ensure_topics(bootstrap_servers, [replayed_topic_spec(topics)])  # an operator may replay first
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        transactional_id=transactional_id,
        enable_idempotence=True,
        acks="all",
    )
    try:
        await producer.start()
        async with producer.transaction():
            for letter in chosen:
                out = letter.replay_record()
                await producer.send(out.topic, out.value, key=out.key, headers=list(out.headers))
                await producer.send(replayed_topic(topics), b"replayed", key=letter.ref.encode("ascii"))
    except KafkaError as exc:
        raise BrokerUnavailableError(f"cannot replay dead letters: {exc}") from exc
    finally:
        await producer.stop()
    return chosen
