"""Operator views read a bounded tail of the dead-letter topic, not the whole topic, on every request."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from typer.testing import CliRunner

from sambus.contracts.topics import Header, Topics
from sambus.router.cli.main import app as cli
from sambus.router.kafka.admin import BOUNDED_EXACT_LIMIT, ensure_topics
from sambus.router.kafka.dead_letters import KafkaDeadLetters, UnknownDeadLetterError, read_dead_letters
from sambus.router.kafka.reader import KafkaReader
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


async def test_a_replay_reads_the_one_dead_letter_and_the_replays_since_not_the_topic(
    kafka_bootstrap: str, topics: Topics, fetched: list[int]
) -> None:
    await _seed(kafka_bootstrap, topics)
    letters = KafkaDeadLetters(bootstrap_servers=kafka_bootstrap, topics=topics)
    fetched.clear()

    assert await letters.replay("0-1500") == topics.agency_events("school")

    assert sum(fetched) <= 1 + 1, f"read {sum(fetched)} records: the letter and the replay log since it"
    with pytest.raises(UnknownDeadLetterError, match="replayed already"):
        await letters.replay("0-1500")
    with pytest.raises(UnknownDeadLetterError, match="unknown"):
        await letters.replay(f"0-{DEAD + 10}")
    assert [r.offset for r in await read_dead_letters(kafka_bootstrap, topics) if r.replayed] == [
        1500,
        DEAD - 1,
    ]


async def test_sambus_dlq_replay_of_a_ref_reads_that_letter_alone(
    kafka_bootstrap: str, topics: Topics, fetched: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(kafka_bootstrap, topics)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("SAMBUS_TOPIC_PREFIX", topics.prefix)
    fetched.clear()

    replayed = await asyncio.to_thread(CliRunner().invoke, cli, ["dlq", "replay", "--ref", "0:1700"])

    assert replayed.exit_code == 0, replayed.output
    assert "Replayed 1 dead letter(s)." in replayed.output
    assert "0:1700 →" in replayed.output
    assert sum(fetched) <= 1 + 1, f"read {sum(fetched)} records"


async def test_the_kept_tail_reads_only_what_is_new(
    kafka_bootstrap: str, topics: Topics, fetched: list[int]
) -> None:
    await _seed(kafka_bootstrap, topics)
    reader = KafkaReader(kafka_bootstrap)
    letters = KafkaDeadLetters(bootstrap_servers=kafka_bootstrap, topics=topics, reader=reader)
    try:
        fetched.clear()
        first = await letters.list(limit=100)
        assert len(first) == 100
        assert sum(fetched) <= 2 * 100 + 1
        fetched.clear()
        assert [d.id for d in await letters.list(limit=100)] == [d.id for d in first]
        assert sum(fetched) == 0, "nothing new: nothing read"

        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for _ in range(5):
                await producer.send_and_wait(topics.dlq, b"", headers=[(Header.DLQ_ERROR, b"late")])
            await producer.send_and_wait(topics.dlq_replayed, b"replayed", key=f"0:{DEAD - 50}".encode())
        finally:
            await producer.stop()
        fetched.clear()
        newest = await letters.list(limit=100)

        assert sum(fetched) == 5 + 1, "the five new letters and the one new replay"
        assert [d.error for d in newest[:6]] == ["late"] * 5 + ["invalid_event"]
        assert [d.offset for d in newest[:5]] == list(range(DEAD + 4, DEAD - 1, -1))
        assert len(newest) == 100
        assert {d.offset for d in newest if d.replayed} == {DEAD - 1, DEAD - 50}
        assert reader.starts == 1
    finally:
        await asyncio.to_thread(reader.close)
