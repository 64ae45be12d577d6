"""Operator views read a bounded tail of the dead-letter topic, not the whole topic, on every request."""

from __future__ import annotations

import datetime as dt

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sambus.contracts.topics import Header, Topics
from sambus.router.kafka.admin import BOUNDED_EXACT_LIMIT, ensure_topics
from sambus.router.kafka.dead_letters import KafkaDeadLetters
from sambus.router.ops.queues import NoDeadlines, QueueMonitor

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

DEAD = 3000


async def _seed(bootstrap: str, topics: Topics) -> None:
    await ensure_topics(bootstrap, topics.specs())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(
                topics.dlq,
                b"",
                headers=[
                    (Header.DLQ_REASON, b"type: unknown event type"),
                    (Header.DLQ_ERROR, b"invalid_event"),
                    (Header.DLQ_SOURCE_TOPIC, topics.agency_events("school").encode()),
                ],
            )
            for _ in range(DEAD)
        ]
        for future in sent:
            await future
        await producer.send_and_wait(topics.dlq_replayed, b"replayed", key=f"0:{DEAD - 1}".encode())
    finally:
        await producer.stop()


@pytest.fixture
def fetched(monkeypatch) -> list[int]:
    """How many records every consumer fetches, in total (one entry per fetch)."""
    counts: list[int] = []
    original = AIOKafkaConsumer.getmany

    async def counting(self, *partitions, timeout_ms=0, max_records=None):
        batch = await original(self, *partitions, timeout_ms=timeout_ms, max_records=max_records)
        counts.append(sum(len(records) for records in batch.values()))
        return batch

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", counting)
    return counts


async def test_the_newest_dead_letters_and_the_counts_read_a_bounded_tail(
    kafka_bootstrap: str, topics: Topics, fetched: list[int]
) -> None:
    await _seed(kafka_bootstrap, topics)
    fetched.clear()
    letters = KafkaDeadLetters(bootstrap_servers=kafka_bootstrap, topics=topics)
    monitor = QueueMonitor(bootstrap_servers=kafka_bootstrap, topics=topics, deadlines=NoDeadlines())

    newest = await letters.list(limit=100)
    snapshot = await monitor.snapshot(now=dt.datetime.now(dt.UTC))

    assert len(newest) == 100
    assert newest[0].offset == DEAD - 1
    assert newest[0].replayed, "the replay log since the oldest shown letter says so"
    assert not newest[1].replayed
    assert snapshot.dead_letters == DEAD, "non-transactional writes: the offset span is the count"
    assert sum(fetched) <= 2 * 100 + 1 + BOUNDED_EXACT_LIMIT, f"read {sum(fetched)} records"
    assert sum(fetched) < DEAD / 5
