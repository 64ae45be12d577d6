"""Router benchmark: throughput and end-to-end latency of the delivery stage, next to a bare aiokafka
consume→produce pass-through on the same broker, measured in the same run, printed as ratios.

    .venv/bin/python bench/bench_router.py [--intents 5000] [--rate 200] [--seconds 10]

Uses KAFKA_BOOTSTRAP_SERVERS, else starts the local broker from deploy/kafka/ on SAMBUS_BENCH_KAFKA_PORT
(default 19394) and stops it afterwards. Throughput: a backlog of intents is drained, intents/s (the router
makes three records of each: two deliveries and one parked). Latency: intents are offered at a fixed rate and
timed from send to the moment a read_committed consumer sees the result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sambus.adapters import translate_message
from sambus.consent import ConsentGrant
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.registry_facts import Custody
from sambus.contracts.topics import TopicSpec
from sambus.router.dev.local_kafka import LocalKafka
from sambus.router.kafka.admin import ensure_topics
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.service.schema import create_engine, upgrade
from sambus.router.settings import Settings
from sambus.router.stages.intake import Intake

CHILDREN = 50
SENT_AT = "bench-sent-ns"
Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def personnummer(n: int) -> str:
    digits = f"120315{n:03d}"
    total = sum((d - 9 if d > 9 else d) for d in (int(c) * (2 - i % 2) for i, c in enumerate(digits)))  # noqa: PLR2004
    return f"20{digits}{(10 - total % 10) % 10}"


def sip_event(child: str) -> bytes:
    invite = [
        {"organisationNumber": "212000-2080"},
        {"hsaId": "SE2321000206-1001"},
        {"hsaId": "SE2321000206-1003"},
    ]
    data = {"child": {"civicNo": child}, "schoolUnitCode": "19800001", "initiatedBy": "student_health"}
    data |= {"reason": "mental_health", "invite": invite}
    event = {"type": "se.sambus.school.sip-initiated.v1", "id": f"b-{child}", "source": "bench"}
    event |= {"time": "2026-11-20T09:00:00+01:00", "data": data}
    return json.dumps(event).encode()


def intents(app: Sambus, count: int, tag: str) -> list[Record]:
    intake = Intake(topics=app.topics, pseudonymizer=app.pseudonymizer)
    templates = [
        intake.intent_record(translate_message(sip_event(personnummer(n)))[0]) for n in range(CHILDREN)
    ]
    out = []
    for i in range(count):
        template = templates[i % CHILDREN]
        bundle = json.loads(template.value)
        bundle["id"] = f"bench-{tag}-{i}"
        out.append((template.key or b"", json.dumps(bundle).encode(), list(template.headers)))
    return out


async def produce(servers: str, topic: str, records: list[Record], *, rate: float | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=5, acks="all")
    await producer.start()
    try:
        start = time.perf_counter()
        sends = []
        for i, (key, value, headers) in enumerate(records):
            if rate is not None:
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            stamped = [*headers, (SENT_AT, str(time.time_ns()).encode())]
            sends.append(await producer.send(topic, value, key=key, headers=stamped))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def collect(servers: str, topics: list[str], count: int, latencies: list[float]) -> float:
    """Read ``count`` committed records, noting each one's latency; returns first-to-last seconds."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=servers, isolation_level="read_committed")
    await consumer.start()
    seen = 0
    first = last = 0.0
    try:
        await consumer.seek_to_end()
        while seen < count:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time_ns()
            if batch:
                first, last = first or time.perf_counter(), time.perf_counter()
            for records in batch.values():
                for r in records:
                    sent = dict(r.headers).get(SENT_AT)
                    if sent is not None:
                        latencies.append((now - int(sent)) / 1e6)
                    seen += 1
    finally:
        await consumer.stop()
    return last - first


async def pass_through(servers: str, source: str, sink: str, stop: asyncio.Event) -> None:
    """The baseline: consume, produce each record unchanged, commit offsets — bare aiokafka."""
    group = f"bench-{secrets.token_hex(4)}"
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


async def router(app: Sambus, stop: asyncio.Event) -> None:
    await app.run(stop, only="delivery")


async def measure(
    label: str,
    *,
    runner: Callable[[asyncio.Event], Awaitable[None]],
    servers: str,
    source: str,
    outputs: list[str],
    per_input: int,
    backlog: list[Record],
    paced: list[Record],
    rate: float,
) -> tuple[float, list[float]]:
    """(inputs/s draining ``backlog``, latencies in ms of ``paced`` offered at ``rate``/s)."""
    await produce(servers, source, backlog)
    drained: list[float] = []
    stop = asyncio.Event()
    reader = asyncio.create_task(collect(servers, outputs, len(backlog) * per_input, drained))
    await asyncio.sleep(1.0)  # the reader is positioned at the end of the outputs
    service = asyncio.create_task(runner(stop))
    throughput = len(backlog) / await reader  # from the first output to the last: start-up is not counted
    latencies: list[float] = []
    reader = asyncio.create_task(collect(servers, outputs, len(paced) * per_input, latencies))
    await asyncio.sleep(1.0)
    await produce(servers, source, paced, rate=rate)
    await reader
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await service
    p50, p99 = pct(latencies, 50), pct(latencies, 99)
    print(f"{label:<26} {throughput:>9.0f} intents/s   p50 {p50:>7.1f} ms   p99 {p99:>7.1f} ms")
    return throughput, latencies


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] if len(values) > 1 else float("nan")


async def main(args: argparse.Namespace, servers: str) -> None:
    with tempfile.TemporaryDirectory(prefix="sambus-bench-") as workdir:
        settings = Settings(
            topic_prefix=f"bench-{secrets.token_hex(4)}.",
            database_url=f"sqlite:///{Path(workdir) / 'bench.db'}",
            pseudonym_key=SecretStr(secrets.token_hex(32)),
            instance_id=secrets.token_hex(4),
        )
        engine = create_engine(settings.database_url)
        upgrade(engine)  # what `sambus db upgrade` does
        engine.dispose()
        app = bootstrap(settings, bootstrap_servers=servers)
        now = dt.datetime.now(dt.UTC)
        for n in range(CHILDREN):
            kinds = frozenset({AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN})
            child = app.pseudonymizer.of(personnummer(n))
            app.registry.set_custody(child, Custody.SOLE, ("guardian",), at=now - dt.timedelta(days=2))
            grant = ConsentGrant(
                consent_id=f"c{n}", child=child, purpose=Purpose.SIP, agency_kinds=kinds,
                given_by="guardian", guardians=("guardian",), valid_from=now - dt.timedelta(days=1),
            )  # fmt: skip
            app.registry.record(grant, now=now)
        await app.create_topics()
        base_in, base_out = f"{settings.topic_prefix}baseline.in", f"{settings.topic_prefix}baseline.out"
        await ensure_topics(servers, [TopicSpec(base_in), TopicSpec(base_out)])
        paced_count = int(args.rate * args.seconds)
        backlog, paced = intents(app, args.intents, "backlog"), intents(app, paced_count, "paced")
        print(f"{args.intents} intents drained, then {paced_count} offered at {args.rate:.0f}/s ({servers})")

        async def baseline(stop: asyncio.Event) -> None:
            await pass_through(servers, base_in, base_out, stop)

        async def sambus(stop: asyncio.Event) -> None:
            await router(app, stop)

        common = {"servers": servers, "backlog": backlog, "paced": paced, "rate": args.rate}
        base_tp, base_lat = await measure(
            "bare aiokafka pass-through",
            runner=baseline,
            source=base_in,
            outputs=[base_out],
            per_input=1,
            **common,
        )
        outputs = [
            app.topics.deliver("vasteras-socialtjanst"),
            app.topics.deliver("vastmanland-bu-halsan"),
            app.topics.parked,
        ]
        router_tp, router_lat = await measure(
            "sambus delivery stage",
            runner=sambus,
            source=app.topics.intents,
            outputs=outputs,
            per_input=3,
            **common,
        )
        print(
            f"ratio router/baseline: throughput {router_tp / base_tp:.2f}x, "
            f"p50 latency {pct(router_lat, 50) / pct(base_lat, 50):.2f}x, "
            f"p99 latency {pct(router_lat, 99) / pct(base_lat, 99):.2f}x"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=5000, help="backlog drained for throughput")
    parser.add_argument("--rate", type=float, default=200.0, help="offered load (intents/s) for latency")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the load is offered")
    arguments = parser.parse_args()
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    local = None if configured else LocalKafka(port=int(os.environ.get("SAMBUS_BENCH_KAFKA_PORT", "19394")))
    started = local.ensure_running() if local else False
    try:
        asyncio.run(main(arguments, configured or (local.bootstrap_servers if local else "")))
    finally:
        if local is not None and started:
            local.stop()
