"""What several benches share (not a benchmark): test children and their school events, the bare aiokafka
pass-through the Kafka benches compare against, percentiles, the broker a bench runs on and a schema of its
own on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sambus.router.dev.local_kafka import LocalKafka

BENCH_KAFKA_PORT = "19394"
"""The local broker's port unless ``SAMBUS_BENCH_KAFKA_PORT`` says another."""


def personnummer(n: int) -> str:
    """The ``n``-th test child's personnummer (born 2012-03-15, a valid check digit)."""
    digits = f"120315{n:03d}"
    total = sum((d - 9 if d > 9 else d) for d in (int(c) * (2 - i % 2) for i, c in enumerate(digits)))  # noqa: PLR2004
    return f"20{digits}{(10 - total % 10) % 10}"


def sip_event(event_id: str, child: str, source: str) -> bytes:
    """A school's SIP invitation for ``child`` to social services and two care units, as JSON."""
    invite = [
        {"organisationNumber": "212000-2080"},
        {"hsaId": "SE2321000206-1001"},
        {"hsaId": "SE2321000206-1003"},
    ]
    data: dict[str, object] = {
        "child": {"civicNo": child},
        "schoolUnitCode": "19800002",
        "initiatedBy": "student_health",
    }
    data |= {"reason": "mental_health", "invite": invite}
    event: dict[str, object] = {"type": "se.sambus.school.sip-initiated.v1", "id": event_id, "source": source}
    event |= {"time": "2026-11-20T09:00:00+01:00", "data": data}
    return json.dumps(event).encode()


def pct(values: list[float], p: int) -> float:
    """The ``p``-th percentile of ``values`` (NaN for fewer than two)."""
    return statistics.quantiles(values, n=100)[p - 1] if len(values) > 1 else float("nan")


async def pass_through(servers: str, source: str, sink: str, group: str, stop: asyncio.Event) -> None:
    """The baseline: consume, produce each record unchanged, commit offsets — bare aiokafka."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=5, acks="all")
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=500)
            sends = [
                await producer.send(sink, r.value, key=r.key, headers=list(r.headers))
                for records in batch.values()
                for r in records
            ]
            await asyncio.gather(*sends)
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def run_on_kafka(main: Callable[[str], Coroutine[Any, Any, None]]) -> None:
    """Run ``main(servers)`` on ``KAFKA_BOOTSTRAP_SERVERS``, else on the local broker from deploy/kafka/ at
    ``SAMBUS_BENCH_KAFKA_PORT``: started for it unless it already runs, and then stopped afterwards.
    """
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    port = int(os.environ.get("SAMBUS_BENCH_KAFKA_PORT", BENCH_KAFKA_PORT))
    local = None if configured else LocalKafka(port=port)
    started = local.ensure_running() if local else False
    try:
        asyncio.run(main(configured or (local.bootstrap_servers if local else "")))
    finally:
        if local is not None and started:
            local.stop()


@contextmanager
def postgres_schema(url: str, schema: str | None = None) -> Iterator[sa.Engine]:
    """An engine on a schema of the PostgreSQL server at ``url``: a fresh one, dropped afterwards, or
    ``schema``, made if it is not there and kept.
    """
    name = schema or f"bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {name}"))
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={name}"})
    try:
        yield engine
    finally:
        engine.dispose()
        if schema is None:
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()
