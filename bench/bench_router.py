"""Router benchmark: throughput and end-to-end latency of the delivery stage, next to a bare aiokafka
consume→produce pass-through on the same broker, measured in the same run, printed as ratios.

    .venv/bin/python bench/bench_router.py [--intents 5000] [--rate 50] [--seconds 10] [--runs 3]
        [--timeout 300]

Uses KAFKA_BOOTSTRAP_SERVERS, else starts the local broker from deploy/kafka/ on SAMBUS_BENCH_KAFKA_PORT
(default 19394) and stops it afterwards. Throughput: a backlog of intents is drained, intents/s (the router
makes four records of each: two deliveries, one parked, the school's delivery-waiting notice). Latency:
intents are offered at a fixed rate and timed from send to the moment a read_committed consumer sees the
result. Each phase waits at most --timeout seconds (a run that cannot keep up prints what it drained by
then); every ratio is printed per run, then as min / median / max over the runs. CPU per intent is this
process's CPU (every thread, user and system) while the backlog drained, divided by the intents drained:
the runner's alone, as the reader (a read_committed consumer of what the runner writes) runs in a process
of its own. On a shared machine it is the figure other load bends least.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drain_clock import DrainClock  # bench/ is on the path: it is the script's folder

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
CLOCK = DrainClock()
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
    # Södra skolan takes SIP messages itself (Cosmic Link): its invitations go to each agency, not as one
    # convening Task to social services, as a school without it would send them
    data = {"child": {"civicNo": child}, "schoolUnitCode": "19800002", "initiatedBy": "student_health"}
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


class Reader:
    """A read_committed consumer positioned at the end of ``topics`` before anything is sent.

    Reads stop at a deadline, so a run that cannot keep up ends with what it saw instead of hanging.
    """

    def __init__(self, servers: str, topics: list[str]) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=servers, isolation_level="read_committed"
        )

    async def start(self) -> None:
        await self._consumer.start()
        while not self._consumer.assignment():  # noqa: ASYNC110 - aiokafka has no event for it
            await asyncio.sleep(0.05)
        await self._consumer.seek_to_end()
        for partition in self._consumer.assignment():
            await self._consumer.position(partition)  # resolved now, not when the first fetch happens

    async def read(self, count: int, latencies: list[float], *, timeout_s: float) -> tuple[float, int]:
        """Read up to ``count`` records, noting each one's latency: (first-to-last seconds, how many)."""
        seen = 0
        first = last = 0.0
        deadline = time.monotonic() + timeout_s
        try:
            while seen < count and time.monotonic() < deadline:
                batch = await self._consumer.getmany(timeout_ms=200)
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
            await self._consumer.stop()
        return last - first, seen


class ReaderProcess:
    """A :class:`Reader` in a process of its own, so it takes no CPU from the runner measured here.

    In the runner's process (and event loop) it read four records per intent of the router against one of
    the baseline: the measuring cost the router more than the baseline.
    """

    def __init__(self, servers: str, topics: list[str]) -> None:
        self._args = [servers, ",".join(topics)]
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the reader and wait until it is positioned at the end of its topics."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--read", *self._args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._process.stdout is not None
        ready = await self._process.stdout.readline()
        if ready.strip() != b"ready":
            raise RuntimeError("the reader process did not start")

    async def read(self, count: int, latencies: list[float], *, timeout_s: float) -> tuple[float, int]:
        """As :meth:`Reader.read`, in the reader's process."""
        assert self._process is not None
        order = json.dumps({"count": count, "timeout_s": timeout_s}).encode()
        out, _ = await self._process.communicate(order + b"\n")
        result = json.loads(out)
        latencies.extend(result["latencies"])
        return result["elapsed"], result["seen"]


async def read_for_parent(servers: str, topics: str) -> None:
    """The reader process: positioned, says ``ready``, reads what it is told, answers in JSON on stdout."""
    reader = Reader(servers, topics.split(","))
    await reader.start()
    print("ready", flush=True)
    order = json.loads(await asyncio.to_thread(sys.stdin.readline))
    latencies: list[float] = []
    elapsed, seen = await reader.read(order["count"], latencies, timeout_s=order["timeout_s"])
    print(json.dumps({"elapsed": elapsed, "seen": seen, "latencies": latencies}), flush=True)


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


@dataclass
class Measured:
    throughput: float
    latencies: list[float]
    finished: bool
    cpu_ms: float  # this process's CPU per input while the backlog drained (runner and reader together)


def cpu_seconds() -> float:
    """CPU time of this process so far, user and system, every thread."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    timeout_s: float,
) -> Measured:
    """Inputs/s draining ``backlog`` and latencies in ms of ``paced`` offered at ``rate``/s.

    Each phase ends after ``timeout_s`` at the latest: throughput is then what was seen by then.
    """
    await produce(servers, source, backlog)
    drained: list[float] = []
    stop = asyncio.Event()
    reader = ReaderProcess(servers, outputs)
    await reader.start()
    cpu_before = cpu_seconds()
    CLOCK.arm()
    service = asyncio.create_task(runner(stop))
    try:
        wanted = len(backlog) * per_input
        elapsed, seen = await reader.read(wanted, drained, timeout_s=timeout_s)
        print(
            f"  {label}: drain {elapsed:.2f} s by the reader; first record consumed {CLOCK.join_s:.2f} s "
            f"after start; {CLOCK.fetches} fetches of {CLOCK.records / max(CLOCK.fetches, 1):.0f} records; "
            f"{CLOCK.produce_requests} produce requests of {CLOCK.produce_batches} batches"
        )
        cpu_ms = (cpu_seconds() - cpu_before) * 1000 / max(seen / per_input, 1)
        throughput = seen / per_input / elapsed if elapsed > 0 else 0.0  # start-up is not counted
        finished = seen >= wanted
        latencies: list[float] = []
        reader = ReaderProcess(servers, outputs)
        await reader.start()
        reading = asyncio.create_task(reader.read(len(paced) * per_input, latencies, timeout_s=timeout_s))
        await produce(servers, source, paced, rate=rate)
        _, paced_seen = await reading
        finished = finished and paced_seen >= len(paced) * per_input
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(service, 120)
    p50, p99 = pct(latencies, 50), pct(latencies, 99)
    note = "" if finished else f"  (did not finish in {timeout_s:.0f} s: {seen} of {wanted} drained)"
    print(
        f"  {label:<26} {throughput:>9.0f} intents/s   p50 {p50:>7.1f} ms   p99 {p99:>7.1f} ms   "
        f"CPU {cpu_ms:.3f} ms/intent{note}"
    )
    return Measured(throughput, latencies, finished, cpu_ms)


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] if len(values) > 1 else float("nan")


@dataclass
class Run:
    base: Measured
    router: Measured

    @property
    def ratio(self) -> float:
        return self.router.throughput / self.base.throughput

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
    paced_count = int(args.rate * args.seconds)
    backlog, paced = intents(app, args.intents, "backlog"), intents(app, paced_count, "paced")

    async def baseline(stop: asyncio.Event) -> None:
        await pass_through(servers, base_in, base_out, stop)

    async def sambus(stop: asyncio.Event) -> None:
        await router(app, stop)

    common = {"servers": servers, "backlog": backlog, "paced": paced, "rate": args.rate}
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"run {number}: (load average {load})")
    base = await measure(
        "bare aiokafka pass-through",
        runner=baseline,
        source=base_in,
        outputs=[base_out],
        per_input=1,
        timeout_s=args.timeout,
        **common,
    )
    outputs = [
        app.topics.deliver("vasteras-socialtjanst"),
        app.topics.deliver("vastmanland-bu-halsan"),
        app.topics.parked,  # dental care has no consent: parked,
        app.topics.deliver("vasteras-skola-sodra"),  # and the school is told it waits (delivery-waiting)
    ]
    routed = await measure(
        "sambus delivery stage",
        runner=sambus,
        source=app.topics.intents,
        outputs=outputs,
        per_input=len(outputs),
        timeout_s=args.timeout,
        **common,
    )
    app.engine.dispose()
    run = Run(base, routed)
    below = "below" if args.rate < routed.throughput else "NOT below"
    print(
        f"  ratio router/baseline: throughput {run.ratio:.3f}x, p50 latency {run.latency_ratio(50):.2f}x, "
        f"p99 latency {run.latency_ratio(99):.2f}x ({args.rate:.0f}/s is {below} the router's capacity)"
    )
    return run


def summary(label: str, values: list[float], unit: str, fmt: str = ".3f") -> None:
    low, mid, high = min(values), statistics.median(values), max(values)
    print(f"{label:<48} min {low:{fmt}}  median {mid:{fmt}}  max {high:{fmt}} {unit}")


async def main(args: argparse.Namespace, servers: str) -> None:
    paced_count = int(args.rate * args.seconds)
    print(
        f"{args.intents} intents drained, then {paced_count} offered at {args.rate:.0f}/s, {args.runs} runs "
        f"({servers})"
    )
    with tempfile.TemporaryDirectory(prefix="sambus-bench-") as workdir:
        runs = [await one_run(args, servers, n + 1, Path(workdir)) for n in range(args.runs)]
    unfinished = sum(not (r.base.finished and r.router.finished) for r in runs)
    summary("bare pass-through intents/s", [r.base.throughput for r in runs], "", ".0f")
    summary("delivery stage intents/s", [r.router.throughput for r in runs], "", ".0f")
    summary("throughput ratio router/baseline (goal >= 0.5)", [r.ratio for r in runs], "x")
    summary("p50 latency ratio router/baseline", [r.latency_ratio(50) for r in runs], "x", ".2f")
    summary("p99 latency ratio router/baseline (goal <= 3)", [r.latency_ratio(99) for r in runs], "x", ".2f")
    summary("bare pass-through CPU per intent (process)", [r.base.cpu_ms for r in runs], "ms")
    summary("delivery stage CPU per intent (process)", [r.router.cpu_ms for r in runs], "ms")
    if unfinished:
        print(f"{unfinished} of {len(runs)} runs did not finish within --timeout: their figures are partial")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=5000, help="backlog drained for throughput")
    parser.add_argument("--rate", type=float, default=50.0, help="offered load (intents/s) for latency")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the load is offered")
    parser.add_argument("--runs", type=int, default=3, help="how many times everything is measured")
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait per phase (seconds)")
    parser.add_argument("--read", nargs=2, metavar=("SERVERS", "TOPICS"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.read:  # the reader process of a run (ReaderProcess)
        asyncio.run(read_for_parent(*arguments.read))
        sys.exit(0)
    CLOCK.install()
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    local = None if configured else LocalKafka(port=int(os.environ.get("SAMBUS_BENCH_KAFKA_PORT", "19394")))
    started = local.ensure_running() if local else False
    try:
        asyncio.run(main(arguments, configured or (local.bootstrap_servers if local else "")))
    finally:
        if local is not None and started:
            local.stop()
