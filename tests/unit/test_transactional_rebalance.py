"""What the transactional stage does with its per-partition producers when the group rebalances.

aiokafka rebalances eagerly: every partition is revoked, then assigned again, mostly to the same instance.
Producers must outlive that (closing and re-making ~10 of them per instance on every rebalance set off a
storm of rebalances under faults), yet a producer that another instance fenced meanwhile must be replaced,
and a partition whose producer is new must be read again from its committed offset. The consumer and the
producers are stand-ins here (no broker is needed to count which producers are made and closed); the real
thing runs in tests/fault/test_exactly_once_cluster.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from aiokafka.errors import ProducerFenced
from aiokafka.structs import ConsumerRecord, TopicPartition

from sambus.router.stages.transactional import TransactionalStage

pytestmark = pytest.mark.asyncio

P0, P1, P2 = (TopicPartition("intents", n) for n in range(3))


class FakeProducer:
    def __init__(self, partition: TopicPartition, log: list[str]) -> None:
        self.partition = partition
        self._log = log
        self.fenced = False

    async def start(self) -> None:
        self._log.append(f"start {self.partition.partition}")

    async def stop(self) -> None:
        self._log.append(f"stop {self.partition.partition}")

    def transaction(self) -> FakeProducer:
        return self

    async def __aenter__(self) -> None:
        if self.fenced:
            raise ProducerFenced

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], _group: str) -> None:
        self._log.append(f"commit {self.partition.partition}@{next(iter(offsets.values()))}")


class FakeConsumer:
    def __init__(self, log: list[str]) -> None:
        self.assigned: set[TopicPartition] = set()
        self.paused: set[TopicPartition] = set()
        self.committed_offsets: dict[TopicPartition, int] = {}
        self.batch: dict[TopicPartition, list[Any]] = {}
        self._log = log

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused.difference_update(partitions)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._log.append(f"seek {partition.partition}@{offset}")

    async def seek_to_beginning(self, partition: TopicPartition) -> None:
        self._log.append(f"seek {partition.partition}@0")

    async def stable_committed(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        """As the stage's OffsetFetch with ``require_stable`` answers."""
        return {tp: self.committed_offsets.get(tp) for tp in partitions}

    async def getmany(self, **_limits: int) -> dict[TopicPartition, list[Any]]:
        batch = {tp: records for tp, records in self.batch.items() if tp not in self.paused}
        self.batch = {}
        return batch


def _record(partition: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(partition.topic, partition.partition, offset, 0, 0, b"k", b"{}", None, 1, 2, ())


async def _no_output(_record: Any) -> list[Any]:
    return []


async def _stage(
    log: list[str],
) -> tuple[TransactionalStage, FakeConsumer, dict[TopicPartition, FakeProducer]]:
    stage = TransactionalStage(
        name="delivery",
        bootstrap_servers="127.0.0.1:1",
        topics=["intents"],
        group_id="g",
        member_id="g-i0",
        handler=_no_output,
        dlq_topic="dlq",
    )
    await stage._consumer.stop()  # noqa: SLF001 - never started; replaced by a stand-in
    consumer = FakeConsumer(log)
    made: dict[TopicPartition, FakeProducer] = {}

    def new_producer(partition: TopicPartition) -> FakeProducer:
        made[partition] = FakeProducer(partition, log)
        return made[partition]

    stage._consumer = consumer  # type: ignore[assignment]  # noqa: SLF001 - a stand-in consumer
    stage._new_producer = new_producer  # type: ignore[assignment,method-assign]  # noqa: SLF001
    stage._stable_committed = consumer.stable_committed  # type: ignore[method-assign]  # noqa: SLF001
    return stage, consumer, made


async def _assign(stage: TransactionalStage, consumer: FakeConsumer, partitions: set[TopicPartition]) -> None:
    consumer.assigned = set(partitions)
    await stage.partitions_assigned(set(partitions))


async def test_producers_outlive_an_eager_rebalance_and_only_lost_partitions_close() -> None:
    log: list[str] = []
    stage, consumer, _ = await _stage(log)
    await _assign(stage, consumer, {P0, P1})
    assert consumer.paused == {P0, P1}, "nothing is read before its producer is up"
    await stage.step()
    assert sorted(log) == ["seek 0@0", "seek 1@0", "start 0", "start 1"]
    assert consumer.paused == set()

    log.clear()
    await stage.partitions_revoked({P0, P1})  # an eager rebalance: all revoked, then P0 and P2 assigned
    await _assign(stage, consumer, {P0, P2})
    await stage.step()
    assert sorted(log) == ["seek 0@0", "seek 2@0", "start 2", "stop 1"], (
        "P0 keeps its producer and is read again from its stable commit; P1's closes; P2's is made"
    )


async def test_a_partition_given_back_is_read_from_its_stable_commit_not_the_consumers_own_answer() -> None:
    log: list[str] = []
    stage, consumer, _ = await _stage(log)
    await _assign(stage, consumer, {P0})
    await stage.step()
    consumer.batch = {P0: [_record(P0, n) for n in range(5)]}
    await stage.step()
    assert log[-1] == "commit 0@5"
    consumer.committed_offsets[P0] = (
        5  # what OffsetFetch with require_stable answers once that commit applies
    )
    await stage.partitions_revoked({P0})
    await _assign(stage, consumer, {P0})  # given back at once, its producer kept
    # The consumer's own position comes from an OffsetFetch that leaves out a commit not yet applied: it
    # answers 3 (the commit before), so the consumer fetches 3 and 4 again.
    consumer.batch = {P0: [_record(P0, 3), _record(P0, 4)]}
    log.clear()
    assert await stage.step() == 0, "nothing handled a second time"
    assert log == ["seek 0@5"]
    consumer.batch = {P0: [_record(P0, 5)]}
    assert await stage.step() == 1
    assert log[-1] == "commit 0@6"


async def test_a_fenced_producer_is_replaced_and_its_partition_read_from_the_committed_offset() -> None:
    log: list[str] = []
    stage, consumer, made = await _stage(log)
    await _assign(stage, consumer, {P0})
    await stage.step()
    await stage.partitions_revoked({P0})
    await _assign(stage, consumer, {P0})  # it stayed here, but another instance may have had it meanwhile
    made[P0].fenced = True
    consumer.committed_offsets[P0] = 7
    consumer.batch = {
        P0: [_record(P0, 5), _record(P0, 6)]
    }  # read before the other instance committed 5 and 6
    log.clear()
    assert await stage.step() == 0
    assert log == ["seek 0@7"], "given back: read again from its stable commit"
    consumer.batch = {P0: [_record(P0, 7)]}
    assert await stage.step() == 0
    assert "stop 0" in log
    await stage.step()  # made again at once: a rebalance came after the fenced one was made
    assert log[-2:] == ["start 0", "seek 0@7"], "the new producer reads on from what the other committed"
    consumer.batch = {P0: [_record(P0, 7)]}
    await stage.step()
    assert log[-1] == "commit 0@8"


async def test_a_producer_fenced_in_its_own_assignment_waits_before_it_takes_the_partition_back() -> None:
    log: list[str] = []
    stage, consumer, made = await _stage(log)
    await _assign(stage, consumer, {P0})
    await stage.step()
    made[P0].fenced = True  # no rebalance here since: this instance may be the zombie
    consumer.batch = {P0: [_record(P0, 0)]}
    await stage.step()
    log.clear()
    await stage.step()
    assert log == [], f"not made again within {TransactionalStage.FENCED_PAUSE_S} s"
    assert P0 in consumer.paused
    await stage.partitions_revoked({P0})  # the group tells it it lost P0
    await _assign(stage, consumer, set())
    await stage.step()
    assert log == [], "a partition that went elsewhere gets no producer"
