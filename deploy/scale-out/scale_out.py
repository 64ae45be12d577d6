r"""The scale-out run: three brokers, PostgreSQL, two instances of every stage group, the demo plus N events.

What an operator would do to run sambus on several machines, on one machine:

1. ``sambus kafka up --brokers 3`` (ports ``--port`` … ``--port``+5), topics created by ``sambus topics
   create`` with replication 3 and ``min.insync.replicas`` 2;
2. a fresh schema on PostgreSQL (``--database-url``, else ``SAMBUS_TEST_POSTGRES_URL`` as
   ``deploy/postgres/with-postgres.sh`` sets it), migrated by ``sambus db upgrade``;
3. two ``sambus run --stage S`` for every stage group S, with instance ids ``0`` and ``1``;
4. the demo's workload (a consented SIP; one with a wrong check digit) plus ``--events`` SIP initiations for
   100 children whose guardians consented to SIP with all three agencies, each event inviting one of them in
   turn (one delivery per event keeps the run short enough for CI);
5. mid-run, the instances named by ``--stop`` (``GROUP:SIGNAL@FRACTION`` of the deliveries) are stopped and
   not restarted: their group's other instance must take their partitions over.

Then it checks, and prints as JSON (``--report``): ``sambus queues --json`` showed both instances in every
group before the stops and only the survivor, holding every partition, after; a ``read_committed`` read of
every delivery topic holds each expected delivery exactly once; the demo's message waits on the parked topic
and its bad event is a dead letter; the ledger holds one decision per (message, recipient). Each instance's
CPU time and peak resident memory (``/proc``) are reported too: they size the manifests' requests and limits.

Exit status 0 when every check holds, 1 when one fails (the report says which), 2 when it cannot run.
Every wait is for a condition, bounded by ``--timeout``. Run it from the checkout:

    SAMBUS_POSTGRES_PORT=55416 bash deploy/postgres/with-postgres.sh .venv/bin/python \
        deploy/scale-out/scale_out.py --port 29900 --report /tmp/scale-out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from pydantic import SecretStr

from sambus.consent import ConsentGrant
from sambus.consent.ledger import entries
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.identifiers import luhn_valid
from sambus.contracts.registry_facts import Custody
from sambus.router.dev.demo import demo_events, record_demo_consent, sip_event
from sambus.router.kafka.admin import partitions_of
from sambus.router.ops.queues import NoDeadlines, QueueMonitor, QueueSnapshot
from sambus.router.service.bootstrap import STAGES, Sambus, bootstrap
from sambus.router.settings import Settings

SAMBUS = Path(sys.executable).with_name("sambus")
INSTANCES = ("0", "1")
CHILDREN = 100
CONSENTED = ("vasteras-socialtjanst", "vastmanland-bu-halsan", "vastmanland-folktandvarden")
"""Every child of the N events: the guardians consented to SIP with all three invited agencies."""
DEMO_DELIVERED = CONSENTED[:2]  # the demo child's guardian left dental care out: that one is parked
T = TypeVar("T")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def personnummer(n: int) -> str:
    """A made-up personnummer with a valid check digit (born 2011-05-20), the n-th of its birth date."""
    digits = f"110520{n:03d}"
    check = next(c for c in "0123456789" if luhn_valid(digits + c))
    return f"20{digits}{check}"


def _say(message: str) -> None:
    sys.stderr.write(f"[scale-out {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def scale_out_event(i: int) -> bytes:
    """The i-th SIP initiation: child ``i % 100``, inviting one of the three agencies, in turn."""
    sip: dict[str, Any] = sip_event(f"scale-out-{i}", personnummer(i % CHILDREN))
    invited = sip["data"]["invite"]  # social services, BU-hälsan, dental care: CONSENTED's order
    sip["data"]["invite"] = [invited[i % len(invited)]]
    return json.dumps(sip).encode()


@dataclass
class Usage:
    """What one instance used: CPU seconds, resident memory now and at its peak, busiest CPU share."""

    cpu_s: float = 0.0
    rss_mib: float = 0.0
    peak_rss_mib: float = 0.0
    peak_cpu_millicores: int = 0
    idle_cpu_s: float = 0.0
    """CPU seconds used before the workload began (start-up, joining the groups)."""
    samples: list[tuple[float, float]] = field(default_factory=list)  # (monotonic time, CPU seconds)

    def sample(self, pid: int) -> None:
        """Read ``/proc/<pid>``; the busiest CPU share is over windows of five seconds."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
            status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
        except OSError:
            return  # it has just ended
        fields = stat.rsplit(")", 1)[1].split()
        self.cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
        kib = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if "kB" in line}
        self.rss_mib = kib.get("VmRSS", 0) / 1024
        self.peak_rss_mib = max(self.peak_rss_mib, kib.get("VmHWM", 0) / 1024)
        now = time.monotonic()
        self.samples.append((now, self.cpu_s))
        window = [s for s in self.samples if s[0] >= now - 5.0]
        if now - window[0][0] >= 4.0:  # noqa: PLR2004 - a window of about five seconds
            share = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
            self.peak_cpu_millicores = max(self.peak_cpu_millicores, round(share * 1000))

    def to_json(self) -> dict[str, float | int]:
        """The figures, rounded."""
        return {
            "cpu_s": round(self.cpu_s, 1),
            "workload_cpu_s": round(self.cpu_s - self.idle_cpu_s, 1),
            "rss_mib": round(self.rss_mib),
            "peak_rss_mib": round(self.peak_rss_mib),
            "peak_cpu_millicores": self.peak_cpu_millicores,
        }


class Instance:
    """One ``sambus run --stage GROUP`` process."""

    def __init__(self, group: str, instance_id: str, env: dict[str, str], log: Path) -> None:
        """Describe it; :meth:`start` starts it with ``env`` and its own ``SAMBUS_INSTANCE_ID``."""
        self.group = group
        self.instance_id = instance_id
        self.name = f"{group}/{instance_id}"
        self._env = {**env, "SAMBUS_INSTANCE_ID": instance_id}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.usage = Usage()
        self.stopped_by: str | None = None

    def start(self) -> None:
        """Start it; its output goes to its log."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command
                [str(SAMBUS), "run", "--stage", self.group, "--log-format", "json"],
                env=self._env, stdout=log, stderr=log,
            )  # fmt: skip

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.process is not None and self.process.poll() is None

    def sample(self) -> None:
        """Record its CPU and memory now."""
        if self.alive():
            assert self.process is not None  # noqa: S101 - alive() says so
            self.usage.sample(self.process.pid)

    def stop(self, sig: signal.Signals, *, wait_s: float = 60.0) -> None:
        """Send ``sig`` and wait for it to end (SIGKILL if it does not within ``wait_s``)."""
        if not self.alive():
            return
        assert self.process is not None  # noqa: S101 - alive() says so
        self.sample()
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class Stop:
    """``GROUP:SIGNAL@FRACTION``: stop instance 1 of GROUP with SIGNAL once FRACTION of deliveries arrived."""

    group: str
    signal: signal.Signals
    at: float

    @classmethod
    def parse(cls, text: str) -> Stop:
        """Read ``delivery:TERM@0.3``."""
        try:
            group, rest = text.split(":", 1)
            name, at = rest.split("@", 1)
            stop = cls(group, signal.Signals[f"SIG{name.upper().removeprefix('SIG')}"], float(at))
        except (ValueError, KeyError) as exc:
            raise argparse.ArgumentTypeError(f"--stop {text!r}: expected GROUP:TERM|KILL@FRACTION") from exc
        if stop.group not in STAGES or stop.signal not in {signal.SIGTERM, signal.SIGKILL}:
            raise argparse.ArgumentTypeError(f"--stop {text!r}: a group of {STAGES}, TERM or KILL")
        return stop


class Deliveries:
    """Reads the delivery topics ``read_committed`` as records arrive, and counts them."""

    def __init__(self, app: Sambus, topics: list[str]) -> None:
        """Read ``topics`` of ``app``'s cluster once :meth:`run` runs."""
        self.records = 0
        self._changed = asyncio.Condition()
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=app.bootstrap_servers,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            metadata_max_age_ms=1000,
        )

    async def run(self) -> None:
        """Count until cancelled."""
        await self._consumer.start()
        try:
            while True:
                batch = await self._consumer.getmany(timeout_ms=500)
                async with self._changed:
                    self.records += sum(len(records) for records in batch.values())
                    self._changed.notify_all()
        finally:
            await self._consumer.stop()

    async def reaches(self, count: int, timeout: float) -> bool:
        """Whether ``count`` records have been read within ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self.records >= count)
                return True
        return False


async def read_all(app: Sambus, topics: list[str]) -> list[Any]:
    """Every committed record of ``topics``, read from the start up to their end offsets as of now."""
    described = await partitions_of(app.bootstrap_servers, topics)
    partitions = [TopicPartition(t, p) for t in topics for p in described.get(t, [])]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=app.bootstrap_servers, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)  # read_committed: the last stable offsets
        records: list[Any] = []
        idle = 0
        while idle < 5:  # noqa: PLR2004 - five empty polls: only commit markers (or nothing) are left
            open_ = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
            if not open_:
                break
            batch = await consumer.getmany(*open_, timeout_ms=1000)
            idle = 0 if batch else idle + 1
            for tp, got in batch.items():
                records.extend(r for r in got if r.offset < ends[tp])
        return records
    finally:
        await consumer.stop()


def queues_json(env: dict[str, str], *, attempts: int = 10) -> dict[str, Any]:
    """What ``sambus queues --json`` shows now.

    Asked while consumer groups form or rebalance, the command can fail once; it is asked again (every
    two seconds, ``attempts`` times) before the run ends with what it said.

    Raises:
        RuntimeError: it failed every time.
    """
    said = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            shown = subprocess.run(  # noqa: S603 - our own command
                [str(SAMBUS), "queues", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            if shown.returncode == 0:
                report: dict[str, Any] = json.loads(shown.stdout)
                return report
            said = f"exit {shown.returncode}: {shown.stderr[-2000:]}"
            _say(f"`sambus queues --json` failed ({said.splitlines()[0] if said else ''}); asking again")
    raise RuntimeError(f"`sambus queues --json` failed {attempts} times; the last said {said}")


def members_of(snapshot: QueueSnapshot | dict[str, Any], prefix: str) -> dict[str, dict[str, list[str]]]:
    """Per stage group: each member's instance id and the partitions it holds."""
    members = (
        snapshot["members"]
        if isinstance(snapshot, dict)
        else [
            {**vars(m), "partitions": [{"topic": t, "partition": p} for t, p in m.partitions]}
            for m in snapshot.members
        ]
    )
    groups: dict[str, dict[str, list[str]]] = {}
    for member in members:
        group = member["group"].removeprefix(f"{prefix}sambus-")
        instance = member["client_id"].removeprefix(f"{member['group']}-")
        held = [f"{p['topic'].removeprefix(prefix)}[{p['partition']}]" for p in member["partitions"]]
        groups.setdefault(group, {})[instance] = sorted(held)
    return groups


def group_of(consumer_group: str) -> str:
    """The stage group a consumer group belongs to (``retry-2.0`` belongs to ``retry``)."""
    return consumer_group.split("-", 1)[0]


class Run:
    """One scale-out run; :meth:`main` does it all and returns the report."""

    def __init__(self, args: argparse.Namespace, database_url: str, workdir: Path) -> None:
        """Name the run's topics (a fresh prefix), its settings and its ten instances."""
        self.args = args
        self.workdir = workdir
        self.prefix = f"so{secrets.token_hex(3)}."
        self.cluster = f"127.0.0.1:{args.port},127.0.0.1:{args.port + 1},127.0.0.1:{args.port + 2}"
        self.database_url = database_url
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.cluster,
            "SAMBUS_LOCAL_KAFKA_PORT": str(args.port),
            "SAMBUS_TOPIC_PREFIX": self.prefix,
            "SAMBUS_TOPIC_REPLICATION_FACTOR": "3",
            "SAMBUS_TOPIC_MIN_INSYNC_REPLICAS": "2",
            "SAMBUS_DATABASE_URL": database_url,
            "SAMBUS_PSEUDONYM_KEY": secrets.token_hex(32),
            "SAMBUS_DLQ_ENCRYPTION_KEYS": f"scaleout:{secrets.token_hex(32)}",
        }
        self.instances = [
            Instance(group, n, self.env, workdir / f"{group}-{n}.log") for group in STAGES for n in INSTANCES
        ]
        self.failures: list[str] = []
        self.report: dict[str, Any] = {"events": args.events, "prefix": self.prefix, "logs": str(workdir)}

    def sambus(self, *args: str) -> None:
        """Run a ``sambus`` command with this run's settings; its failure ends the run."""
        done = subprocess.run(  # noqa: S603 - our own command
            [str(SAMBUS), *args], env=self.env, capture_output=True, text=True, check=False, timeout=600
        )
        if done.returncode != 0:
            raise RuntimeError(f"sambus {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def check(self, ok: bool, what: str) -> None:
        """Note a failed check (the run goes on, so the report shows every count)."""
        if not ok:
            self.failures.append(what)
            _say(f"FAILED: {what}")

    def app(self) -> Sambus:
        """This run's sambus, wired in this process (consent, topics, the ledger)."""
        settings = Settings(
            kafka_bootstrap_servers=self.cluster,
            topic_prefix=self.prefix,
            topic_replication_factor=3,
            topic_min_insync_replicas=2,
            database_url=self.database_url,
            pseudonym_key=SecretStr(self.env["SAMBUS_PSEUDONYM_KEY"]),
        )
        return bootstrap(settings, bootstrap_servers=self.cluster)

    def consent(self, app: Sambus) -> None:
        """The demo child's consent (dental care left out), and consent to all three for the others."""
        record_demo_consent(app)
        now = dt.datetime.now(dt.UTC)
        for n in range(CHILDREN):
            child = app.pseudonymizer.of(personnummer(n))
            guardian = app.pseudonymizer.of(f"guardian-{n}")
            app.registry.set_custody(child, Custody.SOLE, (guardian,), at=now - dt.timedelta(days=2))
            app.registry.record(
                ConsentGrant(
                    consent_id=f"scale-out-consent-{n}",
                    child=child,
                    purpose=Purpose.SIP,
                    agency_kinds=frozenset(
                        {AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN, AgencyKind.DENTAL}
                    ),
                    given_by="guardian",
                    guardians=(guardian,),
                    valid_from=now - dt.timedelta(days=1),
                ),
                now=now,
            )

    async def sample_usage(self) -> None:
        """Sample every instance's CPU and memory each second until cancelled."""
        while True:
            for instance in self.instances:
                instance.sample()
            await asyncio.sleep(1.0)

    async def produce(self, app: Sambus) -> None:
        """The demo's two events, then the N events in bursts of 500 (acks=all)."""
        producer = AIOKafkaProducer(bootstrap_servers=self.cluster, acks="all", enable_idempotence=True)
        school = app.topics.agency_events("school")
        await producer.start()
        try:
            for event in demo_events():
                await producer.send_and_wait(school, event)
            for start in range(0, self.args.events, 500):
                sends = [
                    await producer.send(school, scale_out_event(i))
                    for i in range(start, min(start + 500, self.args.events))
                ]
                await asyncio.gather(*sends)
                await asyncio.sleep(0.2)
        finally:
            await producer.stop()

    async def wait_for(self, what: str, condition: Callable[[], Awaitable[T]], timeout: float) -> T:
        """Poll ``condition()`` (a coroutine function) every half second until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            result = await condition()
            if result:
                return result
            if time.monotonic() > deadline:
                self.check(False, f"{what} (not within {timeout:.0f} s)")  # noqa: FBT003
                return result
            await asyncio.sleep(0.5)

    async def both_instances_everywhere(self, monitor: QueueMonitor) -> dict[str, Any] | None:
        """Every stage group's consumer groups have both instances, each holding partitions (the monitor)."""
        return self.both_instances(members_of(await monitor.snapshot(), self.prefix))

    async def both_in_sambus_queues(self) -> dict[str, Any] | None:
        """The same, as ``sambus queues --json`` shows it."""
        shown = await asyncio.to_thread(queues_json, self.env)
        return self.both_instances(members_of(shown, self.prefix))

    @staticmethod
    def both_instances(groups: dict[str, dict[str, list[str]]]) -> dict[str, Any] | None:
        """``groups`` if every stage group's consumer groups have both instances, each holding partitions."""
        wanted = {"intake", "delivery", "parked", "processes"} | {g for g in groups if g.startswith("retry-")}
        if not any(g.startswith("retry-") for g in groups) or set(groups) != wanted:
            return None
        if any(sorted(members) != list(INSTANCES) for members in groups.values()):
            return None
        if any(not held for members in groups.values() for held in members.values()):
            return None
        return groups

    async def took_over(self, monitor: QueueMonitor, stop: Stop) -> dict[str, Any] | None:
        """Only instance 0 is left in ``stop.group``'s consumer groups, holding what both held before."""
        before: dict[str, dict[str, list[str]]] = self.report["queues_before"]
        groups = {
            g: m
            for g, m in members_of(await monitor.snapshot(), self.prefix).items()
            if group_of(g) == stop.group
        }
        for group, members in groups.items():
            wanted = sorted(p for held in before.get(group, {}).values() for p in held)
            if list(members) != [INSTANCES[0]] or members[INSTANCES[0]] != wanted:
                return None
        return groups or None

    async def caught_up(self, monitor: QueueMonitor) -> bool:
        """Every group but parked (which re-checks its message) has read everything, records counted."""
        snapshot = await monitor.snapshot()
        ours = [lag for lag in snapshot.lags if lag.group.startswith(f"{self.prefix}sambus-")]
        busy = [lag for lag in ours if not lag.group.endswith("-parked") and lag.lag > 0]
        return bool(ours) and not busy

    async def main(self) -> dict[str, Any]:  # noqa: PLR0915 - the run, step by step
        """Do the run; the report (``failures`` empty when every check held)."""
        started = time.monotonic()
        _say(f"three brokers on {self.cluster}")
        self.sambus("kafka", "up", "--brokers", "3")
        self.report["cluster_up_s"] = round(time.monotonic() - started, 1)
        self.sambus("db", "upgrade")
        self.sambus("topics", "create")
        app = self.app()
        self.consent(app)
        expected = self.args.events + len(DEMO_DELIVERED)
        deliver_topics = [app.topics.deliver(r) for r in CONSENTED]
        monitor = QueueMonitor(bootstrap_servers=self.cluster, topics=app.topics, deadlines=NoDeadlines())
        _say(f"{len(self.instances)} instances: two of each of {', '.join(STAGES)}")
        for instance in self.instances:
            instance.start()
        sampling = asyncio.create_task(self.sample_usage())
        deliveries = Deliveries(app, deliver_topics)
        reading = asyncio.create_task(deliveries.run())
        try:
            groups = await self.wait_for(
                "both instances in every group",
                functools.partial(self.both_instances_everywhere, monitor),
                300,
            )
            shown = await self.wait_for(
                "`sambus queues` shows both instances in every group", self.both_in_sambus_queues, 300
            )  # the same as the monitor just saw, unless a group rebalances meanwhile: then it asks again
            self.report["queues_before"] = shown or groups
            for instance in self.instances:
                instance.sample()
                instance.usage.idle_cpu_s = instance.usage.cpu_s
            flowing = time.monotonic()
            self.report["instances_up_s"] = round(flowing - started, 1)
            _say(f"both instances in every group; {self.args.events} events + the demo's two")
            producing = asyncio.create_task(self.produce(app))
            stops: list[dict[str, Any]] = []
            for stop in sorted(self.args.stop, key=lambda s: s.at):
                arrived = await deliveries.reaches(int(expected * stop.at), self.args.timeout)
                self.check(arrived, f"{stop.at:.0%} of the deliveries before stopping {stop.group}/1")
                [victim] = [i for i in self.instances if i.group == stop.group and i.instance_id == "1"]
                _say(
                    f"{victim.name} gets {stop.signal.name} at {deliveries.records} of {expected} deliveries"
                )
                victim.stopped_by = stop.signal.name
                victim.stop(stop.signal)
                at = time.monotonic()
                took = await self.wait_for(
                    f"instance 0 of {stop.group} takes over",
                    functools.partial(self.took_over, monitor, stop),
                    300,
                )
                _say(f"{stop.group}/0 took over after {time.monotonic() - at:.0f} s: {took}")
                stops.append(
                    {
                        "instance": victim.name,
                        "signal": stop.signal.name,
                        "at_deliveries": deliveries.records,
                        "taken_over_after_s": round(time.monotonic() - at, 1),
                        "members_after": took,
                    }
                )
            self.report["stops"] = stops
            await producing
            arrived = await deliveries.reaches(expected, self.args.timeout)
            self.check(arrived, f"{deliveries.records} of {expected} deliveries arrived")
            await self.wait_for("every group caught up", functools.partial(self.caught_up, monitor), 300)
            self.report["flow_s"] = round(time.monotonic() - flowing, 1)
            shown = queues_json(self.env)
            self.report["queues_after"] = members_of(shown, self.prefix)
            for stop in self.args.stop:
                after = {g: m for g, m in self.report["queues_after"].items() if group_of(g) == stop.group}
                self.check(
                    bool(after) and all(list(m) == [INSTANCES[0]] for m in after.values()),
                    f"`sambus queues` shows only instance 0 in {stop.group} after the stop",
                )
            for instance in self.instances:
                instance.sample()
            self.report["usage"] = {
                i.name: {**i.usage.to_json(), "stopped_by": i.stopped_by} for i in self.instances
            }
            self.report["per_group"] = {
                group: {
                    "workload_cpu_s_per_1000_events": round(
                        sum(i.usage.cpu_s - i.usage.idle_cpu_s for i in mine)
                        * 1000
                        / max(1, self.args.events),
                        2,
                    ),
                    "peak_rss_mib": round(max(i.usage.peak_rss_mib for i in mine)),
                }
                for group in STAGES
                if (mine := [i for i in self.instances if i.group == group])
            }
        finally:
            sampling.cancel()
            reading.cancel()
            for task in (sampling, reading):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for instance in self.instances:
                instance.stop(signal.SIGTERM)
        self.report["died_by_themselves"] = [
            i.name for i in self.instances if i.stopped_by is None and i.process and i.process.returncode
        ]
        self.check(not self.report["died_by_themselves"], "every instance not stopped ran to the end")
        await self.verify(app, expected)
        app.engine.dispose()
        self.report["total_s"] = round(time.monotonic() - started, 1)
        self.report["failures"] = self.failures
        return self.report

    async def verify(self, app: Sambus, expected: int) -> None:
        """Exactly once: every delivery once, the demo's parked message and dead letter, one decision each."""
        delivered = await read_all(app, [app.topics.deliver(r) for r in CONSENTED])
        ids = Counter(json.loads(r.value)["id"] for r in delivered)
        parked = await read_all(app, [app.topics.parked])
        dead = await read_all(app, [app.topics.dlq])
        intents = await read_all(app, [app.topics.intents])
        with app.engine.connect() as conn:
            ledger = conn.execute(sa.select(entries.c.message_id, entries.c.recipient_id)).all()
        pairs = Counter((m, r) for m, r in ledger)
        messages = self.args.events + 1  # the demo's bad event never becomes a message
        decisions = self.args.events + len(CONSENTED)  # one per event; the demo's message, one per agency
        self.report["counts"] = {
            "deliveries_expected": expected,
            "deliveries_read": len(delivered),
            "deliveries_distinct": len(ids),
            "delivery_duplicates": sum(n - 1 for n in ids.values()),
            "intents_read": len(intents),
            "intents_distinct": len({json.loads(r.value)["id"] for r in intents}),
            "intents_expected": messages,
            "parked": len(parked),
            "dead_letters": len(dead),
            "ledger_entries": len(ledger),
            "ledger_distinct": len(pairs),
            "ledger_expected": decisions,
        }
        counts = self.report["counts"]
        _say(f"counts: {json.dumps(counts)}")
        self.check(len(delivered) == len(ids) == expected, "every delivery present exactly once")
        self.check(len(intents) == counts["intents_distinct"] == messages, "every intent exactly once")
        self.check(len(parked) == 1, "the demo's message for dental care waits on the parked topic")
        self.check(len(dead) == 1, "the demo's event with a wrong check digit is one dead letter")
        self.check(
            len(ledger) == len(pairs) == decisions,
            "one ledger decision per (message, recipient)",
        )


def database(args: argparse.Namespace) -> tuple[str, str] | None:
    """A fresh schema on the PostgreSQL server: (its URL, the schema's name), or ``None`` without a server."""
    url = args.database_url or os.environ.get("SAMBUS_TEST_POSTGRES_URL")
    if not url:
        return None
    schema = f"scale_out_{secrets.token_hex(4)}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}", schema


def drop(url: str, schema: str) -> None:
    """Drop the run's schema."""
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=10_000, help="SIP events besides the demo's (10,000)")
    parser.add_argument("--port", type=int, default=29900, help="first broker port; six ports are used")
    parser.add_argument("--database-url", help="PostgreSQL server (default: SAMBUS_TEST_POSTGRES_URL)")
    parser.add_argument(
        "--stop",
        type=Stop.parse,
        action="append",
        help="GROUP:TERM|KILL@FRACTION, repeatable (default: delivery:TERM@0.3 and intake:KILL@0.6)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="longest wait for the deliveries (s)")
    parser.add_argument("--report", type=Path, help="write the JSON report here too")
    parser.add_argument("--keep", action="store_true", help="keep the brokers, the schema and the logs")
    args = parser.parse_args(argv)
    if args.stop is None:
        args.stop = [Stop.parse("delivery:TERM@0.3"), Stop.parse("intake:KILL@0.6")]
    if len({s.group for s in args.stop}) < len(args.stop):
        parser.error("--stop: one stop per group (its instance 1)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run, print the report, and say whether every check held."""
    args = parse(argv)
    made = database(args)
    if made is None:
        _say("no PostgreSQL: give --database-url or run under deploy/postgres/with-postgres.sh")
        return 2
    url, schema = made
    workdir = Path(tempfile.mkdtemp(prefix="sambus-scale-out-"))
    run = Run(args, url, workdir)
    try:
        report = asyncio.run(run.main())
    except RuntimeError as exc:
        _say(str(exc))
        return 2
    finally:
        if not args.keep:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                run.sambus("kafka", "reset", "--brokers", "3")
            drop(args.database_url or os.environ["SAMBUS_TEST_POSTGRES_URL"], schema)
    text = json.dumps(report, indent=2)
    sys.stdout.write(text + "\n")
    if args.report:
        args.report.write_text(text + "\n", encoding="utf-8")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
