"""The stages' partitioner puts every keyed record where Kafka's default partitioner (murmur2) puts it."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from aiokafka.structs import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from sambus.router.kafka.partitioner import PARTITIONER, KeyPartitioner, murmur2
from sambus.router.stages.transactional import TransactionalStage

DEFAULT = DefaultPartitioner()
SETTINGS = settings(max_examples=2000, deadline=None)
keys = st.binary(min_size=0, max_size=200)
counts = st.integers(min_value=1, max_value=2000)


@SETTINGS
@given(keys)
def test_murmur2_is_aiokafkas(key: bytes):
    assert murmur2(key) == aiokafka_murmur2(key)


@SETTINGS
@given(st.lists(st.tuples(keys, counts), min_size=1, max_size=20), st.integers(min_value=1, max_value=8))
def test_each_key_lands_where_the_default_partitioner_puts_it(asked: list[tuple[bytes, int]], cache: int):
    partitioner = KeyPartitioner(max_keys=cache)  # small caches: answers are evicted and computed again
    for key, count in [*asked, *asked]:  # the second time from the cache (or recomputed after eviction)
        partitions = list(range(count))
        available = partitions[::2]  # a keyed record ignores which partitions are available
        assert partitioner(key, partitions, available) == DEFAULT(key, partitions, available)
    assert len(partitioner) <= cache


@pytest.mark.parametrize(
    ("key", "partition"),
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_the_java_clients_partitions_of_known_keys(key: bytes, partition: int):
    # The Java client's answers among 1,000 partitions (the compatibility vectors kafka-python tests with).
    assert KeyPartitioner()(key, list(range(1000)), []) == partition


def test_the_same_key_with_another_partition_count_is_computed_again():
    partitioner = KeyPartitioner()
    key = b"a-childs-pseudonym"
    for count in (3, 7, 3, 12, 7):
        partitions = list(range(count))
        assert partitioner(key, partitions, partitions) == DEFAULT(key, partitions, partitions)


def test_a_record_without_a_key_goes_to_an_available_partition():
    assert {KeyPartitioner()(None, [0, 1, 2, 3], [1, 3]) for _ in range(50)} <= {1, 3}


@pytest.mark.asyncio
async def test_the_stages_producers_use_it():
    stage = TransactionalStage(
        name="t", bootstrap_servers="127.0.0.1:1", topics=["in"], group_id="g", member_id="m",
        handler=None,  # type: ignore[arg-type]  # never called: only the producer's set-up is read
        dlq_topic="dlq",
    )  # fmt: skip
    producer = stage._new_producer(TopicPartition("in", 0))  # noqa: SLF001 - its set-up is the point
    try:
        assert producer._partitioner is PARTITIONER  # noqa: SLF001 - aiokafka does not expose it
    finally:
        await producer.stop()
        await stage.stop()
