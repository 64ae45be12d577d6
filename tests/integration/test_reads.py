"""The tests' read helper waits for a slow pipeline while it moves, and never cuts a negative read short."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from sambus.contracts.topics import Topics, TopicSpec
from sambus.router.kafka.admin import ensure_topics
from tests.integration.conftest import read_committed

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


async def _write_slowly(producer: AIOKafkaProducer, busy: str, answer: str, *, seconds: float) -> None:
    """A busy pipeline: a record on ``busy`` every half second, and only at the end the awaited one."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        await producer.send_and_wait(busy, b"step")
        await asyncio.sleep(0.5)
    await producer.send_and_wait(answer, b"the answer")


async def test_a_read_waits_past_its_window_while_the_watched_topics_move(
    kafka_bootstrap: str, topics: Topics
) -> None:
    busy, answer = f"{topics.prefix}busy", f"{topics.prefix}answer"
    await ensure_topics(kafka_bootstrap, [TopicSpec(busy, partitions=1), TopicSpec(answer, partitions=1)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        writing = asyncio.create_task(_write_slowly(producer, busy, answer, seconds=6))
        records = await read_committed(
            kafka_bootstrap, [answer], count=1, timeout=1, quiet=3, watch=[(busy, 1)]
        )
        await writing
    finally:
        await producer.stop()
    assert [r.value for r in records] == [b"the answer"], "a fixed 1 s window would have read nothing"


async def test_a_read_that_must_find_nothing_waits_its_window_and_until_the_pipeline_is_quiet(
    kafka_bootstrap: str, topics: Topics
) -> None:
    busy, answer = f"{topics.prefix}busy", f"{topics.prefix}answer"
    await ensure_topics(kafka_bootstrap, [TopicSpec(busy, partitions=1), TopicSpec(answer, partitions=1)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        assert await read_committed(kafka_bootstrap, [answer], count=1, timeout=2) == []
        assert loop.time() - started >= 2, "the negative read waited its whole window"
        writing = asyncio.create_task(_write_slowly(producer, busy, answer, seconds=4))
        wrong = await read_committed(
            kafka_bootstrap, [answer], count=1, timeout=1, quiet=2, watch=[(busy, 1)]
        )
        await writing
    finally:
        await producer.stop()
    assert [r.value for r in wrong] == [b"the answer"], (
        "a late wrong delivery is seen while the pipeline moves"
    )
