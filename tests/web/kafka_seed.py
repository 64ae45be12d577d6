"""Puts known lag, dead letters and parked records on the real broker, for the queue and web tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from sambus.contracts.topics import Header, Topics
from sambus.router.kafka.admin import ensure_topics

RECIPIENT = "test-recipient"
SCHOOL_RECORDS = 7
COMMITTED = 3
DEAD_LETTERS = 2
PARKED = 1


@dataclass(frozen=True)
class Seeded:
    """What was put on the broker."""

    topics: Topics
    group: str
    dead_values: tuple[bytes, ...]

    @property
    def school(self) -> str:
        return self.topics.agency_events("school")


async def seed_queues(bootstrap_servers: str, topics: Topics) -> Seeded:
    """7 school events on partition 0, the intake group committed at 3 (lag 4), 2 dead letters, 1 parked."""
    await ensure_topics(bootstrap_servers, topics.specs((RECIPIENT,)))
    school = topics.agency_events("school")
    group = f"{topics.prefix}sambus-intake"
    dead_values = (b'{"civicNo": "201203150006", ', b"not json at all")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        for n in range(SCHOOL_RECORDS):
            await producer.send_and_wait(school, f'{{"n": {n}}}'.encode(), partition=0)
        for offset, value in enumerate(dead_values):
            await producer.send_and_wait(
                topics.dlq,
                value,
                headers=[
                    ("origin", b"seed"),
                    (Header.DLQ_REASON, b"not valid JSON"),
                    (Header.DLQ_ERROR, b"invalid_event"),
                    (Header.DLQ_SOURCE_TOPIC, school.encode()),
                    (Header.DLQ_SOURCE_PARTITION, b"0"),
                    (Header.DLQ_SOURCE_OFFSET, str(100 + offset).encode()),
                ],
            )
        await producer.send_and_wait(topics.parked, b'{"parked": true}', key=b"pseudonym", partition=1)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(school, 0)
        consumer.assign([partition])
        await consumer.commit({partition: COMMITTED})
    finally:
        await consumer.stop()
    return Seeded(topics=topics, group=group, dead_values=dead_values)


async def seed_dead_letters(bootstrap_servers: str, topics: Topics, count: int, *, first: int = 0) -> None:
    """``count`` dead letters (originals not kept) on the DLQ's partition 0, source offsets from ``first``."""
    await ensure_topics(bootstrap_servers, topics.specs((RECIPIENT,)))
    school = topics.agency_events("school").encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=50, acks="all")
    await producer.start()
    try:
        pending = []
        for n in range(first, first + count):
            headers = [
                (Header.DLQ_REASON, b"data.child.civicNo: the personnummer has a wrong check digit"),
                (Header.DLQ_ERROR, b"invalid_event"),
                (Header.DLQ_SOURCE_TOPIC, school),
                (Header.DLQ_SOURCE_PARTITION, b"0"),
                (Header.DLQ_SOURCE_OFFSET, str(n).encode()),
                ("sambus-dlq-sealed", b"dropped"),
                ("sambus-dlq-size", b"412"),
            ]
            pending.append(await producer.send(topics.dlq, b"", headers=headers, partition=0))
            if len(pending) >= 5000:  # keep the producer's buffer bounded
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
