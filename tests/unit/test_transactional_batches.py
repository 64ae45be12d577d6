"""What the transactional stage does inside one batch, with stand-ins for the consumer and the producers.

It gives the event loop a turn after every record (heartbeats must not starve while a batch reads the
database), it marks the sends of a failed transaction as seen (no "Future exception was never retrieved"
after a fencing), and it logs why it aborted a batch without a database error's text. The real thing runs in
tests/fault/test_exactly_once_cluster.py.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import time
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    IllegalOperation,
    KafkaError,
    NodeNotReadyError,
    ProducerFenced,
    UnknownError,
)
from aiokafka.structs import ConsumerRecord, TopicPartition
from tests.unit.test_transactional_rebalance import FakeConsumer, FakeProducer, _record

from sambus.contracts.errors import BrokerUnavailableError, map_errors
from sambus.router.kafka.records import Outgoing
from sambus.router.stages.transactional import RecordHandler, TransactionalStage

pytestmark = pytest.mark.asyncio

P0 = TopicPartition("intents", 0)
PERSONNUMMER = "201203150006"


class SendingProducer(FakeProducer):
    """A producer whose sends are futures the test settles, and that refuses sends after ``refuse_after``."""

    def __init__(self, partition: TopicPartition, log: list[str]) -> None:
        super().__init__(partition, log)
        self.sent: list[asyncio.Future[object]] = []
        self.refuse_after: int | None = None

    async def send(self, *_args: object, **_kwargs: object) -> asyncio.Future[object]:
        if self.refuse_after is not None and len(self.sent) >= self.refuse_after:
            raise IllegalOperation("Can't send messages while not in transaction")  # as when fenced
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.sent.append(future)
        return future


async def _stage(handler: RecordHandler) -> tuple[TransactionalStage, FakeConsumer, list[SendingProducer]]:
    """A stage that owns P0 and has read nothing yet."""
    log: list[str] = []
    stage = TransactionalStage(
        name="processes",
        bootstrap_servers="127.0.0.1:1",
        topics=["intents"],
        group_id="g",
        member_id="g-i0",
        handler=handler,
        dlq_topic="dlq",
        retry_pause_s=0,
    )
    await stage._consumer.stop()  # noqa: SLF001 - never started; replaced by a stand-in
    consumer = FakeConsumer(log)
    made: list[SendingProducer] = []

    def new_producer(partition: TopicPartition) -> SendingProducer:
        made.append(SendingProducer(partition, log))
        return made[-1]

    stage._consumer = consumer  # type: ignore[assignment]  # noqa: SLF001 - a stand-in consumer
    stage._new_producer = new_producer  # type: ignore[assignment,method-assign]  # noqa: SLF001
    stage._stable_committed = consumer.stable_committed  # type: ignore[method-assign]  # noqa: SLF001
    consumer.assigned = {P0}
    await stage.partitions_assigned({P0})
    await stage.step()  # makes P0's producer
    return stage, consumer, made


async def test_the_event_loop_gets_a_turn_after_every_record_of_a_batch() -> None:
    """A batch of 500 that reads the database on the loop once starved the heartbeats for 10 s and more."""

    async def reads_the_database(_record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        time.sleep(0.02)  # a synchronous query, as the handlers make  # noqa: ASYNC251
        return []

    stage, consumer, _ = await _stage(reads_the_database)
    turns: list[float] = []

    async def heartbeat() -> None:
        while True:
            turns.append(time.monotonic())
            await asyncio.sleep(0)

    beating = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)
    consumer.batch = {P0: [_record(P0, n) for n in range(50)]}
    started = time.monotonic()
    assert await stage.step() == 50
    took = time.monotonic() - started
    await asyncio.sleep(0)
    beating.cancel()
    gaps = [b - a for a, b in itertools.pairwise(turns)]
    assert max(gaps) < took / 5, f"the loop waited {max(gaps):.2f} s of a {took:.2f} s batch for its turn"


async def test_the_sends_of_a_fenced_transaction_are_not_left_unretrieved() -> None:
    async def one_output(record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        return [Outgoing("deliver", record.value)]

    stage, consumer, made = await _stage(one_output)
    producer = made[0]
    producer.refuse_after = 2  # fenced while the batch is sent: the third send raises
    unseen: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unseen.append(context))
    try:
        consumer.batch = {P0: [_record(P0, n) for n in range(3)]}
        assert await stage.step() == 0, "the batch is aborted and read again"
        for future in producer.sent:  # the sender fails the batch's records, as aiokafka does
            future.set_exception(ProducerFenced())
        producer.sent.clear()
        await asyncio.sleep(0)
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert [c["message"] for c in unseen] == []


async def test_an_aborted_batch_is_logged_with_the_cause_of_its_error_but_not_the_statement(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = sa.create_engine("sqlite://")

    async def store_away(_record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        with map_errors("read the process state"), engine.connect() as conn:
            conn.execute(sa.text("SELECT * FROM processes WHERE child = :c"), {"c": PERSONNUMMER})
        return []

    stage, consumer, _ = await _stage(store_away)
    consumer.batch = {P0: [_record(P0, 0)]}
    with caplog.at_level(logging.WARNING, logger="sambus.router.stages.transactional"):
        assert await stage.step() == 0
    engine.dispose()
    [line] = [r.getMessage() for r in caplog.records if "aborted a batch" in r.getMessage()]
    assert "StoreUnavailableError <- OperationalError <- OperationalError [SQLITE_ERROR]" in line
    assert PERSONNUMMER not in caplog.text
    assert "processes" not in line.split("(", 1)[1], "no table, no statement"


async def test_a_rebalance_ends_the_batch_after_the_record_in_hand_which_commits_what_it_handled() -> None:
    """A rebalance waits for the batch in hand; a long batch kept the whole group waiting (up to 30 s)."""
    revoking: list[asyncio.Task[None]] = []
    handled: list[int] = []

    async def handler(record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        handled.append(record.offset)
        if record.offset == 2:  # the group starts a rebalance while the third record is handled
            revoking.append(asyncio.create_task(stage.partitions_revoked({P0})))
        return []

    stage, consumer, made = await _stage(handler)
    stage.YIELD_EVERY_S = 0.0  # a turn after every record: the revocation starts after the third
    log = made[0]._log  # noqa: SLF001 - the stand-ins' shared log
    log.clear()
    consumer.batch = {P0: [_record(P0, n) for n in range(10)]}
    assert await stage.step() == 3
    await revoking[0]
    assert handled == [0, 1, 2]
    assert log == ["commit 0@3", "seek 0@3"], "the three handled commit; the rest is read again"


async def test_a_batch_that_took_its_time_budget_commits_what_it_handled_and_reads_the_rest_again() -> None:
    """On a loaded machine a batch of 500 outlived the transaction timeout and was aborted again and again."""

    async def slow(_record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        time.sleep(0.02)  # a synchronous query  # noqa: ASYNC251
        return []

    stage, consumer, made = await _stage(slow)
    stage.BATCH_BUDGET_S = 0.1
    log = made[0]._log  # noqa: SLF001 - the stand-ins' shared log
    log.clear()
    consumer.batch = {P0: [_record(P0, n) for n in range(100)]}
    handled = await stage.step()
    assert 0 < handled < 100
    assert log == [f"commit 0@{handled}", f"seek 0@{handled}"]


class FailingPolls:
    """Wraps a stand-in consumer: its next polls raise what aiokafka hands a poll after a failed JoinGroup."""

    def __init__(
        self, consumer: Any, failures: list[KafkaError], then: dict[TopicPartition, list[Any]]
    ) -> None:
        self._consumer = consumer
        self._failures = failures
        self._then = then

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)

    async def getmany(self, **limits: int) -> dict[TopicPartition, list[Any]]:
        await asyncio.sleep(0)
        if self._failures:
            raise self._failures.pop(0)
        if self._then and not self._consumer.paused:  # what the consumer fetches once it reads again
            self._consumer.batch, self._then = self._then, {}
        return await self._consumer.getmany(**limits)


async def _run_until(stage: TransactionalStage, done: asyncio.Event) -> None:
    await asyncio.wait_for(stage.run(done), timeout=30)


async def test_a_failed_poll_starts_the_partitions_again_from_their_commits_and_the_stage_goes_on() -> None:
    """A broker's UnknownError to a JoinGroup (a broker restarting) ended the stage and its instance."""
    handled: list[int] = []
    done = asyncio.Event()

    async def handler(record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        handled.append(record.offset)
        if len(handled) == 2:
            done.set()
        return []

    stage, consumer, made = await _stage(handler)
    consumer.committed_offsets[P0] = 7
    then = {P0: [_record(P0, 7), _record(P0, 8)]}
    stage._consumer = FailingPolls(consumer, [UnknownError(), NodeNotReadyError()], then)  # noqa: SLF001
    log = made[0]._log  # noqa: SLF001 - the stand-ins' shared log
    log.clear()
    await _run_until(stage, done)
    assert handled == [7, 8]
    assert len(made) == 3, "after each failed poll the producer in hand was closed and a new one made"
    assert "seek 0@7" in log, "read again from its committed offset"
    assert log[-1] == "commit 0@9"


async def test_kafka_failing_for_good_or_refusing_the_stage_ends_it_with_the_reason() -> None:
    stage, consumer, _ = await _stage(_nothing)
    stage._consumer = FailingPolls(consumer, [GroupAuthorizationFailedError()], {})  # noqa: SLF001
    with pytest.raises(BrokerUnavailableError, match="Kafka refuses it \\(GroupAuthorizationFailedError\\)"):
        await _run_until(stage, asyncio.Event())

    stage, consumer, _ = await _stage(_nothing)
    stage.KAFKA_FAILING_S = 0.0
    stage._consumer = FailingPolls(consumer, [UnknownError(), UnknownError()], {})  # noqa: SLF001
    with pytest.raises(BrokerUnavailableError, match="Kafka kept failing for 0 s \\(UnknownError\\)"):
        await _run_until(stage, asyncio.Event())


async def _nothing(_record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
    return []


async def test_a_batch_of_quick_records_gives_the_loop_a_turn_per_yield_interval_not_per_record() -> None:
    """A turn after every record cost a loop iteration (and a produce request of a few records) per record."""

    async def quick(_record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        return []

    stage, consumer, _ = await _stage(quick)
    stage.YIELD_EVERY_S = 60.0
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    counting = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    consumer.batch = {P0: [_record(P0, n) for n in range(50)]}
    before = turns
    assert await stage.step() == 50
    during = turns - before
    counting.cancel()
    assert during < 10, f"the batch of 50 gave the loop {during} turns"
