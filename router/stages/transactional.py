"""A consume-transform-produce stage with exactly-once delivery (Kafka transactions, via aiokafka).

Each poll becomes one transaction: every record the handler makes for the batch, and the consumed
offsets, commit together or not at all. ``read_committed`` consumers downstream never see a record of
an aborted batch, and a crash anywhere replays the batch from the last committed offsets.

No record can block its topic. A record whose handler fails for good is dead-lettered; one whose output
would be too large for Kafka is dead-lettered in place of that output; and when Kafka refuses a batch for
one record in it (:data:`RECORD_REFUSED`), the stage reads that batch again one record per transaction and
dead-letters the record Kafka refuses, as a reference without its payload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnknownProducerId,
)
from aiokafka.structs import ConsumerRecord, TopicPartition

from sambus.contracts.errors import BrokerUnavailableError, OutputTooLargeError, SambusError, map_errors
from sambus.router.kafka.dead_letters import dead_letter
from sambus.router.kafka.records import MAX_RECORD_BYTES, Outgoing
from sambus.router.ops.tracing import traced

logger = logging.getLogger(__name__)

RecordHandler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[list[Outgoing]]]
FailureHandler = Callable[[ConsumerRecord[bytes, bytes], SambusError], list[Outgoing]]

RECORD_REFUSED: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTopicError,
)
"""Kafka errors that refuse a record for what it is: sending it again can never succeed."""

PRODUCER_BROKEN: tuple[type[KafkaError], ...] = (OutOfOrderSequenceNumber, UnknownProducerId)
"""Errors after which the producer's sequence numbers are lost: it is replaced by a new one (same id)."""


class TransactionHooks(Protocol):
    """What a stage's helpers do around each batch's Kafka transaction.

    A handler gathers per-batch state (ledger entries, event ids seen) while it handles records; the stage
    calls these once per batch so that state is written with the transaction, not beside it.
    """

    def before_commit(self) -> None:
        """Called after every record of the batch is sent, before the transaction commits.

        Write what must exist whenever the batch's output does (e.g. ledger entries, idempotently):
        raising a retriable error aborts the batch, which is read again.
        """

    def after_commit(self) -> None:
        """Called once the batch's transaction has committed."""

    def after_abort(self) -> None:
        """Called when the batch was aborted: forget what it gathered."""


class _UnexpectedError(SambusError):
    code = "internal_error"


class _RefusedByKafkaError(SambusError):
    code = "refused_by_kafka"


class TransactionalStage:
    """Reads ``topics`` in a consumer group and hands each record to ``handler``.

    A handler's non-retriable :class:`SambusError` sends that record to the dead-letter topic and
    the stage goes on; a retriable one aborts the batch, which is read again after a pause.
    """

    def __init__(
        self,
        *,
        name: str,
        bootstrap_servers: str,
        topics: Sequence[str],
        group_id: str,
        transactional_id: str,
        handler: RecordHandler,
        dlq_topic: str,
        max_batch: int = 500,
        poll_timeout_ms: int = 200,
        retry_pause_s: float = 1.0,
        hooks: Sequence[TransactionHooks] = (),
        static_membership: bool = True,
        on_retriable: FailureHandler | None = None,
        keys_are_pseudonyms: bool = False,
    ) -> None:
        """Describe the stage; nothing connects until :meth:`start`.

        With ``static_membership`` the consumer joins as ``transactional_id`` (KIP-345), so an instance
        restarted after a crash takes its partitions back at once instead of after a rebalance; an instance
        that stops for good releases them after the session timeout.

        ``on_retriable`` turns a record whose handler raised a retriable error into records of the same
        transaction (a retry, see :mod:`sambus.router.kafka.retry`); without it the whole batch is aborted
        and read again.
        ``keys_are_pseudonyms`` keeps a dead-lettered record's key (the child's pseudonym) for replay.
        """
        self._on_retriable = on_retriable
        self._keys_are_pseudonyms = keys_are_pseudonyms
        self.name = name
        self._topics = tuple(topics)
        self._group_id = group_id
        self._handler = handler
        self._dlq_topic = dlq_topic
        self._max_batch = max_batch
        self._poll_timeout_ms = poll_timeout_ms
        self._retry_pause_s = retry_pause_s
        self._hooks = tuple(hooks)
        self._one_by_one = 0  # records still to handle one per transaction after Kafka refused a batch
        self._consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            group_instance_id=transactional_id if static_membership else None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        self._bootstrap_servers = bootstrap_servers
        self._transactional_id = transactional_id
        self._producer = self._new_producer()

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            transactional_id=self._transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_request_size=MAX_RECORD_BYTES,
        )

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics the stage reads."""
        return self._topics

    @property
    def dlq_topic(self) -> str:
        """Where the stage puts what it cannot handle."""
        return self._dlq_topic

    async def _renew_producer(self, cause: KafkaError) -> None:
        """Replace the producer after Kafka refused a record: the old one's sequence numbers are spent."""
        logger.warning("stage %s starts a new producer after %s", self.name, type(cause).__name__)
        await self._producer.stop()
        self._producer = self._new_producer()
        await self._producer.start()

    async def start(self) -> None:
        """Connect the producer and the consumer.

        Raises:
            BrokerUnavailableError: the broker cannot be reached.
        """
        try:
            with map_errors(f"connect stage {self.name}"):
                await self._producer.start()
                await self._consumer.start()
        except BrokerUnavailableError:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Disconnect; an open transaction is aborted by the broker."""
        await self._consumer.stop()
        await self._producer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until ``stop`` is set."""
        while not stop.is_set():
            await self.step()

    async def step(self) -> int:
        """Poll once and process what came in one transaction; returns the number of records."""
        max_records = 1 if self._one_by_one else self._max_batch
        batch = await self._consumer.getmany(timeout_ms=self._poll_timeout_ms, max_records=max_records)
        if not batch:
            return 0
        count = sum(len(records) for records in batch.values())
        try:
            await self._process_with_hooks(batch)
        except ProducerFenced:
            logger.exception(
                "stage %s was fenced by a newer instance with the same transactional id", self.name
            )
            raise
        except RECORD_REFUSED as exc:
            await self._renew_producer(exc)
            if count == 1:
                return await self._refused(next(r for records in batch.values() for r in records), exc)
            logger.warning(
                "stage %s: Kafka refused a record of a batch of %d (%s); reading them one by one",
                self.name, count, type(exc).__name__,
            )  # fmt: skip
            self._one_by_one = count
            await self._rewind()
            return 0
        except (KafkaError, SambusError) as exc:
            logger.warning(
                "stage %s aborted a batch of %d records (%s); reading it again",
                self.name, count, type(exc).__name__,
            )  # fmt: skip
            if isinstance(exc, PRODUCER_BROKEN):
                await self._renew_producer(exc)
            await self._rewind()
            await asyncio.sleep(self._retry_pause_s)
            return 0
        self._one_by_one = max(0, self._one_by_one - count)
        return count

    async def _refused(self, record: ConsumerRecord[bytes, bytes], exc: KafkaError) -> int:
        """Dead-letter ``record``, whose output Kafka refused, as a reference (its payload left out)."""
        logger.warning(
            "stage %s dead-lettered %s[%d]@%d: Kafka refused its output (%s)",
            self.name, record.topic, record.partition, record.offset, type(exc).__name__,
        )  # fmt: skip
        error = _RefusedByKafkaError(f"Kafka refused what the record became ({type(exc).__name__})")
        letter = dead_letter(
            record, error, dlq_topic=self._dlq_topic, keep_pseudonym=self._keys_are_pseudonyms, max_bytes=0
        )
        partition = TopicPartition(record.topic, record.partition)
        try:
            await self._process_with_hooks({partition: [record]}, outputs={record.offset: [letter]})
        except ProducerFenced:
            raise
        except KafkaError as again:
            logger.warning(
                "stage %s could not dead-letter it (%s); reading it again", self.name, type(again).__name__
            )
            if isinstance(again, PRODUCER_BROKEN):
                await self._renew_producer(again)
            await self._rewind()
            await asyncio.sleep(self._retry_pause_s)
            return 0
        self._one_by_one = max(0, self._one_by_one - 1)
        return 1

    async def _process_with_hooks(
        self,
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        *,
        outputs: dict[int, list[Outgoing]] | None = None,
    ) -> None:
        try:
            await self._process(batch, outputs=outputs)
        except BaseException:
            for hook in self._hooks:
                hook.after_abort()
            raise

    async def _process(
        self,
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        *,
        outputs: dict[int, list[Outgoing]] | None = None,
    ) -> None:
        """One transaction for ``batch``; ``outputs`` (by offset) replaces the handler (a single record)."""
        async with self._producer.transaction():
            sends = []
            offsets = {}
            for partition, records in batch.items():
                for record in records:
                    made = outputs[record.offset] if outputs is not None else await self._handle(record)
                    sends.extend([await self._send(out) for out in made])
                offsets[partition] = records[-1].offset + 1
            await asyncio.gather(*sends)
            await self._producer.send_offsets_to_transaction(offsets, self._group_id)
            for hook in self._hooks:
                hook.before_commit()
        for hook in self._hooks:
            hook.after_commit()

    async def _send(self, out: Outgoing) -> asyncio.Future[object]:
        future: asyncio.Future[object] = await self._producer.send(
            out.topic, out.value, key=out.key, headers=list(out.headers)
        )
        return future

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        try:
            made = await traced(self.name, self._handler, record)  # spans, trace headers, metrics
            too_large = max((out.size for out in made), default=0)
            if too_large > MAX_RECORD_BYTES:
                raise OutputTooLargeError(  # noqa: TRY301 - dead-lettered below like any handler error
                    f"the record would become one of {too_large:,} bytes; Kafka takes at most "
                    f"{MAX_RECORD_BYTES:,}"
                )
        except SambusError as exc:
            if exc.retriable and self._on_retriable is not None:
                logger.info(
                    "stage %s retries %s[%d]@%d later: %s",
                    self.name, record.topic, record.partition, record.offset, exc.code,
                )  # fmt: skip
                return self._on_retriable(record, exc)
            if exc.retriable:
                raise
            logger.info(
                "stage %s dead-lettered %s[%d]@%d: %s",
                self.name, record.topic, record.partition, record.offset, exc.code,
            )  # fmt: skip
            return [
                dead_letter(record, exc, dlq_topic=self._dlq_topic, keep_pseudonym=self._keys_are_pseudonyms)
            ]
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the consumer nor lose the record
            # The exception's text may quote message content, so only its type is logged and kept.
            logger.error(  # noqa: TRY400 - a traceback could carry personal data
                "stage %s hit an unexpected %s on %s[%d]@%d",
                self.name, type(exc).__name__, record.topic, record.partition, record.offset,
            )  # fmt: skip
            error = _UnexpectedError(f"internal error ({type(exc).__name__}) while handling the message")
            return [
                dead_letter(
                    record, error, dlq_topic=self._dlq_topic, keep_pseudonym=self._keys_are_pseudonyms
                )
            ]
        else:
            return made

    async def _rewind(self) -> None:
        for partition in self._consumer.assignment():
            committed = await self._consumer.committed(partition)
            if committed is None:
                await self._consumer.seek_to_beginning(partition)
            else:
                self._consumer.seek(partition, committed)
