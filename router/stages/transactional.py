"""A consume-transform-produce stage with exactly-once delivery (Kafka transactions, via aiokafka).

Each poll becomes one transaction: every record the handler makes for the batch, and the consumed
offsets, commit together or not at all. ``read_committed`` consumers downstream never see a record of
an aborted batch, and a crash anywhere replays the batch from the last committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, ProducerFenced
from aiokafka.structs import ConsumerRecord, TopicPartition

from sambus.consent.keys import FieldCipher
from sambus.contracts.errors import BrokerUnavailableError, SambusError, map_errors
from sambus.router.kafka.connection import Broker, client_kwargs
from sambus.router.kafka.dead_letters import dead_letter, seal
from sambus.router.kafka.records import Outgoing
from sambus.router.ops.tracing import traced

logger = logging.getLogger(__name__)

RecordHandler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[list[Outgoing]]]
FailureHandler = Callable[[ConsumerRecord[bytes, bytes], SambusError], list[Outgoing]]


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


class TransactionalStage:
    """Reads ``topics`` in a consumer group and hands each record to ``handler``.

    A handler's non-retriable :class:`SambusError` sends that record to the dead-letter topic and
    the stage goes on; a retriable one aborts the batch, which is read again after a pause.
    """

    def __init__(
        self,
        *,
        name: str,
        bootstrap_servers: Broker,
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
        dlq_cipher: FieldCipher | None = None,
    ) -> None:
        """Describe the stage; nothing connects until :meth:`start`.

        With ``static_membership`` the consumer joins as ``transactional_id`` (KIP-345), so an instance
        restarted after a crash takes its partitions back at once instead of after a rebalance; an instance
        that stops for good releases them after the session timeout.

        ``on_retriable`` turns a record whose handler raised a retriable error into records of the same
        transaction (a retry, see :mod:`sambus.router.kafka.retry`); without it the whole batch is aborted
        and read again.
        ``keys_are_pseudonyms`` keeps a dead-lettered record's key (the child's pseudonym) for replay.
        Every record for ``dlq_topic`` is sealed with ``dlq_cipher`` as it is sent (see
        :func:`sambus.router.kafka.dead_letters.seal`): without a cipher its original is not kept.
        """
        self._dlq_cipher = dlq_cipher
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
        self._consumer = AIOKafkaConsumer(
            *self._topics,
            **client_kwargs(bootstrap_servers),
            group_id=group_id,
            group_instance_id=transactional_id if static_membership else None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        self._producer = AIOKafkaProducer(
            **client_kwargs(bootstrap_servers),
            transactional_id=transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
        )

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics the stage reads."""
        return self._topics

    @property
    def dlq_topic(self) -> str:
        """Where the stage puts what it cannot handle."""
        return self._dlq_topic

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
        batch = await self._consumer.getmany(timeout_ms=self._poll_timeout_ms, max_records=self._max_batch)
        if not batch:
            return 0
        try:
            await self._process_with_hooks(batch)
        except ProducerFenced:
            logger.exception(
                "stage %s was fenced by a newer instance with the same transactional id", self.name
            )
            raise
        except (KafkaError, SambusError) as exc:
            logger.warning(
                "stage %s aborted a batch of %d records (%s); reading it again",
                self.name,
                sum(len(r) for r in batch.values()),
                type(exc).__name__,
            )
            await self._rewind()
            await asyncio.sleep(self._retry_pause_s)
            return 0
        return sum(len(records) for records in batch.values())

    async def _process_with_hooks(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        try:
            await self._process(batch)
        except BaseException:
            for hook in self._hooks:
                hook.after_abort()
            raise

    async def _process(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        async with self._producer.transaction():
            sends = []
            offsets = {}
            for partition, records in batch.items():
                for record in records:
                    sends.extend([await self._send(out) for out in await self._handle(record)])
                offsets[partition] = records[-1].offset + 1
            await asyncio.gather(*sends)
            await self._producer.send_offsets_to_transaction(offsets, self._group_id)
            for hook in self._hooks:
                hook.before_commit()
        for hook in self._hooks:
            hook.after_commit()

    async def _send(self, out: Outgoing) -> asyncio.Future[object]:
        if out.topic == self._dlq_topic:
            out = seal(out, self._dlq_cipher)
        future: asyncio.Future[object] = await self._producer.send(
            out.topic, out.value, key=out.key, headers=list(out.headers)
        )
        return future

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        try:
            return await traced(self.name, self._handler, record)  # spans, trace headers, metrics
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

    async def _rewind(self) -> None:
        for partition in self._consumer.assignment():
            committed = await self._consumer.committed(partition)
            if committed is None:
                await self._consumer.seek_to_beginning(partition)
            else:
                self._consumer.seek(partition, committed)
