"""Small admin tasks against a broker: is it there, and create the topics sambus needs."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from contracts.errors import BrokerUnavailableError
from contracts.topics import TopicSpec

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even when an event loop is running."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def metadata_answers(bootstrap_servers: str, *, timeout_ms: int = 3000) -> bool:
    """Whether the broker answers a metadata request (an open port is not enough)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
    try:
        await client.bootstrap()
        metadata = await client.fetch_all_metadata()
        return bool(metadata.brokers())
    except (KafkaError, OSError):
        return False
    finally:
        await client.close()


async def ensure_topics(bootstrap_servers: str, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created.

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15000)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [spec for spec in specs if spec.name not in existing]
        created: list[str] = []
        for spec in wanted:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            num_partitions=spec.partitions,
                            replication_factor=1,
                            topic_configs=spec.config,
                        )
                    ]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                continue
    except KafkaError as exc:
        raise BrokerUnavailableError(f"cannot create topics on {bootstrap_servers}: {exc}") from exc
    else:
        return created
    finally:
        await admin.close()
