"""Committed offsets read with ``require_stable`` on the real broker: never the one before a pending commit.

Right after a transaction that committed an offset ends, an ordinary OffsetFetch (aiokafka's
``consumer.committed``) often still answers the offset before it; a stage that read a partition from that
answer handled and delivered that transaction's records twice (issue 11's three-broker run). These tests show
the broker's behaviour and that ``stable_committed`` waits for the commit instead.
"""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from sambus.contracts.topics import TopicSpec
from sambus.router.kafka.admin import ensure_topics
from sambus.router.kafka.stable_offsets import UnstableOffsetsError, stable_committed

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

COMMITS = 60


async def _parts(bootstrap: str) -> tuple[TopicPartition, str, AIOKafkaConsumer, AIOKafkaProducer]:
    name = f"stable-offsets-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [TopicSpec(name, partitions=1)])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"g-{name}",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"t-{name}", enable_idempotence=True
    )
    await consumer.start()
    await producer.start()
    return TopicPartition(name, 0), f"g-{name}", consumer, producer


async def test_right_after_each_commit_the_stable_answer_is_the_offset_just_committed(
    kafka_bootstrap: str,
) -> None:
    partition, group, consumer, producer = await _parts(kafka_bootstrap)
    ordinary_behind = 0
    try:
        for offset in range(1, COMMITS + 1):
            async with producer.transaction():
                await producer.send_and_wait(partition.topic, b"x")
                await producer.send_offsets_to_transaction({partition: offset}, group)
            ordinary = await consumer.committed(partition)  # what a consumer's position comes from
            stable = await stable_committed(consumer, group, [partition])
            assert stable == {partition: offset}
            ordinary_behind += ordinary != offset
    finally:
        await producer.stop()
        await consumer.stop()
    # Not asserted (it depends on the broker's timing), printed to show why the stage asks for stable offsets.
    print(f"the ordinary OffsetFetch answered an older offset after {ordinary_behind} of {COMMITS} commits")  # noqa: T201


async def test_a_commit_pending_in_an_open_transaction_is_waited_for_not_answered_with_the_one_before(
    kafka_bootstrap: str,
) -> None:
    partition, group, consumer, producer = await _parts(kafka_bootstrap)
    try:
        async with producer.transaction():
            await producer.send_offsets_to_transaction({partition: 1}, group)
        await producer.begin_transaction()
        await producer.send_and_wait(partition.topic, b"x")
        await producer.send_offsets_to_transaction({partition: 2}, group)
        assert await consumer.committed(partition) == 1, "the ordinary answer leaves the pending commit out"
        with pytest.raises(UnstableOffsetsError, match="not stable"):
            await stable_committed(consumer, group, [partition], wait_s=1.0)
        await producer.commit_transaction()
        assert await stable_committed(consumer, group, [partition]) == {partition: 2}
    finally:
        await producer.stop()
        await consumer.stop()


async def test_a_partition_with_nothing_committed_is_answered_as_none(kafka_bootstrap: str) -> None:
    partition, group, consumer, producer = await _parts(kafka_bootstrap)
    try:
        assert await stable_committed(consumer, group, [partition]) == {partition: None}
    finally:
        await producer.stop()
        await consumer.stop()
