"""Small admin tasks against a broker: is it there, and create the topics sambus needs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
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
logger = logging.getLogger(__name__)


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


PARTIAL_OUTAGE_S = 90.0
"""How long topic creation waits while the cluster answers but one of its brokers does not (restarting)."""


async def ensure_topics(
    bootstrap_servers: Broker, specs: Iterable[TopicSpec], *, patience_s: float = PARTIAL_OUTAGE_S
) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created.

    While the cluster answers but the broker asked is not ready (one broker of three restarting), it asks
    again for up to ``patience_s``: an instance restarted during a broker's restart must not die of it. A
    cluster that does not answer at all fails at once.

    Raises:
        ConfigError: the broker refuses a topic as specified (e.g. more replicas than brokers).
        BrokerUnavailableError: the broker cannot be reached, or cannot create a topic now.
    """
    wanted = list(specs)
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return await _ensure_topics(bootstrap_servers, wanted)
        except BrokerUnavailableError as exc:
            cause = exc.__cause__
            partial = isinstance(cause, KafkaError) and cause.retriable
            if not partial or time.monotonic() >= deadline or not await metadata_answers(bootstrap_servers):
                raise
            logger.warning("cannot create topics yet (%s); asking again", type(cause).__name__)
            await asyncio.sleep(2.0)


async def _ensure_topics(bootstrap_servers: Broker, specs: Sequence[TopicSpec]) -> list[str]:
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
"""Up to this many offsets, a count of records reads the records (above it, the offsets they span count)."""
