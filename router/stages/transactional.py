"""A consume-transform-produce stage with exactly-once delivery (Kafka transactions, via aiokafka).

Each poll becomes one transaction per input partition: every record the handler makes for that
partition's records, and their consumed offset, commit together or not at all. ``read_committed``
consumers downstream never see a record of an aborted batch, and a crash anywhere replays the batch from
the last committed offsets.

Fenced with any number of instances: each input partition has its own transactional producer, with a
transactional id named after the partition (``<group>-<topic>-<partition>``). A producer is made when the
group assigns the partition to this instance and, once it is up (which fences the producer of whoever had the
partition before and ends that one's open transaction), the partition is read again from its committed
offset: every transaction starts from what the last owner committed. A zombie (an instance paused past its
session timeout) cannot commit output or offsets for a partition it no longer owns: its producer was fenced.
(aiokafka sends ``TxnOffsetCommit`` v0, without the group generation of KIP-447, so fencing by generation is
not available; a producer per partition is the fencing Kafka had before KIP-447.)

aiokafka rebalances eagerly (every partition is revoked, then assigned again), so producers outlive a
rebalance: a revocation only waits for the batch in hand, and an assignment closes the producers of the
partitions that went elsewhere and makes those of the partitions that are new here. A kept producer that
another instance fenced meanwhile fails on use (:class:`ProducerFenced`) and is replaced: at once if a
rebalance came after it was made, otherwise after :attr:`TransactionalStage.FENCED_PAUSE_S` (this instance
may be the zombie, and its consumer learns so at its next heartbeat).

No record can block its topic. A record whose handler fails for good is dead-lettered; one whose output
would be too large for Kafka is dead-lettered in place of that output; and when Kafka refuses a batch for
one record in it (:data:`RECORD_REFUSED`), the stage reads that batch again one record per transaction and
dead-letters the record Kafka refuses, as a reference without its payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    CorruptRecordException,
    GroupAuthorizationFailedError,
    IllegalOperation,
    InvalidSessionTimeoutError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnknownProducerId,
    UnsupportedVersionError,
)
from aiokafka.structs import ConsumerRecord, TopicPartition

from sambus.consent.keys import FieldCipher
from sambus.contracts.errors import (
    BrokerUnavailableError,
    OutputTooLargeError,
    SambusError,
    cause_chain,
    map_errors,
)
from sambus.router.kafka.connection import Broker, client_kwargs
from sambus.router.kafka.dead_letters import dead_letter, seal
from sambus.router.kafka.partitioner import PARTITIONER
from sambus.router.kafka.records import BATCH_BYTES, MAX_RECORD_BYTES, Outgoing
from sambus.router.kafka.stable_offsets import stable_committed
from sambus.router.ops.tracing import traced

logger = logging.getLogger(__name__)

RecordHandler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[list[Outgoing]]]
BatchPreparer = Callable[[Sequence[ConsumerRecord[bytes, bytes]]], Awaitable[None]]
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
KAFKA_FATAL: tuple[type[KafkaError], ...] = (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    InvalidSessionTimeoutError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedVersionError,
)
"""Kafka's answers that no retry mends: the stage ends with them at once."""
"""Errors after which the producer's sequence numbers are lost: it is replaced by a new one (same id)."""


class TransactionHooks(Protocol):
    """What a stage's helpers do around each batch's Kafka transaction.

    A handler gathers per-batch state (ledger entries, event ids seen) while it handles records; the stage
    calls these once per batch so that state is written with the transaction, not beside it.
    """

    def before_commit(self) -> None:
        """Called after every record of the batch is sent, before the transaction commits.

        Write what must exist whenever the batch's output does (e.g. ledger entries, idempotently):
        raising a retriable error aborts the batch, which is read again. Runs in a worker thread, so the
        stage's event loop goes on polling Kafka meanwhile: it must touch only the hook's own state.
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
        bootstrap_servers: Broker,
        topics: Sequence[str],
        group_id: str,
        member_id: str,
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
        prepare: BatchPreparer | None = None,
    ) -> None:
        """Describe the stage; nothing connects until :meth:`start`.

        With ``static_membership`` the consumer joins as ``member_id`` (KIP-345), so an instance
        restarted after a crash takes its partitions back at once instead of after a rebalance; an instance
        that stops for good releases them after the session timeout.

        ``on_retriable`` turns a record whose handler raised a retriable error into records of the same
        transaction (a retry, see :mod:`sambus.router.kafka.retry`); without it the whole batch is aborted
        and read again.
        ``keys_are_pseudonyms`` keeps a dead-lettered record's key (the child's pseudonym) for replay.
        Every record for ``dlq_topic`` is sealed with ``dlq_cipher`` as it is sent (see
        :func:`sambus.router.kafka.dead_letters.seal`): without a cipher its original is not kept.
        ``prepare`` is given each batch's records before the handler sees the first of them (e.g. to read
        what they need from the database at once); a retriable error it raises aborts the batch.
        """
        self._prepare = prepare
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
        self._one_by_one = 0  # records still to handle one per transaction after Kafka refused a batch
        self._bootstrap_servers = bootstrap_servers
        self._producers: dict[TopicPartition, AIOKafkaProducer] = {}
        self._assigned: set[TopicPartition] = set()  # given by the group, producer not made yet
        self._kept: set[TopicPartition] = set()  # given again with their producer kept: not read again yet
        self._owned: set[TopicPartition] = set()  # the group's last assignment
        self._generation = 0  # assignments seen
        self._made_in: dict[TopicPartition, int] = {}  # the assignment a producer was made in
        self._fenced_until: dict[TopicPartition, float] = {}  # fenced in its own assignment: wait
        self._lock = asyncio.Lock()  # a rebalance waits for the batch in hand
        self._revoking = False  # ... which then ends after the record in hand
        self._consumer = AIOKafkaConsumer(
            **client_kwargs(bootstrap_servers),
            group_id=group_id,
            group_instance_id=member_id if static_membership else None,
            client_id=member_id,  # names this instance in the group's description (`sambus queues`)
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            rebalance_timeout_ms=self.REBALANCE_TIMEOUT_MS,
        )

    FENCED_PAUSE_S = 5.0
    """How long a producer fenced in the assignment it was made in waits before it is made again: longer than
    a heartbeat (3 s), so a zombie learns it left the group before it fences the partition's new owner."""

    BATCH_BUDGET_S = 10.0
    """How long a batch takes in records before it commits those it has: well inside the transaction timeout
    (aiokafka's 60 s). A batch of 500 that read the database per record took longer on a loaded machine, and
    the coordinator aborted it (``ProducerFenced``) again and again: nothing got through."""

    YIELD_EVERY_S = 0.005
    """How long a batch holds the event loop between two turns it gives it (after the record in hand): the
    consumer's heartbeats and fetches, the producers' sends and a rebalance's revocation wait at most this
    long (plus one record). A turn after every record cost the stage a loop iteration per record, and woke
    the producer's sender for a produce request of a few records each time."""

    KAFKA_FAILING_S = 300.0
    """How long Kafka may keep failing the stage's polls before the stage gives up (a broker restarts in
    well under a minute; a coordinator moves in seconds)."""

    REBALANCE_TIMEOUT_MS = 30_000
    """How long the group waits for a member to finish its batch in hand and join again in a rebalance."""

    def transactional_id(self, partition: TopicPartition) -> str:
        """The transactional id of the producer for ``partition``: the same in every instance."""
        return f"{self._group_id}-{partition.topic}-{partition.partition}"

    def _new_producer(self, partition: TopicPartition) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **client_kwargs(self._bootstrap_servers),
            transactional_id=self.transactional_id(partition),
            enable_idempotence=True,
            acks="all",
            # No linger: the batch's sends are awaited before its commit, so the last batch waited 5 ms for
            # nothing; records still gather in batches while a produce request is in flight (one per broker).
            linger_ms=0,
            max_batch_size=BATCH_BYTES,
            max_request_size=MAX_RECORD_BYTES,
            partitioner=PARTITIONER,  # Kafka's default partition for each key, cached
        )

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics the stage reads."""
        return self._topics

    @property
    def dlq_topic(self) -> str:
        """Where the stage puts what it cannot handle."""
        return self._dlq_topic

    async def _renew_producer(self, partition: TopicPartition, cause: KafkaError) -> None:
        """Replace a partition's producer after Kafka refused a record: its sequence numbers are spent."""
        logger.warning("stage %s starts a new producer after %s", self.name, type(cause).__name__)
        await self._close_producer(partition)
        self._assigned.add(partition)
        await self._install(await self._start_producers([partition]), rewind=False)  # no other owner

    async def _fenced(self, partition: TopicPartition) -> None:
        """Another instance fenced ``partition``'s producer: replace it, at once or after a pause."""
        made_in = self._made_in.get(partition, self._generation)
        await self._close_producer(partition)
        if partition not in self._owned:
            return
        self._assigned.add(partition)
        if made_in == self._generation:  # fenced by an owner of a newer generation than ours, maybe
            self._fenced_until[partition] = time.monotonic() + self.FENCED_PAUSE_S
            logger.warning(
                "stage %s: another instance took %s[%d]; waiting %.0f s before taking it back",
                self.name, partition.topic, partition.partition, self.FENCED_PAUSE_S,
            )  # fmt: skip
        else:
            logger.info(
                "stage %s: %s[%d] was elsewhere since its producer was made; making a new one",
                self.name, partition.topic, partition.partition,
            )  # fmt: skip

    async def _close_producer(self, partition: TopicPartition) -> None:
        producer = self._producers.pop(partition, None)
        self._made_in.pop(partition, None)
        if producer is not None:
            with contextlib.suppress(KafkaError):
                await producer.stop()

    def _wanted(self) -> list[TopicPartition]:
        """Partitions assigned here whose producer is to be made now."""
        now = time.monotonic()
        return sorted(
            (tp for tp in self._assigned - set(self._producers) if self._fenced_until.get(tp, 0.0) <= now),
            key=lambda tp: (tp.topic, tp.partition),
        )

    async def _start_producers(
        self, wanted: Sequence[TopicPartition]
    ) -> list[tuple[TopicPartition, AIOKafkaProducer]]:
        """Start producers for ``wanted`` (each fences the partition's last one); returns those started."""
        if not wanted:
            return []
        made = {tp: self._new_producer(tp) for tp in wanted}
        started = await asyncio.gather(*(p.start() for p in made.values()), return_exceptions=True)
        up = []
        for (tp, producer), result in zip(made.items(), started, strict=True):
            if isinstance(result, BaseException):
                with contextlib.suppress(KafkaError):
                    await producer.stop()
                logger.warning(
                    "stage %s cannot start the producer of %s[%d] yet (%s)",
                    self.name, tp.topic, tp.partition, type(result).__name__,
                )  # fmt: skip
                continue
            up.append((tp, producer))
        return up

    async def _install(
        self, up: list[tuple[TopicPartition, AIOKafkaProducer]], *, rewind: bool = True
    ) -> set[TopicPartition]:
        """Take the started producers of partitions still assigned here; returns the partitions read again.

        With ``rewind`` each partition is read again from its committed offset, which no earlier owner can
        move any more.
        """
        taken = set()
        for tp, producer in up:
            if tp not in self._assigned or tp in self._producers:  # revoked while it started
                with contextlib.suppress(KafkaError):
                    await producer.stop()
                continue
            self._producers[tp] = producer
            self._made_in[tp] = self._generation
            self._assigned.discard(tp)
            self._fenced_until.pop(tp, None)
            taken.add(tp)
        self._kept -= taken
        if not rewind:
            return set()
        await self._read_again(taken)
        return taken

    async def _settle_kept(self) -> set[TopicPartition]:
        """Read partitions given back with their producer kept again, from their stable committed offsets."""
        kept = self._kept & set(self._producers)
        self._kept.clear()
        await self._read_again(kept)
        return kept

    async def _read_again(self, partitions: set[TopicPartition]) -> None:
        """Seek ``partitions`` to their stable committed offsets and read them from there."""
        if partitions:
            await self._rewind(*partitions)
            owned = self._consumer.assignment()
            self._consumer.resume(*(tp for tp in partitions if tp in owned))

    def _hold(self, partition: TopicPartition) -> None:
        """Read ``partition`` no further until its producer is up (see :meth:`_install`)."""
        if partition in self._consumer.assignment():
            self._consumer.pause(partition)

    async def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """The group gave this instance ``assigned``: producers of partitions new here are made (again).

        A partition that stays here keeps its producer; one that went elsewhere has its producer closed.
        """
        async with self._lock:
            self._generation += 1
            for partition in set(self._producers) - assigned:
                await self._close_producer(partition)
            for partition in (assigned - self._owned) & set(self._producers):
                await self._close_producer(partition)  # it was elsewhere meanwhile: fenced, surely
            self._owned = set(assigned)
            self._assigned = set(assigned) - set(self._producers)
            self._kept = set(assigned) & set(self._producers)
            self._fenced_until.clear()
            waiting = set(assigned) & self._consumer.assignment()
            if waiting:
                # Read once their producers are up and their committed offsets are stable: the consumer's own
                # position comes from an OffsetFetch that leaves out a commit still pending (see _rewind).
                self._consumer.pause(*waiting)

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """The group takes ``revoked`` away: once the batch in hand is done (committed or aborted), it is.

        Producers are kept: most partitions come back to the same instance after an eager rebalance.
        """
        self._revoking = True  # the batch in hand commits what it has handled so far
        try:
            async with self._lock:
                self._assigned -= revoked
        finally:
            self._revoking = False

    async def start(self) -> None:
        """Connect the consumer and join the group; producers are made as partitions are assigned.

        Raises:
            BrokerUnavailableError: the broker cannot be reached.
        """
        try:
            with map_errors(f"connect stage {self.name}"):
                await self._consumer.start()
                self._consumer.subscribe(self._topics, listener=_Rebalance(self))
        except BrokerUnavailableError:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Disconnect; an open transaction is aborted by the broker."""
        await self._consumer.stop()
        for partition in list(self._producers):
            await self._close_producer(partition)

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until ``stop`` is set.

        Kafka's passing failures do not end the stage. aiokafka hands a coordination failure (a broker's
        ``UnknownError`` to a JoinGroup while a broker restarts, an unreachable coordinator) to the next
        poll, and its consumer goes on afterwards; such a failure, or one while the stage reads its committed
        offsets, closes this instance's producers and starts its partitions again from their committed
        offsets, as after a rebalance. It ends the stage (and so the instance, for its supervisor to restart)
        only when Kafka keeps failing for :attr:`KAFKA_FAILING_S`, or at once when only an operator can mend
        it (:data:`KAFKA_FATAL`).

        Raises:
            BrokerUnavailableError: Kafka kept failing, or refused this stage for good.
        """
        failing_since: float | None = None
        while not stop.is_set():
            try:
                await self.step()
            except KAFKA_FATAL as exc:
                raise BrokerUnavailableError(
                    f"stage {self.name}: Kafka refuses it ({type(exc).__name__}); see the broker's ACLs "
                    "and settings"
                ) from exc
            except KafkaError as exc:
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since > self.KAFKA_FAILING_S:
                    raise BrokerUnavailableError(
                        f"stage {self.name}: Kafka kept failing for {now - failing_since:.0f} s "
                        f"({type(exc).__name__})"
                    ) from exc
                logger.warning(
                    "stage %s: Kafka failed (%s); its partitions start again from their committed offsets",
                    self.name, type(exc).__name__,
                )  # fmt: skip
                await self._start_again()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self._retry_pause_s)
            else:
                failing_since = None

    async def _start_again(self) -> None:
        """Close every producer; the partitions still owned get new ones and are read from their commits."""
        async with self._lock:
            for partition in list(self._producers):
                await self._close_producer(partition)
            self._assigned = set(self._owned)
            self._kept.clear()
            self._fenced_until.clear()
            waiting = self._assigned & self._consumer.assignment()
            if waiting:
                self._consumer.pause(*waiting)  # read again once their producers are up

    async def step(self) -> int:
        """Poll once and process what came in, a transaction per partition; returns the number of records."""
        up = await self._start_producers(self._wanted())  # not under the lock: a rebalance need not wait
        max_records = 1 if self._one_by_one else self._max_batch
        batch = await self._consumer.getmany(timeout_ms=self._poll_timeout_ms, max_records=max_records)
        done = 0
        async with self._lock:
            fresh = await self._install(up) | await self._settle_kept()
            owned = self._consumer.assignment()
            for partition, records in batch.items():
                if partition in fresh:  # read again from its committed offset
                    continue
                producer = self._producers.get(partition)
                if self._revoking:  # a rebalance waits: the rest of the batch after it
                    if partition in owned:
                        self._consumer.seek(partition, records[0].offset)
                    continue
                if producer is None:  # not (or no longer) ours, or its producer is not up: read it later
                    if partition in owned:
                        self._consumer.seek(partition, records[0].offset)
                        self._hold(partition)
                    continue
                done += await self._step_partition(partition, records, producer)
        return done

    async def _step_partition(
        self,
        partition: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        producer: AIOKafkaProducer,
    ) -> int:
        count = len(records)
        try:
            handled = await self._process_with_hooks(producer, partition, records)
        except (
            ProducerFenced,
            IllegalOperation,
        ):  # fenced mid-transaction, aiokafka says "not in transaction"
            await self._fenced(partition)
            await self._rewind(partition)
            self._hold(partition)
            return 0
        except RECORD_REFUSED as exc:
            await self._renew_producer(partition, exc)
            if count == 1:
                return await self._refused(partition, records[0], exc)
            logger.warning(
                "stage %s: Kafka refused a record of a batch of %d (%s); reading them one by one",
                self.name, count, type(exc).__name__,
            )  # fmt: skip
            self._one_by_one = count
            await self._rewind(partition)
            return 0
        except (KafkaError, SambusError) as exc:
            logger.warning(
                "stage %s aborted a batch of %d records (%s); reading it again",
                self.name, count, cause_chain(exc),  # types and database codes: no message, no parameters
            )  # fmt: skip
            if isinstance(exc, PRODUCER_BROKEN):
                await self._renew_producer(partition, exc)
            await self._rewind(partition)
            await asyncio.sleep(self._retry_pause_s)
            return 0
        if handled < count and partition in self._consumer.assignment():
            self._consumer.seek(
                partition, records[handled].offset
            )  # cut short by a rebalance: the rest later
        self._one_by_one = max(0, self._one_by_one - handled)
        return handled

    async def _refused(
        self, partition: TopicPartition, record: ConsumerRecord[bytes, bytes], exc: KafkaError
    ) -> int:
        """Dead-letter ``record``, whose output Kafka refused, as a reference (its payload left out)."""
        logger.warning(
            "stage %s dead-lettered %s[%d]@%d: Kafka refused its output (%s)",
            self.name, record.topic, record.partition, record.offset, type(exc).__name__,
        )  # fmt: skip
        error = _RefusedByKafkaError(f"Kafka refused what the record became ({type(exc).__name__})")
        letter = dead_letter(
            record, error, dlq_topic=self._dlq_topic, keep_pseudonym=self._keys_are_pseudonyms, max_bytes=0
        )
        producer = self._producers.get(partition)
        try:
            if producer is None:
                raise ProducerFenced  # noqa: TRY301 - handled below like a fenced commit
            await self._process_with_hooks(producer, partition, [record], outputs={record.offset: [letter]})
        except (ProducerFenced, IllegalOperation):
            await self._fenced(partition)
            await self._rewind(partition)
            self._hold(partition)
            return 0
        except KafkaError as again:
            logger.warning(
                "stage %s could not dead-letter it (%s); reading it again", self.name, type(again).__name__
            )
            if isinstance(again, PRODUCER_BROKEN):
                await self._renew_producer(partition, again)
            await self._rewind(partition)
            await asyncio.sleep(self._retry_pause_s)
            return 0
        self._one_by_one = max(0, self._one_by_one - 1)
        return 1

    async def _process_with_hooks(
        self,
        producer: AIOKafkaProducer,
        partition: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        *,
        outputs: dict[int, list[Outgoing]] | None = None,
    ) -> int:
        try:
            return await self._process(producer, partition, records, outputs=outputs)
        except BaseException:
            for hook in self._hooks:
                hook.after_abort()
            raise

    async def _process(
        self,
        producer: AIOKafkaProducer,
        partition: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        *,
        outputs: dict[int, list[Outgoing]] | None = None,
    ) -> int:
        """One transaction for ``records`` of ``partition``; returns how many of them it holds.

        ``outputs`` (by offset) replaces the handler. The event loop gets a turn after the record in hand
        once :attr:`YIELD_EVERY_S` has passed since its last one: handlers read the database synchronously,
        and a batch of 500 that held the loop throughout starved the consumers' heartbeats on a loaded
        machine (their sessions expired every half minute, each expiry a rebalance that aborted the batches
        in hand). A rebalance waits for the batch in hand, so the batch ends after the record in hand and
        commits the records handled so far; the rest is read again. So does a batch that has taken
        :attr:`BATCH_BUDGET_S`.
        """
        sends: list[asyncio.Future[object]] = []
        handled = 0
        try:
            async with producer.transaction():
                if outputs is None and self._prepare is not None:
                    await self._prepare(records)
                # After ``prepare`` (no send yet): the broker's timer starts at the first send.
                yielded = time.monotonic()
                budget_ends = yielded + self.BATCH_BUDGET_S
                for record in records:
                    made = outputs[record.offset] if outputs is not None else await self._handle(record)
                    for out in made:
                        sends.append(await self._send(producer, out))  # noqa: PERF401 - kept if one raises
                    handled += 1
                    now = time.monotonic()
                    if now - yielded >= self.YIELD_EVERY_S:  # heartbeats, fetches and sends go on meanwhile
                        await asyncio.sleep(0)
                        yielded = now
                    if self._revoking or now > budget_ends:
                        break
                await asyncio.gather(*sends)
                await producer.send_offsets_to_transaction(
                    {partition: records[handled - 1].offset + 1}, self._group_id
                )
                for hook in self._hooks:  # database writes (the ledger): off the loop that polls Kafka
                    await asyncio.to_thread(hook.before_commit)
        except BaseException:
            # The batch failed as a whole and is read again; its sends fail with it (a fenced producer fails
            # every one), and nobody awaits them now.
            forget_failures(sends)
            raise
        for hook in self._hooks:
            hook.after_commit()
        return handled

    async def _send(self, producer: AIOKafkaProducer, out: Outgoing) -> asyncio.Future[object]:
        if out.topic == self._dlq_topic:
            out = seal(out, self._dlq_cipher)
        future: asyncio.Future[object] = await producer.send(
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

    async def _rewind(self, *partitions: TopicPartition) -> None:
        """Read ``partitions`` again from their committed offsets, once no commit of theirs is pending.

        A transaction's offset commit is still pending for a moment after the transaction committed (and after
        a new producer fenced the old one); an ordinary OffsetFetch answers the offset before it, and the
        records of that committed transaction would be handled, and delivered, a second time.
        """
        owned = [tp for tp in partitions if tp in self._consumer.assignment()]
        committed = await self._stable_committed(owned)
        for partition, offset in committed.items():
            if partition not in self._consumer.assignment():
                continue
            if offset is None:
                await self._consumer.seek_to_beginning(partition)
            else:
                self._consumer.seek(partition, offset)

    async def _stable_committed(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        return await stable_committed(self._consumer, self._group_id, partitions)


def forget_failures(futures: Sequence[asyncio.Future[object]]) -> None:
    """Mark the failures of ``futures`` (sends of an aborted transaction) as seen, now or when they come.

    Else asyncio logs "Future exception was never retrieved" for each send of a batch that another instance
    fenced: noise that hides real errors.
    """
    for future in futures:
        future.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the stage which partitions the group gives it and takes away."""

    def __init__(self, stage: TransactionalStage) -> None:
        self._stage = stage

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._stage.partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._stage.partitions_assigned(set(assigned))
