"""Operations page benchmark: GET /operations with many dead letters, next to reading the dead-letter topic
whole (what every request did before the bounded reads), measured in the same run, printed as ratios.

The web service keeps its Kafka clients and the newest dead letters between requests, so a request reads
only what was added since the one before (here: nothing); the first request, which starts the clients and
reads the tail, is printed on its own.

    .venv/bin/python bench/bench_operations.py [--dead-letters 100000] [--runs 3]

Uses KAFKA_BOOTSTRAP_SERVERS, else starts the local broker from deploy/kafka/ on SAMBUS_BENCH_KAFKA_PORT
(default 19394) and stops it afterwards. The page is served in-process (ASGI) for an operator; each of the
runs is timed on its own and min/median/max are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx2
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import run_on_kafka

from sambus.contracts.topics import Header
from sambus.router.kafka.admin import read_topic
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.service.schema import create_engine, upgrade
from sambus.router.settings import Settings
from sambus.router.web.app import create_app
from sambus.router.web.auth import TokenAuthenticator, mint_token
from sambus.router.web.wiring import web_services


async def seed(app: Sambus, count: int) -> None:
    """``count`` dead letters (a sealed-sized value, the operator headers) and a few replays."""
    producer = AIOKafkaProducer(bootstrap_servers=app.bootstrap_servers, linger_ms=50, acks=1)
    await producer.start()
    headers = [
        (Header.DLQ_REASON, b"data.child.civicNo: the personnummer has a wrong check digit"),
        (Header.DLQ_ERROR, b"invalid_event"),
        (Header.DLQ_SOURCE_TOPIC, app.topics.agency_events("school").encode()),
        (Header.DLQ_SOURCE_PARTITION, b"0"),
        ("sambus-dlq-sealed", b"aes-256-gcm"),
        ("sambus-dlq-key-id", b"bench"),
        ("sambus-dlq-size", b"412"),
    ]
    try:
        pending = []
        for n in range(count):
            offset = (Header.DLQ_SOURCE_OFFSET, str(n).encode())
            pending.append(await producer.send(app.topics.dlq, os.urandom(440), headers=[*headers, offset]))
            if len(pending) >= 5000:  # noqa: PLR2004 - keep the producer's buffer bounded
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        for n in range(0, count, max(1, count // 20)):
            await producer.send_and_wait(app.topics.dlq_replayed, b"replayed", key=f"0:{n}".encode())
    finally:
        await producer.stop()


async def timed(name: str, runs: int, work: Callable[[], Awaitable[object]]) -> float:
    """Run ``work`` ``runs`` times; print min/median/max in ms; return the median in seconds."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        await work()
        seconds.append(time.perf_counter() - start)
    ms = sorted(s * 1000 for s in seconds)
    print(f"{name:48} min {ms[0]:9.1f} ms  median {statistics.median(ms):9.1f} ms  max {ms[-1]:9.1f} ms")
    return statistics.median(seconds)


async def main(args: argparse.Namespace, servers: str) -> None:
    with tempfile.TemporaryDirectory(prefix="sambus-bench-") as workdir:
        database_url = f"sqlite:///{Path(workdir) / 'bench.db'}"
        upgrade(create_engine(database_url))  # what `sambus db upgrade` does
        settings = Settings(
            topic_prefix=f"bench-{secrets.token_hex(4)}.",
            database_url=database_url,
            pseudonym_key=SecretStr(secrets.token_hex(32)),
            dlq_encryption_keys=SecretStr(f"bench:{secrets.token_hex(32)}"),
        )
        app = bootstrap(settings, bootstrap_servers=servers)
        await app.create_topics()
        try:
            await measure(args, servers, app)
        finally:  # the 100,000 dead letters would stay on a shared broker otherwise
            await delete_topics(servers, [spec.name for spec in app.topic_specs()])


async def delete_topics(servers: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


async def measure(args: argparse.Namespace, servers: str, app: Sambus) -> None:
    """Seed the dead letters, then time the whole-topic read and the page, each ``args.runs`` times."""
    started = time.perf_counter()
    await seed(app, args.dead_letters)
    print(f"{args.dead_letters} dead letters seeded in {time.perf_counter() - started:.1f} s ({servers})")
    token, digest = mint_token()
    services = web_services(app, authenticator=TokenAuthenticator.from_setting(f"bench:operator:{digest}"))
    web = create_app(services)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=web),
        base_url="https://sambus.bench",
        headers={"Authorization": f"Bearer {token}", "Accept": "text/html"},
        timeout=600,
    ) as client:

        async def page() -> None:
            response = await client.get("/operations")
            response.raise_for_status()

        async def whole() -> None:
            await read_topic(servers, app.topics.dlq)
            await read_topic(servers, app.topics.dlq_replayed)

        started = time.perf_counter()
        await page()  # the first request starts the long-lived clients and reads the tail
        first_ms = (time.perf_counter() - started) * 1000
        print(f"first GET /operations (starts the Kafka clients): {first_ms:.1f} ms")
        baseline = await timed("read the dead-letter topic whole (before)", args.runs, whole)
        bounded = await timed("GET /operations (kept clients, new records only)", args.runs, page)
    await asyncio.to_thread(services.close)
    load = os.getloadavg()[0]
    print(f"ratio /operations / whole-topic read: {bounded / baseline:.3f}x (load average {load:.1f})")
    print(f"/operations median {bounded * 1000:.0f} ms: {'under' if bounded < 0.2 else 'OVER'} 200 ms")  # noqa: PLR2004


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dead-letters", type=int, default=100_000, help="dead letters on the topic")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each")
    arguments = parser.parse_args()
    run_on_kafka(lambda servers: main(arguments, servers))
