"""Retries with back-off on retry topics, then the dead-letter topic with the attempt history.

A retriable failure (a :class:`SambusError` with ``retriable``, e.g. the consent registry's database is down)
does not stop the delivery stage: the intent goes to ``sambus.retry.1``, whose stage handles it again after
the first delay, then to ``sambus.retry.2`` after a longer one, and so on. After the last retry it goes to
``sambus.dlq`` with the original bytes, the reason and every attempt in headers. Consent is decided again at
every attempt, because each attempt goes through the delivery handler from the start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord

from sambus.contracts.errors import SambusError
from sambus.contracts.topics import Header, RecordHeaders, Topics
from sambus.router.kafka.dead_letters import dead_letter
from sambus.router.kafka.parked_headers import epoch_ms
from sambus.router.kafka.records import Outgoing

logger = logging.getLogger(__name__)

RETRY_HEADERS = frozenset(
    {
        Header.RETRY_ATTEMPT,
        Header.RETRY_NOT_BEFORE,
        Header.RETRY_HISTORY,
        Header.RETRY_SOURCE_TOPIC,
        Header.RETRY_SOURCE_PARTITION,
        Header.RETRY_SOURCE_OFFSET,
    }
)
MAX_DELAY_S = 45.0
"""A retry stage waits inside its Kafka transaction, which must stay well under the broker's timeout."""

Handler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[list[Outgoing]]]
Clock = Callable[[], dt.datetime]


async def wait_until(
    due_ms: bytes | None, *, clock: Clock, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Sleep until ``due_ms`` (epoch milliseconds, as header bytes), at most :data:`MAX_DELAY_S`."""
    try:
        due = int(due_ms or b"0") / 1000
    except ValueError:
        return
    wait = min(due - clock().timestamp(), MAX_DELAY_S)
    if wait > 0:
        await sleep(wait)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and after how long a retriable failure is tried again.

    Attributes:
        delays_s: the wait before each retry; their number is the number of retries.
    """

    delays_s: tuple[float, ...] = (2.0, 10.0, 30.0)

    def __post_init__(self) -> None:
        """Check the delays."""
        if not self.delays_s or any(not 0 <= d <= MAX_DELAY_S for d in self.delays_s):
            raise ValueError(
                f"retry delays must be one or more numbers of seconds between 0 and {MAX_DELAY_S}"
            )

    @property
    def levels(self) -> range:
        """The retry levels, 1-based."""
        return range(1, len(self.delays_s) + 1)


def history_of(record: ConsumerRecord[bytes, bytes]) -> list[dict[str, object]]:
    """The attempts a (retry or dead-letter) record has been through."""
    raw = RecordHeaders.of(record.headers).get(Header.RETRY_HISTORY)
    if raw is None:
        return []
    try:
        history = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return []
    return history if isinstance(history, list) else []


def original(record: ConsumerRecord[bytes, bytes]) -> ConsumerRecord[bytes, bytes]:
    """The record as it was first read: its source topic, partition and offset, without retry headers."""
    headers = RecordHeaders.of(record.headers)
    topic = headers.get(Header.RETRY_SOURCE_TOPIC)
    if topic is None:
        return record
    return ConsumerRecord(
        topic=topic.decode("utf-8"),
        partition=int(headers.get(Header.RETRY_SOURCE_PARTITION) or b""),
        offset=int(headers.get(Header.RETRY_SOURCE_OFFSET) or b""),
        timestamp=record.timestamp,
        timestamp_type=record.timestamp_type,
        key=record.key,
        value=record.value,
        checksum=None,
        serialized_key_size=record.serialized_key_size,
        serialized_value_size=record.serialized_value_size,
        headers=headers.without(RETRY_HEADERS),
    )


class Retries:
    """Sends a failed record to its next retry topic, or to the dead-letter topic when no retry is left."""

    def __init__(self, *, topics: Topics, policy: RetryPolicy, clock: Clock) -> None:
        """Retry on ``topics``' retry topics by ``policy``."""
        self._topics = topics
        self._policy = policy
        self._clock = clock

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy."""
        return self._policy

    @property
    def dlq_topic(self) -> str:
        """Where records go when no retry is left."""
        return self._topics.dlq

    def failed(self, record: ConsumerRecord[bytes, bytes], error: SambusError) -> list[Outgoing]:
        """What a retriable failure of ``record`` (a first read or a retry) becomes."""
        first = original(record)
        now = self._clock()
        history = [
            *history_of(record),
            {
                "attempt": len(history_of(record)) + 1,
                "at": now.isoformat(),
                "error": error.code,
                "reason": str(error),
            },
        ]
        attempt = len(history)
        history_header = (Header.RETRY_HISTORY, json.dumps(history, ensure_ascii=False).encode("utf-8"))
        if attempt > len(self._policy.delays_s):
            logger.warning(
                "%s[%d]@%d failed %d times (%s); dead-lettered", first.topic, first.partition, first.offset,
                attempt, error.code,
            )  # fmt: skip
            letter = dead_letter(first, error, dlq_topic=self._topics.dlq, keep_pseudonym=True)
            return [Outgoing(letter.topic, letter.value, letter.key, (*letter.headers, history_header))]
        not_before = now + dt.timedelta(seconds=self._policy.delays_s[attempt - 1])
        headers = (
            *(first.headers or ()),
            (Header.RETRY_ATTEMPT, str(attempt).encode("ascii")),
            (Header.RETRY_NOT_BEFORE, epoch_ms(not_before)),
            history_header,
            (Header.RETRY_SOURCE_TOPIC, first.topic.encode("utf-8")),
            (Header.RETRY_SOURCE_PARTITION, str(first.partition).encode("ascii")),
            (Header.RETRY_SOURCE_OFFSET, str(first.offset).encode("ascii")),
        )
        return [Outgoing(self._topics.retry(attempt), first.value or b"", first.key, headers)]


class RetryHandler:
    """The handler of a retry stage: waits until a record is due, then hands its original to ``handler``."""

    def __init__(
        self,
        *,
        handler: Handler,
        retries: Retries,
        clock: Clock,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Handle due records with ``handler``; failures go on through ``retries``."""
        self._handler = handler
        self._retries = retries
        self._clock = clock
        self._sleep = sleep

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        """The records one retry becomes: the handler's output, the next retry, or a dead letter."""
        await wait_until(
            RecordHeaders.of(record.headers).get(Header.RETRY_NOT_BEFORE),
            clock=self._clock,
            sleep=self._sleep,
        )
        try:
            return await self._handler(original(record))
        except SambusError as exc:
            if not exc.retriable:
                return [
                    dead_letter(original(record), exc, dlq_topic=self._retries.dlq_topic, keep_pseudonym=True)
                ]
            return self._retries.failed(record, exc)
