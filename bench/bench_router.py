"""Router benchmark: throughput and end-to-end latency of the delivery stage, next to a bare aiokafka
consume→produce pass-through on the same broker, measured in the same run, printed as ratios.

    .venv/bin/python bench/bench_router.py [--intents 3000] [--drain-seconds 12] [--rounds 3] [--rate 20]
        [--seconds 50] [--runs 3] [--timeout 300]

Uses KAFKA_BOOTSTRAP_SERVERS, else starts the local broker from deploy/kafka/ on SAMBUS_BENCH_KAFKA_PORT
(default 19394) and stops it afterwards. The router makes four records of each intent (two deliveries, one
parked, the school's delivery-waiting notice); the baseline passes each intent's bytes on unchanged, to a
topic of the same partitions, with the same acks.

Throughput, the same way for both: a probe backlog of ``--intents`` is drained to learn each side's pace,
then ``--rounds`` rounds of one drain per side, taken in turns (the baseline first in even rounds, the
stage in odd ones), each backlog sized to last its share of ``--drain-seconds`` (x 1.5) at the pace that
side last showed, written before its runner starts again. A drain is timed from the first record the runner
consumes (group join and first fetch are not counted) to the last record a read_committed reader sees; a
side's throughput is its timed drains' intents over their seconds. Why: 3,000 intents took the bare
pass-through under 2.5 s, a chain of ~1,000 produce round trips (aiokafka's 16 KB batches hold three
intents, one request in flight) whose pace swung 3x between runs; one drain of 10-13 s still swung 1.8x
on a shared machine, as the load of other work came and went; in turns, both sides see the same load
(yet on the shared machine the baseline still moved 1.65-2.1x between runs, the stage 1.1-1.3x: the CPU
ratio is the steadier figure there).
CPU per intent is this process's CPU (every thread, user and system) over the same windows, divided by
the intents drained: the runner's alone, as the reader runs in a process of its own. On a shared machine
it is the figure other load bends least. Each drain prints its seconds, intents, fetches and produce
requests.

Latency: ``--rate`` x ``--seconds`` intents (1,000 by default: a p99 of 200 samples is their second
largest) are offered at a fixed rate, below capacity, while the runner of the probe still runs, each
timed from its send to the moment the reader sees the result. Each wait ends after ``--timeout`` seconds (a
run that cannot keep up prints what it drained by then); every figure is printed per run, then as min /
median / max over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import pass_through, pct, personnummer, run_on_kafka, sip_event
from drain import (  # bench/ is on the path: it is the script's folder
    SENT_AT,
    DrainClock,
    ReaderProcess,
    cpu_seconds,
)

from sambus.adapters import translate_message
from sambus.consent import ConsentGrant
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.registry_facts import Custody
from sambus.contracts.topics import TopicSpec
from sambus.router.kafka.admin import ensure_topics
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.service.schema import create_engine, upgrade
from sambus.router.settings import Settings
from sambus.router.stages.intake import Intake

CHILDREN = 50
CLOCK = DrainClock()
MARGIN = 1.5  # a timed backlog is sized to last this many times its share of --drain-seconds
Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def intents(app: Sambus, count: int, tag: str) -> list[Record]:
    intake = Intake(topics=app.topics, pseudonymizer=app.pseudonymizer)
    templates = [
        # Södra skolan takes SIP messages itself (Cosmic Link): its invitations go to each agency, not as one
        # convening Task to social services, as a school without it would send them
        intake.intent_record(translate_message(sip_event(f"b-{child}", child, "bench"))[0])
        for child in map(personnummer, range(CHILDREN))
    ]
    bundles = [json.loads(template.value) for template in templates]
    out = []
    for i in range(count):
        template, bundle = templates[i % CHILDREN], bundles[i % CHILDREN]
        bundle["id"] = f"bench-{tag}-{i}"
        out.append((template.key or b"", json.dumps(bundle).encode(), list(template.headers)))
    return out


async def produce(servers: str, topic: str, records: list[Record], *, rate: float | None = None) -> None:
    """Send ``records`` (at ``rate`` per second, each stamped with its send time), or a backlog at once.

    A backlog is sent in large batches: how it was written does not change what a runner fetches.
    """
    batching = {"linger_ms": 5} if rate is not None else {"linger_ms": 20, "max_batch_size": 256 * 1024}
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", **batching)
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


async def router(app: Sambus, stop: asyncio.Event) -> None:
    await app.run(stop, only="delivery")


@dataclass
class Drain:
    """A backlog drained: timed from the first record the runner consumed to the last one visible."""

    intents: int  # drained (records seen read_committed / records per intent)
    wanted: int
    seconds: float
    cpu_ms: float  # this process's CPU (the runner's) per intent over the same window
    join_s: float  # from the runner's start to its first record consumed (not timed)
    fetches: int
    produce_requests: int

    @property
    def rate(self) -> float:
        return self.intents / self.seconds if self.seconds > 0 else 0.0

    @property
    def finished(self) -> bool:
        return self.intents >= self.wanted

    def line(self, label: str) -> str:
        note = "" if self.finished else f" (did not finish: {self.intents} of {self.wanted})"
        return (
            f"    {label:<16} {self.intents:>6} intents in {self.seconds:6.2f} s: {self.rate:5.0f}/s, "
            f"CPU {self.cpu_ms:.3f} ms/intent; first record {self.join_s:.2f} s after start, "
            f"{self.fetches} fetches, {self.produce_requests} produce requests{note}"
        )


@dataclass
class Measured:
    """One side's timed drains (their intents over their seconds) and its latencies at the fixed load."""

    drains: list[Drain]
    latencies: list[float]
    paced_finished: bool

    @property
    def seconds(self) -> float:
        return sum(drain.seconds for drain in self.drains)

    @property
    def throughput(self) -> float:
        return sum(drain.intents for drain in self.drains) / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms(self) -> float:
        cpu = sum(drain.cpu_ms * drain.intents for drain in self.drains)
        return cpu / max(1, sum(drain.intents for drain in self.drains))

    @property
    def finished(self) -> bool:
        return all(drain.finished for drain in self.drains) and self.paced_finished


@dataclass
class Side:
    """What is measured: the bare pass-through or the delivery stage."""

    label: str
    runner: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
    source: str
    outputs: list[str]
    per_input: int  # records written per intent


@contextlib.asynccontextmanager
async def running(runner: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """``runner`` started afresh (``CLOCK`` armed before it starts), stopped on leaving."""
    stop = asyncio.Event()
    CLOCK.arm()
    service = asyncio.create_task(runner(stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(service, 120)


async def timed_drain(reader: ReaderProcess, wanted: int, per_input: int, *, timeout_s: float) -> Drain:
    """Wait until ``wanted`` inputs' records are visible read_committed (runner started, reader ready)."""
    seen = await reader.read(wanted * per_input, None, timeout_s=timeout_s)
    cpu_end = cpu_seconds()  # the runner idles (polls) from the last record until the reader has answered
    intents = seen.count // per_input
    seconds = seen.last_at - CLOCK.first_at if CLOCK.first_at and seen.count else 0.0
    cpu = (cpu_end - CLOCK.first_cpu) if CLOCK.first_at else 0.0
    return Drain(
        intents=intents, wanted=wanted, seconds=seconds, cpu_ms=cpu * 1000 / max(intents, 1),
        join_s=CLOCK.join_s, fetches=CLOCK.fetches, produce_requests=CLOCK.produce_requests,
    )  # fmt: skip


async def drain_once(
    side: Side,
    size: int,
    tag: str,
    *,
    servers: str,
    make: Callable[[int, str], list[Record]],
    args: argparse.Namespace,
    latencies: list[float] | None = None,
) -> tuple[Drain, bool]:
    """Write a backlog of ``size`` intents, start the runner on it and time its drain.

    With ``latencies``, intents are then offered at ``--rate`` for ``--seconds`` while the same runner runs,
    each one's records timed; returns whether all of them were seen.
    """
    await produce(servers, side.source, make(size, tag))
    reader = ReaderProcess(servers, side.outputs)
    await reader.start()
    paced_finished = True
    async with running(side.runner):
        drain = await timed_drain(reader, size, side.per_input, timeout_s=args.timeout)
        print(drain.line(f"{side.label} {tag}"))
        if latencies is not None:
            paced = make(int(args.rate * args.seconds), f"paced-{tag}")
            reader = ReaderProcess(servers, side.outputs)
            await reader.start()
            reading = asyncio.create_task(
                reader.read(len(paced) * side.per_input, latencies, timeout_s=args.timeout)
            )
            await produce(servers, side.source, paced, rate=args.rate)
            paced_finished = (await reading).count >= len(paced) * side.per_input
            print(
                f"    {side.label} at {args.rate:.0f}/s: p50 {pct(latencies, 50):.1f} ms, "
                f"p99 {pct(latencies, 99):.1f} ms of {len(latencies)} records ({len(paced)} intents)"
            )
    return drain, paced_finished


async def measure(
    sides: tuple[Side, Side],
    *,
    servers: str,
    make: Callable[[int, str], list[Record]],
    args: argparse.Namespace,
) -> tuple[Measured, Measured]:
    """Both sides' throughput, over drains taken in turns, and their latencies at ``--rate``.

    A probe drain of ``--intents`` per side gives its pace now. Then ``--rounds`` rounds, each a drain of
    either side in turn (baseline first in even rounds, the stage first in odd ones), each backlog sized
    to last ``--drain-seconds / --rounds`` (x 1.5) at the pace the side last showed, written before its runner
    starts (again, in the same consumer group): both sides sample the machine's state over the same
    minutes, which moved a single long drain of the baseline by 1.8x between runs on a shared machine.
    Every drain is timed from the first record the runner consumes (group join and first fetch left out,
    for both alike) to the last record visible read_committed; a side's throughput is its drains' intents
    over their seconds. The paced intents follow each side's probe (the rounds stay together). Each wait
    ends after ``--timeout`` at the latest: a drain is then what was seen by then.
    """
    window = args.drain_seconds / args.rounds
    sizes: dict[str, int] = {}
    drains = {side.label: list[Drain]() for side in sides}
    latencies: dict[str, list[float]] = {}
    paced_finished: dict[str, bool] = {}
    for side in sides:
        latencies[side.label] = []
        probe, paced_finished[side.label] = await drain_once(
            side,
            args.intents,
            "probe",
            servers=servers,
            make=make,
            args=args,
            latencies=latencies[side.label],
        )
        sizes[side.label] = max(args.intents, math.ceil(probe.rate * window * MARGIN))
    for round_ in range(args.rounds):
        for side in sides if round_ % 2 == 0 else sides[::-1]:
            drain, _ = await drain_once(
                side, sizes[side.label], f"round{round_}", servers=servers, make=make, args=args
            )
            drains[side.label].append(drain)
            sizes[side.label] = max(args.intents, math.ceil(drain.rate * window * MARGIN))
    base, stage = sides
    return (
        Measured(drains[base.label], latencies[base.label], paced_finished[base.label]),
        Measured(drains[stage.label], latencies[stage.label], paced_finished[stage.label]),
    )


@dataclass
class Run:
    base: Measured
    router: Measured

    @property
    def ratio(self) -> float:
        return self.router.throughput / self.base.throughput

    @property
    def cpu_ratio(self) -> float:
        """The baseline's CPU per intent over the router's: 1 would be as cheap as the bare pass-through."""
        return self.base.cpu_ms / self.router.cpu_ms

    def latency_ratio(self, p: int) -> float:
        return pct(self.router.latencies, p) / pct(self.base.latencies, p)


async def one_run(args: argparse.Namespace, servers: str, number: int, workdir: Path) -> Run:
    settings = Settings(
        topic_prefix=f"bench-{secrets.token_hex(4)}.",
        database_url=f"sqlite:///{workdir / f'bench-{number}.db'}",
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
    group = f"bench-{secrets.token_hex(4)}"  # one group: the timed drain starts where the probe ended

    def make(count: int, tag: str) -> list[Record]:
        return intents(app, count, tag)

    async def baseline(stop: asyncio.Event) -> None:
        await pass_through(servers, base_in, base_out, group, stop)

    async def sambus(stop: asyncio.Event) -> None:
        await router(app, stop)
        if app.ledger.projector is not None:  # its thread (in this process) copies after the stage stopped:
            await asyncio.to_thread(app.ledger.projector.wait, 60)  # not into the next drain's window

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"run {number}: (load average {load})")
    outputs = [
        app.topics.deliver("vasteras-socialtjanst"),
        app.topics.deliver("vastmanland-bu-halsan"),
        app.topics.parked,  # dental care has no consent: parked,
        app.topics.deliver("vasteras-skola-sodra"),  # and the school is told it waits (delivery-waiting)
    ]
    sides = (
        Side("baseline", baseline, base_in, [base_out], 1),
        Side("stage", sambus, app.topics.intents, outputs, len(outputs)),
    )
    base, routed = await measure(sides, servers=servers, make=make, args=args)
    app.engine.dispose()  # the ledger's projection thread is done (the stage waits for it when it stops)
    run = Run(base, routed)
    below = "below" if args.rate < routed.throughput else "NOT below"
    print(
        f"  baseline {base.throughput:.0f} intents/s over {base.seconds:.1f} s, "
        f"stage {routed.throughput:.0f} intents/s over {routed.seconds:.1f} s"
    )
    print(
        f"  ratio router/baseline: throughput {run.ratio:.3f}x, CPU per intent {run.cpu_ratio:.3f}x, "
        f"p50 latency {run.latency_ratio(50):.2f}x, p99 latency {run.latency_ratio(99):.2f}x "
        f"({args.rate:.0f}/s is {below} the router's capacity)"
    )
    return run


def summary(label: str, values: list[float], unit: str, fmt: str = ".3f") -> None:
    low, mid, high = min(values), statistics.median(values), max(values)
    print(f"{label:<48} min {low:{fmt}}  median {mid:{fmt}}  max {high:{fmt}} {unit}")


async def main(args: argparse.Namespace, servers: str) -> None:
    paced_count = int(args.rate * args.seconds)
    print(
        f"each side: a probe of {args.intents} intents, {args.rounds} timed drains in turns of about "
        f"{args.drain_seconds * MARGIN:.0f} s together, then {paced_count} offered at {args.rate:.0f}/s; "
        f"{args.runs} runs ({servers})"
    )
    with tempfile.TemporaryDirectory(prefix="sambus-bench-") as workdir:
        runs = [await one_run(args, servers, n + 1, Path(workdir)) for n in range(args.runs)]
    unfinished = sum(not (r.base.finished and r.router.finished) for r in runs)
    summary("bare pass-through intents/s", [r.base.throughput for r in runs], "", ".0f")
    summary("delivery stage intents/s", [r.router.throughput for r in runs], "", ".0f")
    summary("throughput ratio router/baseline (goal >= 0.5)", [r.ratio for r in runs], "x")
    summary("p50 latency ratio router/baseline", [r.latency_ratio(50) for r in runs], "x", ".2f")
    summary("p99 latency ratio router/baseline (goal <= 3)", [r.latency_ratio(99) for r in runs], "x", ".2f")
    summary("bare pass-through seconds drained (timed)", [r.base.seconds for r in runs], "s", ".1f")
    summary("delivery stage seconds drained (timed)", [r.router.seconds for r in runs], "s", ".1f")
    summary("bare pass-through CPU per intent (process)", [r.base.cpu_ms for r in runs], "ms")
    summary("delivery stage CPU per intent (process)", [r.router.cpu_ms for r in runs], "ms")
    summary("CPU ratio baseline/router per intent", [r.cpu_ratio for r in runs], "x")
    if unfinished:
        print(f"{unfinished} of {len(runs)} runs did not finish within --timeout: their figures are partial")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--intents", type=int, default=3000, help="probe drained first (the timed backlogs' floor)"
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=12.0,
        help="each side's timed drains, together, last about this long (x 1.5)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed drains per side, taken in turns")
    parser.add_argument("--rate", type=float, default=20.0, help="offered load (intents/s) for latency")
    parser.add_argument(
        "--seconds", type=float, default=50.0, help="how long the load is offered (rate x seconds samples)"
    )
    parser.add_argument("--runs", type=int, default=3, help="how many times everything is measured")
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait per phase (seconds)")
    arguments = parser.parse_args()
    CLOCK.install()
    run_on_kafka(lambda servers: main(arguments, servers))
