"""Pipeline benchmark: the whole ``sambus run`` (every stage, its own processes) next to a bare aiokafka
pass-through of the same events on the same broker, in the same run, printed as ratios.

    .venv/bin/python bench/bench_pipeline.py [--events 3000] [--drain-seconds 12] [--rounds 3] [--rate 20]
        [--seconds 50] [--runs 3] [--timeout 600] [--profile DIR]

Each run makes fresh topics and a fresh SQLite database, and:

* throughput, the same way for both: realistic school events (a SIP invitation to three agencies, 50
  children per drain, each drain its own, the guardians consented to two of them) wait on a topic; a
  probe backlog of ``--events`` is drained to learn each side's pace, then ``--rounds`` rounds of one
  drain per side, taken in turns (the baseline first in even rounds, ``sambus run`` in odd ones), each
  backlog sized to last its share of ``--drain-seconds`` (x 1.5) at the pace that side last showed and
  written before its runner starts again, so both sides see the machine's load over the same minutes.
  (With 50 children for every drain, the state stage's CPU per event doubled, 0.60-0.70 to 1.24-1.30 ms,
  once each child had 80-280 SIP invitations behind it.) A side's events/s is its timed
  drains' events over their seconds. ``sambus run`` is timed from its first delivery to the moment every
  delivery (two per event) is visible to a ``read_committed`` consumer; the baseline, the same event bytes
  through a consume-produce loop of bare aiokafka, from its first consumed batch to its last record
  visible (3,000 events took it 0.15-0.25 s in a few fetches, and its pace swung 1.6x between runs);
* latency: after each side's probe, events are offered at ``--rate`` per second for ``--seconds``, a load
  below capacity, and each delivery is timed from its event's send to when it is seen ``read_committed``
  (p50, p99; the sample counts are printed: the baseline has one per event, sambus two);
* memory: the peak resident size (VmHWM) of every ``sambus run`` process (the largest of its starts), which
  must stay at most 250 MB;
* CPU per event of every ``sambus run`` process, and of each stage group, over the timed drains.

Every figure is printed per run, then as min / median / max over the runs. Uses KAFKA_BOOTSTRAP_SERVERS,
else starts the local broker from deploy/kafka/ on SAMBUS_BENCH_KAFKA_PORT (default 19394).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import pass_through, pct, personnummer, run_on_kafka, sip_event
from drain import SENT_AT, DrainClock, ReaderProcess  # bench/ is on the path: it is the script's folder
from drain import Reader as DrainReader

from sambus.adapters import translate_message
from sambus.consent import ConsentGrant
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.registry_facts import Custody
from sambus.contracts.topics import Header, TopicSpec
from sambus.router.kafka.admin import ensure_topics
from sambus.router.service.bootstrap import STAGE_GROUPS, Sambus, bootstrap
from sambus.router.service.schema import create_engine, upgrade
from sambus.router.settings import Settings

CHILDREN = 50
DELIVERED_TO = ("vasteras-socialtjanst", "vastmanland-bu-halsan")  # consented; dental care is parked
RSS_LIMIT_MB = 250
CLOCK = DrainClock()
SAMBUS = Path(sys.executable).with_name("sambus")
MARGIN = 1.5  # a timed backlog is sized to last this many times its share of --drain-seconds
PROFILED = "import cProfile; from sambus.router.cli.main import main; cProfile.run('main()', 'OUT')"


def events(count: int, tag: str, block: int = 0) -> list[bytes]:
    """``count`` events for the ``block``-th 50 children (a drain's own: their history stays short)."""
    return [
        sip_event(f"{tag}-{i}", personnummer(block * CHILDREN + i % CHILDREN), "skolsystem-bench")
        for i in range(count)
    ]


async def produce(servers: str, topic: str, values: list[bytes], *, rate: float | None = None) -> None:
    """Send ``values`` (at ``rate`` per second), or a backlog at once in large batches (how a backlog was
    written does not change what a runner fetches)."""
    batching = {"linger_ms": 5} if rate is not None else {"linger_ms": 20, "max_batch_size": 256 * 1024}
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", **batching)
    await producer.start()
    try:
        start = time.perf_counter()
        sends = []
        for i, value in enumerate(values):
            if rate is not None:
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            headers = [(SENT_AT, str(time.time_ns()).encode())]
            sends.append(await producer.send(topic, value, headers=headers))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


class Reader(DrainReader):
    """:class:`drain.Reader`, reading each record's latency by its ``SENT_AT`` header or correlation id."""

    def __init__(self, servers: str, topics: list[str]) -> None:
        super().__init__(servers, topics)
        self.last_at = 0.0
        """When (``time.perf_counter``) the last record :meth:`read` saw came."""

    async def read(  # type: ignore[override] # another result: the drain's seconds, latencies, count
        self,
        count: int,
        sent: dict[str, int] | None = None,
        *,
        timeout_s: float = 600.0,
        on_first: Callable[[], object] | None = None,
    ) -> tuple[float, list[float], int]:
        """Read ``count`` records: (seconds from the first to the last, each one's latency in ms, how many).

        Stops after ``timeout_s`` with what it saw, so a run that cannot keep up ends. ``on_first`` is called
        when the first record comes (the timing starts then).

        A record's send time is its ``SENT_AT`` header (the baseline keeps it), else ``sent`` by its
        correlation id (sambus makes new headers; the correlation id is the event's message id).
        """
        seen = 0
        first = last = 0.0
        latencies: list[float] = []
        deadline = time.monotonic() + timeout_s
        try:
            while seen < count and time.monotonic() < deadline:
                batch = await self._consumer.getmany(timeout_ms=200)
                now = time.time_ns()
                if batch:
                    if not first and on_first is not None:
                        on_first()
                    first, last = first or time.perf_counter(), time.perf_counter()
                for records in batch.values():
                    for record in records:
                        seen += 1
                        headers = dict(record.headers)
                        stamp = headers.get(SENT_AT)
                        correlation = headers.get(Header.CORRELATION_ID, b"")
                        if stamp is None and sent is not None:
                            stamp = str(sent.get(correlation.decode(), 0)).encode()
                        if stamp is not None and int(stamp):
                            latencies.append((now - int(stamp)) / 1e6)
        finally:
            await self._consumer.stop()
        self.last_at = last
        return last - first, latencies, seen


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            lines = status.read_text().splitlines()
            found.extend(int(status.parent.name) for line in lines if line.split() == ["PPid:", str(pid)])
    return found


def cpu_seconds(pid: int) -> dict[int, float]:
    """CPU time (user + system) each process of ``sambus run`` (``pid`` and its children) has used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for one in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            used[one] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return used


def group_names(pid: int) -> dict[int, str]:
    """The stage group of each process ``sambus run`` started (in :data:`STAGE_GROUPS` order)."""
    spawned = []
    for one in sorted(_children(pid)):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{one}/cmdline").read_bytes():  # not the resource tracker
                spawned.append(one)
    return dict(zip(spawned, STAGE_GROUPS, strict=False))


def cpu_by_group(
    before: dict[int, float], after: dict[int, float], names: dict[int, str]
) -> dict[str, float]:
    """CPU seconds each process of ``sambus run`` used between ``before`` and ``after``, by stage group."""
    spent: dict[str, float] = {}
    for pid, used in before.items():
        name = names.get(pid, "other")
        spent[name] = spent.get(name, 0.0) + after.get(pid, used) - used
    return spent


def print_cpu(spent: dict[str, float], events: int) -> None:
    """CPU time per event while draining, of every process and of each stage group."""
    total = sum(spent.values()) * 1000 / events
    print(f"    CPU of every sambus process while draining: {total:.2f} ms per event")
    for name, seconds in sorted(spent.items()):
        print(f"        {name:>10}: {seconds * 1000 / events:.2f} ms per event")
    print(f"    load average after draining: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def peak_rss_mb(pid: int) -> dict[str, float]:
    """The peak resident size of ``pid`` and its children, by process name."""
    peaks = {}
    for one in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{one}/status").read_text().splitlines()
            fields = dict(line.split(":", 1) for line in status if ":" in line)
            name = (Path(f"/proc/{one}/cmdline").read_bytes().replace(b"\0", b" ")[-60:]).decode(
                errors="replace"
            )
            peaks[f"{one} {name.strip()}"] = int(fields["VmHWM"].split()[0]) / 1024
    return peaks


@dataclass
class Run:
    base_eps: float
    sambus_eps: float
    base_seconds: float  # how long the timed drain took
    sambus_seconds: float
    base_p50: float
    base_p99: float
    sambus_p50: float
    sambus_p99: float
    max_rss_mb: float
    cpu_ms_per_event: float


def _seed(app: Sambus, blocks: int) -> None:
    now = dt.datetime.now(dt.UTC)
    for n in range(CHILDREN * blocks):
        child = app.pseudonymizer.of(personnummer(n))
        app.registry.set_custody(child, Custody.SOLE, ("guardian",), at=now - dt.timedelta(days=2))
        grant = ConsentGrant(
            consent_id=f"c{n}", child=child, purpose=Purpose.SIP,
            agency_kinds=frozenset({AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN}),
            given_by="guardian", guardians=("guardian",), valid_from=now - dt.timedelta(days=1),
        )  # fmt: skip
        app.registry.record(grant, now=now)


def next_size(args: argparse.Namespace, rate: float) -> int:
    """A backlog that takes its share of ``--drain-seconds`` at ``rate`` events/s, with half more."""
    share: float = args.drain_seconds / args.rounds
    return max(int(args.events), math.ceil(rate * share * MARGIN))


@dataclass
class Drain:
    """A backlog drained: how many events in how many seconds."""

    events: int
    seconds: float
    finished: bool

    @property
    def eps(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def drain_baseline(
    servers: str,
    base_in: str,
    base_out: str,
    group: str,
    *,
    size: int,
    tag: str,
    args: argparse.Namespace,
    latencies: list[float] | None = None,
) -> Drain:
    """The same event bytes through bare aiokafka: ``size`` events written, then drained and timed.

    Timed from the pass-through's first consumed batch to the last record the reader sees: timed between
    the reader's own first and last reads, a drain fast enough to show up in one or two fetches measured
    close to nothing (one run printed 42 billion events/s). The reader runs in a process of its own: in
    this one it shared the pass-through's event loop. With ``latencies``, events are then offered at
    ``--rate`` for ``--seconds`` while the same pass-through runs, and timed.
    """
    backlog = events(size, tag)
    await produce(servers, base_in, backlog)
    reader = ReaderProcess(servers, [base_out])
    await reader.start()
    stop = asyncio.Event()
    CLOCK.arm()
    baseline = asyncio.create_task(pass_through(servers, base_in, base_out, group, stop))
    try:
        seen = await reader.read(len(backlog), None, timeout_s=args.timeout)
        elapsed = seen.last_at - CLOCK.first_at if CLOCK.first_at and seen.count else 0.0
        drain = Drain(seen.count, elapsed, seen.count >= len(backlog))
        print(
            f"    baseline {tag:<10} {seen.count:>7} events in {elapsed:6.2f} s: {drain.eps:6.0f}/s; "
            f"{CLOCK.fetches} fetches, {CLOCK.produce_requests} produce requests"
        )
        if latencies is not None:
            paced = events(int(args.rate * args.seconds), f"{tag}-paced")
            reader = ReaderProcess(servers, [base_out])
            await reader.start()
            reading = asyncio.create_task(reader.read(len(paced), latencies, timeout_s=args.timeout))
            await produce(servers, base_in, paced, rate=args.rate)
            await reading
    finally:
        stop.set()
        await baseline
    return drain


def service_command(profile_dir: str | None, number: int) -> list[str]:
    """``sambus run``; with ``profile_dir``, every stage in one process under cProfile (written on stop)."""
    if not profile_dir:
        return [str(SAMBUS), "run"]
    profile = Path(profile_dir).resolve() / f"run-{number}.prof"
    profile.parent.mkdir(parents=True, exist_ok=True)  # cProfile writes it on stop, and cannot make a folder
    script = f"import sys; sys.argv = ['sambus', 'run', '--one-process']; {PROFILED}"
    return [sys.executable, "-c", script.replace("OUT", str(profile))]


@dataclass
class SambusDrain(Drain):
    """A backlog drained by ``sambus run``: timed from its first delivery visible to its last."""

    cpu: dict[str, float] = field(default_factory=dict)  # seconds by stage group, over the same window
    latencies: list[float] = field(default_factory=list)  # of the paced events, when asked for
    peaks: dict[str, float] = field(default_factory=dict)  # peak RSS (MB) of each process


async def drain_sambus(
    args: argparse.Namespace,
    servers: str,
    *,
    env: dict[str, str],
    log: Path,
    source: str,
    size: int,
    tag: str,
    deliveries: list[str],
    number: int,
    paced: bool = False,
) -> SambusDrain:
    """Start ``sambus run`` on a backlog of ``size`` events (written already) and time its drain.

    With ``paced``, events are then offered at ``--rate`` for ``--seconds`` and timed before it stops. The
    peak memory of each process is taken before it stops.
    """
    reader = Reader(servers, deliveries)
    await reader.start()
    output = log.open("wb")
    command = service_command(args.profile, number)
    service = subprocess.Popen(command, env=env, stdout=output, stderr=output)  # noqa: ASYNC220, S603
    try:
        wanted = size * len(DELIVERED_TO)
        cpu_before: dict[int, float] = {}
        elapsed, _, seen = await reader.read(
            wanted, timeout_s=args.timeout, on_first=lambda: cpu_before.update(cpu_seconds(service.pid))
        )
        cpu = cpu_by_group(cpu_before, cpu_seconds(service.pid), group_names(service.pid))
        drain = SambusDrain(seen // len(DELIVERED_TO), elapsed, seen >= wanted, cpu=cpu)
        print(
            f"    sambus   {tag:<10} {drain.events:>7} events in {elapsed:6.2f} s: {drain.eps:6.0f}/s; CPU "
            f"{sum(cpu.values()) * 1000 / max(1, drain.events):.2f} ms per event"
        )
        if seen < wanted:
            print(f"run {number}: sambus run drained {seen} of {wanted} deliveries in {args.timeout:.0f} s")
        if paced:
            values = events(int(args.rate * args.seconds), f"r{number}-paced", block=1)
            reader = Reader(servers, deliveries)
            await reader.start()
            paced_wanted, sent = len(values) * len(DELIVERED_TO), dict[str, int]()
            reading = asyncio.create_task(reader.read(paced_wanted, sent, timeout_s=args.timeout))
            await produce_stamped(servers, source, values, sent, rate=args.rate)
            _, drain.latencies, paced_seen = await reading
            if paced_seen < paced_wanted:
                print(f"run {number}: {paced_seen} of {paced_wanted} paced deliveries seen in time")
        drain.peaks = peak_rss_mb(service.pid)
    finally:
        service.send_signal(signal.SIGTERM)
        await asyncio.to_thread(service.wait, 120)
        output.close()
    return drain


async def one_run(args: argparse.Namespace, servers: str, number: int, workdir: Path) -> Run:
    key = secrets.token_hex(32)
    settings = Settings(
        topic_prefix=f"benchp-{secrets.token_hex(4)}.",
        database_url=f"sqlite:///{workdir / f'pipeline-{number}.db'}",
        pseudonym_key=SecretStr(key),
        instance_id=secrets.token_hex(4),
    )
    engine = create_engine(settings.database_url)
    upgrade(engine)  # what `sambus db upgrade` does
    engine.dispose()
    app = bootstrap(settings, bootstrap_servers=servers)
    _seed(app, 2 + args.rounds)  # the probe, the paced events, each round
    await app.create_topics()
    source = app.topics.agency_events("school")
    base_in, base_out = f"{settings.topic_prefix}baseline.in", f"{settings.topic_prefix}baseline.out"
    await ensure_topics(servers, [TopicSpec(base_in), TopicSpec(base_out)])
    deliveries = [app.topics.deliver(name) for name in DELIVERED_TO]

    env = {
        **os.environ,
        "SAMBUS_KAFKA_BOOTSTRAP_SERVERS": servers,
        "SAMBUS_TOPIC_PREFIX": settings.topic_prefix,
        "SAMBUS_PSEUDONYM_KEY": key,
        "SAMBUS_DATABASE_URL": settings.database_url,
        "SAMBUS_INSTANCE_ID": settings.instance_id,
    }
    group = f"bench-{secrets.token_hex(4)}"  # the pass-through's: each drain starts where the last ended

    async def baseline(size: int, tag: str, latencies: list[float] | None = None) -> Drain:
        return await drain_baseline(
            servers, base_in, base_out, group, size=size, tag=tag, args=args, latencies=latencies
        )

    async def sambus(size: int, tag: str, block: int, *, paced: bool = False) -> SambusDrain:
        # sambus run, the whole service, as an operator starts it; each drain has children of its own
        await produce(servers, source, events(size, f"r{number}-{tag}", block))
        return await drain_sambus(
            args, servers, env=env, log=workdir / f"run-{number}-{tag}.log", source=source, size=size,
            tag=tag, deliveries=deliveries, number=number, paced=paced,
        )  # fmt: skip

    print(f"run {number}: (load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    base_latencies: list[float] = []
    base_probe = await baseline(args.events, f"r{number}-probe", base_latencies)
    sambus_probe = await sambus(args.events, "probe", 0, paced=True)  # the paced events: block 1
    base_size, sambus_size = next_size(args, base_probe.eps), next_size(args, sambus_probe.eps)
    base_drains: list[Drain] = []
    sambus_drains: list[SambusDrain] = []
    for round_ in range(args.rounds):  # in turns: both sides see the machine's load over the same minutes
        for side in ("baseline", "sambus") if round_ % 2 == 0 else ("sambus", "baseline"):
            if side == "baseline":
                base_drains.append(await baseline(base_size, f"r{number}-round{round_}"))
                base_size = next_size(args, base_drains[-1].eps)
            else:
                sambus_drains.append(await sambus(sambus_size, f"round{round_}", 2 + round_))
                sambus_size = next_size(args, sambus_drains[-1].eps)
    base_seconds = sum(d.seconds for d in base_drains)
    sambus_seconds = sum(d.seconds for d in sambus_drains)
    sambus_events = sum(d.events for d in sambus_drains)
    cpu: dict[str, float] = {}
    for drain in sambus_drains:
        for name, seconds in drain.cpu.items():
            cpu[name] = cpu.get(name, 0.0) + seconds
    peaks = {name: peak for drain in (sambus_probe, *sambus_drains) for name, peak in drain.peaks.items()}
    sambus_latencies = sambus_probe.latencies
    app.engine.dispose()
    run = Run(
        base_eps=sum(d.events for d in base_drains) / base_seconds if base_seconds else 0.0,
        sambus_eps=sambus_events / sambus_seconds if sambus_seconds else 0.0,
        base_seconds=base_seconds,
        sambus_seconds=sambus_seconds,
        base_p50=pct(base_latencies, 50),
        base_p99=pct(base_latencies, 99),
        sambus_p50=pct(sambus_latencies, 50),
        sambus_p99=pct(sambus_latencies, 99),
        max_rss_mb=max(peaks.values()),
        cpu_ms_per_event=sum(cpu.values()) * 1000 / max(1, sambus_events),
    )
    print(
        f"run {number}: baseline {run.base_eps:8.0f} events/s, sambus run {run.sambus_eps:7.0f} events/s "
        f"(ratio {run.sambus_eps / run.base_eps:.4f}); at {args.rate:.0f}/s p50 {run.sambus_p50:.0f} ms "
        f"(baseline {run.base_p50:.1f}), p99 {run.sambus_p99:.0f} ms of {len(sambus_latencies)} deliveries "
        f"(baseline {run.base_p99:.1f} of {len(base_latencies)})"
    )
    print_cpu(cpu, max(1, sambus_events))
    for name, peak in sorted(sambus_drains[-1].peaks.items()):  # its last start's (the max: over all)
        print(f"    peak RSS {peak:6.1f} MB  {name}")
    return run


async def produce_stamped(
    servers: str, topic: str, values: list[bytes], sent: dict[str, int], *, rate: float
) -> None:
    """Offer ``values`` at ``rate`` per second, noting each one's send time by its correlation id."""
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=5, acks="all")
    ids = [translate_message(value)[0].correlation_id for value in values]
    await producer.start()
    try:
        start = time.perf_counter()
        sends = []
        for i, value in enumerate(values):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sent[ids[i]] = time.time_ns()
            sends.append(await producer.send(topic, value))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def summary(label: str, values: list[float], unit: str, fmt: str = ".4f") -> None:
    low, mid, high = min(values), statistics.median(values), max(values)
    print(f"{label:<44} min {low:{fmt}}  median {mid:{fmt}}  max {high:{fmt}} {unit}")


async def main(args: argparse.Namespace, servers: str) -> None:
    print(
        f"{args.events} events drained, then {int(args.rate * args.seconds)} offered at {args.rate:.0f}/s, "
        f"{args.runs} runs ({servers})"
    )
    with tempfile.TemporaryDirectory(prefix="sambus-bench-pipeline-") as workdir:
        runs = [await one_run(args, servers, n + 1, Path(workdir)) for n in range(args.runs)]
    summary("baseline events/s", [r.base_eps for r in runs], "", ".0f")
    summary("sambus run events/s", [r.sambus_eps for r in runs], "", ".0f")
    summary("baseline drain seconds", [r.base_seconds for r in runs], "s", ".1f")
    summary("sambus run drain seconds", [r.sambus_seconds for r in runs], "s", ".1f")
    summary("throughput ratio sambus/baseline (goal >= 0.1)", [r.sambus_eps / r.base_eps for r in runs], "x")
    summary("baseline p50 latency", [r.base_p50 for r in runs], "ms", ".1f")
    summary("baseline p99 latency", [r.base_p99 for r in runs], "ms", ".1f")
    summary("sambus run p50 latency", [r.sambus_p50 for r in runs], "ms", ".1f")
    summary("sambus run p99 latency", [r.sambus_p99 for r in runs], "ms", ".1f")
    summary("p99 latency ratio sambus/baseline", [r.sambus_p99 / r.base_p99 for r in runs], "x", ".1f")
    summary(f"max RSS of a sambus process (<= {RSS_LIMIT_MB} MB)", [r.max_rss_mb for r in runs], "MB", ".1f")
    summary("CPU ms per event, all sambus processes", [r.cpu_ms_per_event for r in runs], "ms", ".2f")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=3000, help="probe drained first (the timed backlogs' floor)"
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=12.0,
        help="each side's timed drains, together, last about this long (x 1.5)",
    )
    parser.add_argument(
        "--rounds", type=int, choices=range(1, 18), default=3, help="timed drains per side, taken in turns"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="offered load (events/s) for latency")
    parser.add_argument(
        "--seconds", type=float, default=50.0, help="how long the load is offered (rate x seconds events)"
    )
    parser.add_argument("--runs", type=int, default=3, help="how many times everything is measured")
    parser.add_argument("--timeout", type=float, default=600.0, help="longest wait per phase (seconds)")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="run sambus --one-process under cProfile, a run-N.prof per run in DIR",
    )
    arguments = parser.parse_args()
    CLOCK.install()
    run_on_kafka(lambda servers: main(arguments, servers))
