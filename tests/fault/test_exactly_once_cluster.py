"""Exactly once with three instances under faults, on a three-broker cluster and PostgreSQL.

Three ``sambus run`` processes share the topics (replication 3, ``min.insync.replicas=2``) and one
PostgreSQL database while intents flow. Random instances are SIGKILLed and restarted, some are SIGSTOPped
for longer than the consumer session timeout (their partitions go to the others while they still hold open
transactions), and one broker is SIGKILLed and restarted. Afterwards a ``read_committed`` consumer must see
every expected delivery exactly once, the ledger must hold exactly one entry per (message, recipient), and
every deadline timer that came due must have fired exactly once.

Sizes come from the environment (``SAMBUS_FAULT_INTENTS``, ``SAMBUS_FAULT_KILLS``, ``SAMBUS_FAULT_STOPS``,
``SAMBUS_FAULT_BROKER``, ``SAMBUS_FAULT_TIMERS``), so ``bench/bench_faults.py`` can run it longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from pydantic import SecretStr

from sambus.consent.ledger import entries
from sambus.contracts.errors import BrokerUnavailableError
from sambus.contracts.fhir import deterministic_id
from sambus.router.dev.local_kafka import LocalKafka
from sambus.router.kafka.admin import read_topic
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.settings import Settings
from sambus.router.stages.deadlines import Deadline
from tests.conftest import _no_broker
from tests.database import upgraded
from tests.fault.test_exactly_once import (
    DELIVERED_TO,
    SAMBUS,
    Progress,
    _consent_all,
    _intents,
    _produce,
)
from tests.ports import port_block

# On main a SIGSTOP set off a storm of eager rebalances, each closing and re-opening every per-partition
# producer (3,513 of 20,000 intents delivered after 14 min, no duplicate); producers now outlive rebalances.
# Under load 8 the handlers' database reads held each instance's event loop past the session timeout
# (3,920 of 40,000 deliveries in 10 min); the stage now gives the loop a turn after every record. With one
# transactional id per instance planted it fails (2,000 intents: 408 duplicates, 98 missing).
# The waits are bounded by conditions (a delivery keeps coming), not by the machine's speed.
# Three faults that only this run found: a broker's UnknownError to a JoinGroup ended a stage (and its
# instance); a SIGKILLed instance left its stage groups running under init; an instance restarted while a
# broker was down died creating topics. With those fixed it passed three runs in a row at load 8-25
# (553-632 s, 0 duplicates, 0 missing, ledger and timers exact), but failed in the lead's fresh-clone CI run
# on a quiet machine: 416 duplicates, the same records in two committed transactions of one partition. An
# eager rebalance gave a partition back to the instance that had just committed it, and the consumer read it
# from an OffsetFetch answered before that transaction's offset commit was applied. Partitions are now read
# from OffsetFetch with require_stable (router/kafka/stable_offsets.py).
INTENTS = int(os.environ.get("SAMBUS_FAULT_INTENTS", "20000"))
pytestmark = [
    pytest.mark.kafka,
    pytest.mark.slow,
    pytest.mark.asyncio,
    pytest.mark.timeout(max(2400, INTENTS // 10)),  # 100,000 intents (bench/bench_faults.py): 10,000 s
]

KILLS = int(os.environ.get("SAMBUS_FAULT_KILLS", "20"))
STOPS = int(os.environ.get("SAMBUS_FAULT_STOPS", "3"))
TIMERS = int(os.environ.get("SAMBUS_FAULT_TIMERS", "40"))
BROKER_CRASHES = int(os.environ.get("SAMBUS_FAULT_BROKER", "1"))
INSTANCES = 3
SESSION_TIMEOUT_S = 10.0  # aiokafka's default session_timeout_ms
CLUSTER_PORT = port_block("SAMBUS_TEST_FAULT_CLUSTER_PORT", 29500, 6)
BROKER_HEAP_MB = int(os.environ.get("SAMBUS_FAULT_BROKER_HEAP_MB", "512"))
STALLED_S = 300.0  # no delivery for this long after the faults: stuck (a slow machine still delivers)
TIMER_RECIPIENT = "vastmanland-folktandvarden"  # gets no deliveries here (it is parked): only notices


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A three-broker cluster of this test's own."""
    local = LocalKafka(
        port=CLUSTER_PORT,
        brokers=3,
        state_dir=tmp_path_factory.mktemp("cluster") / "kafka",
        heap_mb=BROKER_HEAP_MB,
    )
    try:
        local.ensure_running(timeout=180)
    except BrokerUnavailableError as exc:
        _no_broker(f"no local three-broker cluster: {exc}")
    try:
        yield local
    finally:
        # The brokers' own logs outlive the cluster: a stalled run is read from them afterwards. They are
        # copied before the cluster stops, as stopping a cluster this object formatted deletes its folder.
        kept = tmp_path_factory.mktemp("cluster-logs")
        for node in local.nodes:
            logs = node.state_dir / "logs"
            if logs.is_dir():
                shutil.copytree(logs, kept / node.state_dir.name)
        print(f"\nthe brokers' logs are kept in {kept}", flush=True)  # noqa: T201
        local.reset()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the tests' PostgreSQL server, as a URL every instance can use."""
    url = os.environ.get("SAMBUS_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("no PostgreSQL: set SAMBUS_TEST_POSTGRES_URL", pytrace=False)
        pytest.skip("no PostgreSQL: set SAMBUS_TEST_POSTGRES_URL (deploy/postgres/with-postgres.sh does)")
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield upgraded(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest_asyncio.fixture
async def app(cluster: LocalKafka, postgres_url: str) -> AsyncIterator[Sambus]:
    settings = Settings(
        topic_prefix=f"f{secrets.token_hex(4)}.",
        database_url=postgres_url,
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        deadline_scan_s=1.0,
        topic_replication_factor=3,
        topic_min_insync_replicas=2,
    )
    sambus = bootstrap(settings, bootstrap_servers=cluster.bootstrap_servers)
    await sambus.create_topics()
    yield sambus
    sambus.engine.dispose()


class Instance:
    """One ``sambus run`` process, killed, stopped and restarted at will."""

    def __init__(self, number: int, env: dict[str, str], log: Path) -> None:
        self._env = {**env, "SAMBUS_INSTANCE_ID": f"i{number}"}
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(SAMBUS), "run"], env=self._env, stdout=log, stderr=log, start_new_session=True
            )

    def signal(self, sig: signal.Signals) -> None:
        """Signal the whole instance, ``sambus run`` and its stage groups: a crash, or a paused machine."""
        assert self.process is not None
        assert self.process.poll() is None, f"an instance died by itself; see {self._log}"
        os.killpg(self.process.pid, sig)
        if sig is signal.SIGKILL:
            self.process.wait()

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGCONT)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):  # nothing of it outlives the test
            os.killpg(self.process.pid, signal.SIGKILL)


def _open_timers(app: Sambus, *, within_s: float) -> None:
    """Deadlines whose reminders come due at random moments of the run."""
    rng = random.Random(7)  # noqa: S311 - test data
    now = dt.datetime.now(dt.UTC)
    with app.engine.begin() as conn:
        for n in range(TIMERS):
            remind_at = now + dt.timedelta(seconds=rng.uniform(5, within_s))
            app.deadlines.open(
                conn,
                process_id=f"timer-process-{n}",
                deadline=Deadline("lvu32-exam", due_at=remind_at + dt.timedelta(days=7), remind_at=remind_at),
                child=f"timer-child-{n}",
                responsible=TIMER_RECIPIENT,
                escalate_to=TIMER_RECIPIENT,
            )


async def _chaos(
    instances: list[Instance], cluster: LocalKafka, progress: Progress, *, expected: int
) -> Counter[str]:
    """Kill, stop and restart instances, and one broker, while deliveries flow; returns what was done."""
    rng = random.Random(os.environ.get("SAMBUS_FAULT_SEED"))  # noqa: S311 - fault times, not secrets
    done: Counter[str] = Counter()
    plan = ["kill"] * KILLS + ["stop"] * STOPS + ["broker"] * BROKER_CRASHES
    rng.shuffle(plan)
    for action in plan:
        before = len(progress.records)
        waited = await progress.reaches(min(before + 1, expected), timeout=STALLED_S)
        assert waited, (
            f"no delivery in the minutes before {action} {sum(done.values()) + 1}; "
            f"brokers not running: {_stopped_brokers(cluster) or 'none'}"
        )
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        victim = rng.choice(instances)
        if action == "kill":
            victim.signal(signal.SIGKILL)
            victim.start()
        elif action == "stop":
            victim.signal(signal.SIGSTOP)
            await asyncio.sleep(SESSION_TIMEOUT_S + 5)  # its partitions go to the others meanwhile
            victim.signal(signal.SIGCONT)
        else:
            node = rng.choice(cluster.nodes)
            logged = {other.state_dir: _log_size(other.log_file) for other in cluster.nodes}
            cluster.kill_node(node)
            await asyncio.sleep(10)  # the others go on without it (replication 3, min.insync.replicas 2)
            cluster.start_node(node)
            await asyncio.to_thread(cluster.wait_ready, timeout=120)
            if restarted := await _restart_faulted(cluster, logged):
                done["broker restarted for Kafka's metadata fault"] += restarted
        done[action] += 1
    return done


METADATA_FAULT = "Encountered metadata publishing fault"
"""What a Kafka 3.9 broker logs when applying a metadata change threw halfway, as the classic group
coordinator's ``setAndPropagateAssignment`` can (``NoSuchElementException: key not found: <member>``) when
a static member was replaced while the ``__consumer_offsets`` leadership moved: the broker then serves a
partial metadata image (``NotLeaderForPartition`` for partitions it leads, groups that never sync) until
it is restarted. Seen in a verification run of this test (node 3, as node 2 crashed), and stop 22's stall
looked the same; nothing a client does mends it, so the test does what an operator does, and prints it."""


def _log_size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


async def _restart_faulted(cluster: LocalKafka, logged: dict[Path, int]) -> int:
    """Restart each node that logged :data:`METADATA_FAULT` since ``logged`` (log sizes); how many were."""
    restarted = 0
    for node in cluster.nodes:
        with node.log_file.open("rb") as log:
            log.seek(logged.get(node.state_dir, 0))
            faulted = METADATA_FAULT.encode() in log.read()
        if faulted:
            print(f"broker {node.state_dir.name} logged {METADATA_FAULT!r}: restarted", flush=True)  # noqa: T201
            cluster.kill_node(node)
            cluster.start_node(node)
            await asyncio.to_thread(cluster.wait_ready, timeout=120)
            restarted += 1
    return restarted


def _stopped_brokers(cluster: LocalKafka) -> list[str]:
    """The cluster's nodes that are not running (one out of memory exits: -XX:+ExitOnOutOfMemoryError)."""
    return [node.state_dir.name for node in cluster.nodes if cluster.node_pid(node) is None]


async def _report(progress: Progress, *, expected: int, started: float) -> None:
    """Print how far the deliveries are every 15 s (shown with -s, or with a failure's captured output)."""
    while True:
        await asyncio.sleep(15)
        seen = len(progress.records)
        print(f"{time.monotonic() - started:5.0f} s: {seen} of {expected} deliveries", flush=True)  # noqa: T201


def _ledger(database_url: str) -> list[tuple[str, str, str]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(entries.c.message_id, entries.c.recipient_id, entries.c.outcome)
            ).all()
    finally:
        engine.dispose()
    return [(m, r, o) for m, r, o in rows]


async def test_three_instances_under_kills_pauses_and_a_broker_crash_deliver_exactly_once(
    app: Sambus, cluster: LocalKafka, tmp_path: Path
) -> None:
    _consent_all(app)
    intents = _intents(app, INTENTS)  # 20,000 by default
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
        "SAMBUS_TOPIC_PREFIX": app.topics.prefix,
        "SAMBUS_DATABASE_URL": app.settings.database_url,
        "SAMBUS_PSEUDONYM_KEY": app.settings.require_pseudonym_key().decode(),
        "SAMBUS_DEADLINE_SCAN_S": "1",
        "SAMBUS_TOPIC_REPLICATION_FACTOR": "3",
        "SAMBUS_TOPIC_MIN_INSYNC_REPLICAS": "2",
    }
    instances = [Instance(n, env, tmp_path / f"instance-{n}.log") for n in range(INSTANCES)]
    delivered_topics = [app.topics.deliver(r) for r in DELIVERED_TO]
    progress = Progress(app.bootstrap_servers, delivered_topics)
    notices = Progress(app.bootstrap_servers, [app.topics.deliver(TIMER_RECIPIENT)])
    expected = len(intents) * len(DELIVERED_TO)
    started = time.monotonic()
    for instance in instances:
        instance.start()
    _open_timers(app, within_s=60)
    watching = [asyncio.create_task(p.run()) for p in (progress, notices)]
    watching.append(asyncio.create_task(_report(progress, expected=expected, started=started)))
    producing = asyncio.create_task(_produce(app, intents))
    try:
        done = await _chaos(instances, cluster, progress, expected=expected)
        await producing
        arrived = await progress.keeps_coming_until(expected, stalled_after=STALLED_S)
        assert arrived, (
            f"{len(progress.records)} of {expected} deliveries, none in the last {STALLED_S:.0f} s; "
            f"brokers not running: {_stopped_brokers(cluster) or 'none'}; logs in {tmp_path}"
        )
        assert await notices.reaches(TIMERS, timeout=STALLED_S), (
            f"{len(notices.records)} of {TIMERS} timers fired"
        )
        for instance in instances:
            instance.stop()
        # A duplicate, if any, is committed by now: read each topic to its last committed record.
        for watcher in (progress, notices):
            assert await watcher.caught_up(timeout=120), "a transaction stayed open after the end"
    finally:
        for instance in instances:
            instance.stop()
        producing.cancel()
        for task in watching:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    elapsed = time.monotonic() - started

    ids = Counter(json.loads(record.value)["id"] for record in progress.records)
    wanted = {deterministic_id(f"fault-message-{i}", r) for i in range(len(intents)) for r in DELIVERED_TO}
    fired = Counter((record.key, json.loads(record.value)["id"]) for record in notices.records)
    ledger = _ledger(app.settings.database_url)
    pairs = Counter((m, r) for m, r, _ in ledger)
    given = Counter(
        json.loads(r.value)["id"] for r in await read_topic(app.bootstrap_servers, app.topics.intents)
    )
    print(  # noqa: T201 - the counts are what this test reports
        f"\n{INSTANCES} instances, {len(intents)} intents in {elapsed:.0f} s; faults: {dict(done)}\n"
        f"input: {sum(given.values())} intents on the topic, {len(given)} distinct\n"
        f"deliveries: {len(progress.records)} read, {len(ids)} distinct, {expected} expected, "
        f"{sum(n - 1 for n in ids.values())} duplicates, {len(wanted - set(ids))} missing\n"
        f"ledger: {len(ledger)} entries, {len(pairs)} distinct (message, recipient), "
        f"{len(intents) * 3} expected\n"
        f"timers: {TIMERS} due, {len(notices.records)} notices, {len(fired)} distinct\n"
        f"offsets the reader fetched again (not deliveries): {progress.fetched_again + notices.fetched_again}"
    )
    twice = [i for i, n in ids.items() if n > 1]
    for record in (r for r in progress.records if json.loads(r.value)["id"] in twice[:5]):
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        print(f"duplicate {json.loads(record.value)['id'][:8]}: {where}")  # noqa: T201 - which transactions
    planned = Counter({action: done[action] for action in ("kill", "stop", "broker")})
    assert +planned == +Counter({"kill": KILLS, "stop": STOPS, "broker": BROKER_CRASHES})
    assert sorted(given.values()) == [1] * len(intents), "the test's own input holds an intent twice"
    assert set(ids) == wanted, "a delivery is missing or unexpected"
    assert all(n == 1 for n in ids.values()), "a delivery was seen twice"
    assert len(ledger) == len(pairs) == len(intents) * 3, "one ledger entry per (message, recipient)"
    assert len(notices.records) == len(fired) == TIMERS, "every due timer fired exactly once"
