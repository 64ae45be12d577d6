"""Small admin tasks against a broker: is it there, and create the topics sambus needs."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.structs import ConsumerRecord, TopicPartition

from sambus.contracts.errors import BrokerUnavailableError, ConfigError, map_errors
from sambus.contracts.topics import TopicSpec
from sambus.router.kafka.connection import Broker, client_kwargs, kafka_errors

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even when an event loop is running."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def metadata_answers(bootstrap_servers: Broker, *, timeout_ms: int = 3000, brokers: int = 1) -> bool:
    """Whether a metadata request is answered, naming ``brokers`` or more brokers (an open port is not)."""
    client = AIOKafkaClient(**client_kwargs(bootstrap_servers), request_timeout_ms=timeout_ms)
    try:
        await client.bootstrap()
        metadata = await client.fetch_all_metadata()
        return len(metadata.brokers()) >= brokers
    except (KafkaError, OSError):
        return False
    finally:
        await client.close()


async def ensure_topics(bootstrap_servers: Broker, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created.

    Raises:
        ConfigError: the broker refuses a topic as specified (e.g. more replicas than brokers).
        BrokerUnavailableError: the broker cannot be reached, or cannot create a topic now.
    """
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap_servers), request_timeout_ms=15000)
    try:
        async with kafka_errors(f"create topics on {bootstrap_servers}", bootstrap_servers):
            await admin.start()
            existing = set(await admin.list_topics())
            wanted = [spec for spec in specs if spec.name not in existing]
            if not wanted:
                return []
            response = await admin.create_topics(
                [
                    NewTopic(
                        spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=spec.replication_factor,
                        topic_configs=spec.config,
                    )
                    for spec in wanted
                ]
            )
    finally:
        await admin.close()
    return _created(response.topic_errors, wanted)


def _created(topic_errors: Sequence[tuple[Any, ...]], wanted: Sequence[TopicSpec]) -> list[str]:
    """The topics a CreateTopics answer says were made; raises for one refused (aiokafka does not)."""
    specs = {spec.name: spec for spec in wanted}
    created: list[str] = []
    for name, code, *message in topic_errors:
        if code == 0:
            created.append(name)
            continue
        if code == TopicAlreadyExistsError.errno:  # made meanwhile, by another instance
            continue
        error = for_code(code)
        spec = specs[name]
        why = f"{error.message} ({message[0]})" if message and message[0] else error.message
        detail = (
            f"cannot create topic {name} ({spec.partitions} partitions, replication factor "
            f"{spec.replication_factor}): {why}"
        )
        raise (BrokerUnavailableError if error.retriable else ConfigError)(detail)
    return created


async def partitions_of(bootstrap_servers: Broker, names: Sequence[str]) -> dict[str, list[int]]:
    """The partition numbers of each existing topic in ``names``.

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
    """
    if not names:
        return {}
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap_servers), request_timeout_ms=10000)
    try:
        async with kafka_errors(f"describe topics on {bootstrap_servers}", bootstrap_servers):
            await admin.start()
            described = await admin.describe_topics(list(names))
    finally:
        await admin.close()
    return {
        d["topic"]: sorted(p["partition"] for p in d["partitions"])
        for d in described
        if d.get("error_code", 0) == 0
    }


async def read_topic(
    bootstrap_servers: Broker, topic: str, *, idle_polls: int = 2
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record on ``topic``, from the beginning to the end offsets as they were at the start.

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
    """
    records: list[ConsumerRecord[bytes, bytes]] = []
    partitions = [
        TopicPartition(topic, p) for p in (await partitions_of(bootstrap_servers, [topic])).get(topic, [])
    ]
    if not partitions:
        return records
    consumer = AIOKafkaConsumer(
        **client_kwargs(bootstrap_servers), enable_auto_commit=False, isolation_level="read_committed"
    )
    try:
        with map_errors(f"read {topic}"):
            await consumer.start()
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            idle = 0
            while idle < idle_polls:
                positions = {tp: await consumer.position(tp) for tp in partitions}
                if all(positions[tp] >= ends[tp] for tp in partitions):
                    break
                batch = await consumer.getmany(*partitions, timeout_ms=300)
                idle = 0 if batch else idle + 1
                for tp, got in batch.items():
                    records.extend(r for r in got if r.offset < ends[tp])
    finally:
        await consumer.stop()
    return records


BOUNDED_EXACT_LIMIT = 1000
"""Up to this many offsets, :func:`count_committed` reads and counts the records themselves."""


async def _read_ranges(
    consumer: AIOKafkaConsumer, ranges: dict[TopicPartition, tuple[int, int]], *, idle_polls: int = 20
) -> list[ConsumerRecord[bytes, bytes]]:
    """The committed records in each partition's ``[start, end)``, on a started consumer.

    Stops early only after ``idle_polls`` empty polls of 100 ms (an aborted transaction at the end).
    """
    records: list[ConsumerRecord[bytes, bytes]] = []
    open_ranges = {tp: r for tp, r in ranges.items() if r[0] < r[1]}
    if not open_ranges:
        return records
    if consumer.assignment() != set(open_ranges):
        consumer.assign(list(open_ranges))
    for tp, (start, _) in open_ranges.items():
        consumer.seek(tp, start)
    idle = 0
    while idle < idle_polls:
        unread = [tp for tp, (_, end) in open_ranges.items() if await consumer.position(tp) < end]
        if not unread:
            break
        batch = await consumer.getmany(*unread, timeout_ms=100)
        idle = 0 if batch else idle + 1
        for tp, got in batch.items():
            records.extend(r for r in got if r.offset < open_ranges[tp][1])
    return records


async def _bounds(
    consumer: AIOKafkaConsumer, bootstrap_servers: Broker, topic: str
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    partitions = [
        TopicPartition(topic, p) for p in (await partitions_of(bootstrap_servers, [topic])).get(topic, [])
    ]
    if not partitions:
        return {}, {}
    consumer.assign(partitions)  # one metadata request for the topic, not one per partition
    return await consumer.beginning_offsets(partitions), await consumer.end_offsets(partitions)


def _consumer(bootstrap_servers: Broker) -> AIOKafkaConsumer:
    # A fetch at the end of a partition waits fetch_max_wait_ms for data: keep that short, since these
    # consumers seek to where the data is and a fetch begun before the seek must end first.
    return AIOKafkaConsumer(
        **client_kwargs(bootstrap_servers),
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_wait_ms=20,
    )


async def read_newest(
    bootstrap_servers: Broker, topic: str, count: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """The newest ``count`` committed records of ``topic``, newest first, reading only the topic's tail.

    Each partition is read from ``2 * count`` offsets before its end (transaction markers take offsets too),
    further back only when that held too few records: the work does not grow with the topic.

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
    """
    consumer = _consumer(bootstrap_servers)
    try:
        with map_errors(f"read {topic}"):
            await consumer.start()
            begins, ends = await _bounds(consumer, bootstrap_servers, topic)
            window = 2 * max(count, 1)
            while True:
                ranges = {tp: (max(begins[tp], ends[tp] - window), ends[tp]) for tp in ends}
                records = await _read_ranges(consumer, ranges)
                if len(records) >= count or all(start == begins[tp] for tp, (start, _) in ranges.items()):
                    break
                window *= 4
    finally:
        await consumer.stop()
    records.sort(key=lambda r: (r.timestamp, r.partition, r.offset), reverse=True)
    return records[:count]


async def read_since(
    bootstrap_servers: Broker, topic: str, timestamp_ms: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """The committed records of ``topic`` written at or after ``timestamp_ms`` (nothing older is read).

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
    """
    consumer = _consumer(bootstrap_servers)
    try:
        with map_errors(f"read {topic}"):
            await consumer.start()
            _, ends = await _bounds(consumer, bootstrap_servers, topic)
            found = await consumer.offsets_for_times(dict.fromkeys(ends, timestamp_ms)) if ends else {}
            ranges = {tp: (ends[tp] if found.get(tp) is None else found[tp].offset, ends[tp]) for tp in ends}
            return await _read_ranges(consumer, ranges)
    finally:
        await consumer.stop()


async def count_committed(bootstrap_servers: Broker, topic: str) -> int:
    """How many records ``topic`` holds, without reading more than :data:`BOUNDED_EXACT_LIMIT` of them.

    Exact while the topic spans at most that many offsets; above it, the offsets it spans (an upper bound:
    transaction markers and aborted records take offsets too).

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
    """
    consumer = _consumer(bootstrap_servers)
    try:
        with map_errors(f"read {topic}"):
            await consumer.start()
            begins, ends = await _bounds(consumer, bootstrap_servers, topic)
            span = sum(ends[tp] - begins[tp] for tp in ends)
            if span > BOUNDED_EXACT_LIMIT:
                return span
            return len(await _read_ranges(consumer, {tp: (begins[tp], ends[tp]) for tp in ends}))
    finally:
        await consumer.stop()
