"""Stage floor benchmark: what sambus's Kafka stage costs with a handler that does nothing, against the bare
pass-through of ``bench_router.py``, in the same run: how far the delivery goal can be reached by the
handler's work alone.

    .venv/bin/python bench/bench_stage_floor.py [--outputs 1,4] [--intents 3000] [--drain-seconds 12]
        [--rounds 3] [--rate 20] [--seconds 20] [--runs 3] [--timeout 300]

For each ``--outputs`` N, a :class:`~sambus.router.stages.transactional.TransactionalStage` built as
``sambus run`` builds the delivery stage (same topics, group, batch size, transactions, tracing and
metrics) reads the same intents as ``bench_router.py`` and, for each, writes N copies of the intent's bytes
and headers to the topics the delivery stage writes (N=4: two deliveries, parked, the school's notice; N=1:
one delivery) with no decision, no ledger and no database: the stage's Kafka side alone. It is measured
against the bare aiokafka consume→produce of ``bench_router.py`` the same way (probe, then drains in turns,
then ``--rate`` x ``--seconds`` paced intents), so the ratios read against the delivery goal (throughput
ratio >= 0.5, ``bench_router.py``): a floor ratio under the goal says the goal cannot be met by making the
handler cheaper. Uses KAFKA_BOOTSTRAP_SERVERS, else the local broker on SAMBUS_BENCH_KAFKA_PORT (19394).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
from pathlib import Path

from aiokafka.structs import ConsumerRecord
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_router import CLOCK, Run, Side, intents, measure, summary
from common import pass_through, run_on_kafka

from sambus.contracts.topics import TopicSpec
from sambus.router.kafka.admin import ensure_topics
from sambus.router.kafka.records import Outgoing
from sambus.router.service.bootstrap import Sambus, bootstrap, settle_heap
from sambus.router.service.schema import create_engine, upgrade
from sambus.router.settings import Settings
from sambus.router.stages.transactional import TransactionalStage


def outputs_of(app: Sambus, count: int) -> list[str]:
    """The topics the delivery stage writes an intent of bench_router.py to, the first ``count`` of them."""
    topics = app.topics
    every = [
        topics.deliver("vasteras-socialtjanst"),
        topics.deliver("vastmanland-bu-halsan"),
        topics.parked,
        topics.deliver("vasteras-skola-sodra"),
    ]
    return every[:count]


def null_stage(app: Sambus, outputs: list[str]) -> TransactionalStage:
    """A stage wired as the delivery stage is, whose handler copies each intent to ``outputs``."""

    async def copy(record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        headers = tuple(record.headers)
        return [Outgoing(topic, record.value or b"", record.key, headers) for topic in outputs]

    prefix = f"{app.settings.topic_prefix}sambus"
    return TransactionalStage(
        name="delivery",
        bootstrap_servers=app.kafka,
        topics=[app.topics.intents],
        group_id=app.group_id("delivery"),
        member_id=f"{prefix}-delivery-{app.settings.instance_id}",
        handler=copy,
        dlq_topic=app.topics.dlq,
        dlq_cipher=app.dlq_cipher,
        keys_are_pseudonyms=True,
    )


async def one_run(args: argparse.Namespace, servers: str, number: int, workdir: Path, count: int) -> Run:
    settings = Settings(
        topic_prefix=f"benchf-{secrets.token_hex(4)}.",
        database_url=f"sqlite:///{workdir / f'floor-{number}.db'}",
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        instance_id=secrets.token_hex(4),
    )
    engine = create_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    app = bootstrap(settings, bootstrap_servers=servers)
    await app.create_topics()
    base_in, base_out = f"{settings.topic_prefix}baseline.in", f"{settings.topic_prefix}baseline.out"
    await ensure_topics(servers, [TopicSpec(base_in), TopicSpec(base_out)])
    group = f"benchf-{secrets.token_hex(4)}"
    outputs = outputs_of(app, count)

    async def baseline(stop: asyncio.Event) -> None:
        await pass_through(servers, base_in, base_out, group, stop)

    async def floor(stop: asyncio.Event) -> None:
        stage = null_stage(app, outputs)
        await stage.start()
        settle_heap()  # as `sambus run` does once its stages are up
        try:
            await stage.run(stop)
        finally:
            await stage.stop()

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"run {number}, {count} output(s) per intent: (load average {load})")
    sides = (
        Side("baseline", baseline, base_in, [base_out], 1),
        Side(f"floor x{count}", floor, app.topics.intents, outputs, count),
    )
    base, stage = await measure(sides, servers=servers, make=lambda n, tag: intents(app, n, tag), args=args)
    app.engine.dispose()
    run = Run(base, stage)
    print(
        f"  baseline {base.throughput:.0f} intents/s, floor {stage.throughput:.0f} intents/s: ratio "
        f"{run.ratio:.3f}x, CPU per intent {run.cpu_ratio:.3f}x "
        f"({stage.cpu_ms:.3f} vs {base.cpu_ms:.3f} ms), "
        f"p99 latency {run.latency_ratio(99):.2f}x"
    )
    return run


async def main(args: argparse.Namespace, servers: str) -> None:
    counts = [int(n) for n in args.outputs.split(",")]
    runs: dict[int, list[Run]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="sambus-bench-floor-") as workdir:
        number = 0
        for _ in range(args.runs):
            for count in counts:  # the output counts alternate, so the machine's load bends each alike
                number += 1
                runs[count].append(await one_run(args, servers, number, Path(workdir), count))
    for count in counts:
        done = runs[count]
        print(f"{count} output(s) per intent, {len(done)} runs:")
        summary("  baseline intents/s", [r.base.throughput for r in done], "", ".0f")
        summary("  floor stage intents/s", [r.router.throughput for r in done], "", ".0f")
        summary("  throughput ratio floor/baseline", [r.ratio for r in done], "x")
        summary("  CPU per intent ratio baseline/floor", [r.cpu_ratio for r in done], "x")
        summary("  floor CPU per intent", [r.router.cpu_ms for r in done], "ms")
        summary("  p99 latency ratio floor/baseline", [r.latency_ratio(99) for r in done], "x", ".2f")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", default="1,4", help="records written per intent, comma-separated")
    parser.add_argument("--intents", type=int, default=3000, help="probe backlog per side")
    parser.add_argument("--drain-seconds", type=float, default=12.0, help="timed drain seconds per side")
    parser.add_argument("--rounds", type=int, default=3, help="timed drains per side, in turns")
    parser.add_argument("--rate", type=float, default=20.0, help="paced intents per second (latency)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long intents are paced")
    parser.add_argument("--runs", type=int, default=3, help="how many times everything is measured")
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for one drain (s)")
    arguments = parser.parse_args()
    CLOCK.install()
    run_on_kafka(lambda servers: main(arguments, servers))
