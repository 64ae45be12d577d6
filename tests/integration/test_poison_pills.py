"""Poison pills on the real broker: an oversized record, a 100,000-deep JSON document and random bytes.

Each is dead-lettered with its reason, and the valid events sent before, between and after them are
delivered: no record can block a topic.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from sambus.contracts.agencies import AgencyKind
from sambus.contracts.identifiers import luhn_valid
from sambus.contracts.topics import Header, Topics, TopicSpec
from sambus.router.kafka.admin import ensure_topics
from sambus.router.kafka.dead_letters import open_sealed
from sambus.router.kafka.records import Outgoing
from sambus.router.stages.transactional import TransactionalStage
from tests.integration.conftest import Running, read_committed, sip_event

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

BU_HALSAN = {"hsaId": "SE2321000206-1001"}
OVERSIZED = 1_048_395
"""The size of the record that stopped all intake in issue 11: just under the broker's limit."""
RANDOM_RECORDS = 20


def _children(count: int) -> list[str]:
    """Valid personnummer of children born on 2012-03-15."""
    found = []
    serial = 0
    while len(found) < count:
        digits = f"120315{serial:03d}"
        found.extend(f"20{digits}{c}" for c in "0123456789" if luhn_valid(f"{digits}{c}"))
        serial += 1
    return found[:count]


async def test_poison_pills_are_dead_lettered_and_valid_events_around_them_delivered(
    running: Running, kafka_bootstrap: str
) -> None:
    school = running.topics.agency_events("school")
    children = _children(4)
    for child in children:
        running.consent(child, AgencyKind.BU_HALSAN)
    oversized = b'{"type":"' + b"x" * (OVERSIZED - 11) + b'"}'
    deep = b"[" * 100_000 + b"]" * 100_000
    rng = random.Random(11)  # noqa: S311 - test data, not a secret
    noise = [rng.randbytes(rng.randint(1, 4000)) for _ in range(RANDOM_RECORDS)]
    big_producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=2 * 1024 * 1024)
    await big_producer.start()
    try:
        sends = [
            sip_event("good-0", children[0], BU_HALSAN),
            oversized,
            sip_event("good-1", children[1], BU_HALSAN),
            deep,
            sip_event("good-2", children[2], BU_HALSAN),
            *noise,
            sip_event("good-3", children[3], BU_HALSAN),
        ]
        for value in sends:
            # One partition, so every pill sits in front of the valid events after it.
            await big_producer.send_and_wait(school, value, partition=0, headers=[("origin", b"test")])
    finally:
        await big_producer.stop()

    delivered = await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=4, timeout=60)
    # Read directly, not kept for the FHIR validator: a dead letter here is no Bundle (one is 100,000 deep).
    dead = await read_committed(
        running.app.bootstrap_servers, [running.topics.dlq], count=2 + RANDOM_RECORDS, timeout=30
    )

    assert len(delivered) == 4, f"valid events behind the pills: {len(delivered)} of 4 delivered"
    assert len(dead) == 2 + RANDOM_RECORDS
    by_offset = sorted(dead, key=lambda r: int(dict(r.headers)[Header.DLQ_SOURCE_OFFSET]))
    big, nested, *rest = by_offset
    big_headers = dict(big.headers)
    assert big.value == b"", "an oversized record is dead-lettered as a reference, without its payload"
    assert big_headers[Header.DLQ_PAYLOAD_OMITTED] == b"true"
    assert int(big_headers[Header.DLQ_SIZE]) >= OVERSIZED
    assert big_headers[Header.DLQ_ERROR] == b"too_large"
    assert big_headers[Header.DLQ_SOURCE_TOPIC] == school.encode()
    assert big_headers[Header.DLQ_SOURCE_PARTITION] == b"0"
    assert int(big_headers[Header.DLQ_SOURCE_OFFSET]) == 1
    assert b"bytes" in big_headers[Header.DLQ_REASON]
    nested_headers = dict(nested.headers)
    assert nested_headers[Header.DLQ_ERROR] == b"too_deep"
    assert b"nested deeper than" in nested_headers[Header.DLQ_REASON]
    cipher = running.app.dlq_cipher
    assert open_sealed(nested.value, tuple(nested.headers), cipher)[0] == deep
    assert [open_sealed(r.value, tuple(r.headers), cipher)[0] for r in rest] == noise, (
        "random bytes are dead-lettered with their original bytes, sealed"
    )
    for record in rest:
        assert dict(record.headers)[Header.DLQ_ERROR] == b"invalid_event"


async def test_a_record_whose_output_kafka_refuses_is_dead_lettered_and_the_rest_delivered(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """An output too large for the producer, or for its topic's ``max.message.bytes``, blocks nothing."""
    source, out, dlq = f"{topics.prefix}in", f"{topics.prefix}out", topics.dlq
    await ensure_topics(
        kafka_bootstrap,
        [
            TopicSpec(source, partitions=1),
            TopicSpec(out, partitions=1, config={"max.message.bytes": "2000"}),
            TopicSpec(dlq, partitions=1),
        ],
    )

    async def handler(record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        size = {b"too-large-for-the-topic": 5000, b"too-large-for-kafka": 2 * 1024 * 1024}.get(
            record.value, 10
        )
        return [Outgoing(out, record.value + b"." * size)]

    stage = TransactionalStage(
        name="poison",
        bootstrap_servers=kafka_bootstrap,
        topics=[source],
        group_id=f"{topics.prefix}poison",
        member_id=f"{topics.prefix}poison-0",
        handler=handler,
        dlq_topic=dlq,
        retry_pause_s=0.1,
    )
    values = [b"ok-1", b"too-large-for-the-topic", b"ok-2", b"too-large-for-kafka", b"ok-3"]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(source, value)
    finally:
        await producer.stop()
    await stage.start()
    stop = asyncio.Event()
    task = asyncio.create_task(stage.run(stop))
    try:
        delivered = await read_committed(kafka_bootstrap, [out], count=3, timeout=30)
        dead = await read_committed(kafka_bootstrap, [dlq], count=2, timeout=10)
    finally:
        stop.set()
        await task
        await stage.stop()

    assert sorted(r.value.rstrip(b".") for r in delivered) == [b"ok-1", b"ok-2", b"ok-3"]
    assert len(delivered) == 3, "each valid record exactly once"
    errors = {int(dict(r.headers)[Header.DLQ_SOURCE_OFFSET]): dict(r.headers)[Header.DLQ_ERROR] for r in dead}
    assert errors == {1: b"refused_by_kafka", 3: b"output_too_large"}
