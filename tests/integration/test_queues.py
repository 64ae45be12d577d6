"""``sambus queues`` and the queue monitor against the real broker, with known lag and dead letters."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError
from typer.testing import CliRunner

from sambus.contracts.agencies import AgencyKind
from sambus.contracts.errors import BrokerUnavailableError
from sambus.contracts.topics import Topics
from sambus.router.cli.main import app
from sambus.router.kafka.admin import read_topic, run_sync
from sambus.router.kafka.dead_letters import KafkaDeadLetters, UnknownDeadLetterError
from sambus.router.ops.queues import GroupMember, NoDeadlines, OverdueDeadline, QueueMonitor
from tests.database import upgraded
from tests.integration.conftest import sip_event
from tests.web.kafka_seed import COMMITTED, DEAD_LETTERS, PARKED, SCHOOL_RECORDS, seed_queues

pytestmark = pytest.mark.kafka

DUE = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


class OneOverdue:
    """A deadline source with one overdue examination."""

    def overdue(self, now: dt.datetime) -> Sequence[OverdueDeadline]:
        return [OverdueDeadline("lvu-32", "examination", "case-7f3a", DUE)] if now > DUE else []


@pytest.mark.asyncio
async def test_snapshot_shows_lag_dead_letters_parked_and_overdue(kafka_bootstrap: str, topics: Topics):
    seeded = await seed_queues(kafka_bootstrap, topics)
    monitor = QueueMonitor(
        bootstrap_servers=kafka_bootstrap,
        topics=topics,
        deadlines=OneOverdue(),
    )

    snapshot = await monitor.snapshot()

    school = next(t for t in snapshot.topics if t.topic == seeded.school)
    assert school.end_offsets == (SCHOOL_RECORDS, 0, 0)
    assert {t.topic for t in snapshot.topics} >= {topics.intents, topics.dlq, topics.parked}
    assert all(t.topic.startswith(topics.prefix) for t in snapshot.topics)
    [lag] = [lag for lag in snapshot.lags if lag.group == seeded.group]
    assert (lag.topic, lag.partition, lag.committed, lag.lag) == (
        seeded.school,
        0,
        COMMITTED,
        SCHOOL_RECORDS - COMMITTED,
    )
    assert snapshot.dead_letters == DEAD_LETTERS
    assert snapshot.parked == PARKED
    assert [o.case for o in snapshot.overdue] == ["case-7f3a"]
    assert snapshot.to_json()["lags"][0]["lag"] == SCHOOL_RECORDS - COMMITTED


def _electing(monkeypatch: pytest.MonkeyPatch, refusals: float) -> Counter[str]:
    """The broker refuses a group's first ``refusals`` FindCoordinator requests: GroupCoordinatorNotAvailable.

    That is what a new cluster answers until it has elected the group's coordinator. Returns how many times
    each group was asked.
    """
    asked: Counter[str] = Counter()
    original = AIOKafkaAdminClient.find_coordinator

    async def electing(self: AIOKafkaAdminClient, group_id: str, coordinator_type: int = 0) -> int:
        asked[group_id] += 1
        if asked[group_id] <= refusals:
            message = f"Unable to get coordinator id for {group_id}"
            raise GroupCoordinatorNotAvailableError(message)
        return await original(self, group_id, coordinator_type)

    monkeypatch.setattr(AIOKafkaAdminClient, "find_coordinator", electing)
    return asked


@pytest.mark.asyncio
async def test_a_snapshot_asks_again_while_a_new_cluster_elects_a_groups_coordinator(
    kafka_bootstrap: str, topics: Topics, monkeypatch: pytest.MonkeyPatch
):
    """GroupCoordinatorNotAvailable on a new cluster is "not yet" (it once ended the scale-out run in CI)."""
    seeded = await seed_queues(kafka_bootstrap, topics)
    asked = _electing(monkeypatch, refusals=3)
    monitor = QueueMonitor(bootstrap_servers=kafka_bootstrap, topics=topics, deadlines=NoDeadlines())

    snapshot = await monitor.snapshot()

    [lag] = [lag for lag in snapshot.lags if lag.group == seeded.group]
    assert (lag.committed, lag.lag) == (COMMITTED, SCHOOL_RECORDS - COMMITTED)
    assert asked[seeded.group] > 3, "the coordinator was asked for again after the refusals"


@pytest.mark.asyncio
async def test_a_snapshot_gives_up_on_a_coordinator_that_never_comes_with_a_clear_error(
    kafka_bootstrap: str, topics: Topics, monkeypatch: pytest.MonkeyPatch
):
    await seed_queues(kafka_bootstrap, topics)
    _electing(monkeypatch, refusals=float("inf"))
    monitor = QueueMonitor(
        bootstrap_servers=kafka_bootstrap, topics=topics, deadlines=NoDeadlines(), coordinator_wait=1.0
    )

    with pytest.raises(BrokerUnavailableError, match=r"cannot read queue state from .*coordinator"):
        await monitor.snapshot()


@pytest.mark.asyncio
async def test_dead_letters_are_listed_without_content_and_replayed_to_their_source(
    kafka_bootstrap: str, topics: Topics
):
    seeded = await seed_queues(kafka_bootstrap, topics)
    letters = KafkaDeadLetters(bootstrap_servers=kafka_bootstrap, topics=topics)

    listed = await letters.list()
    replayed_to = await letters.replay("0-1")

    assert sorted(d.id for d in listed) == ["0-0", "0-1"]
    assert {d.error for d in listed} == {"invalid_event"}
    assert {d.source_offset for d in listed} == {100, 101}
    assert replayed_to == seeded.school
    school = await read_topic(kafka_bootstrap, seeded.school)
    assert len(school) == SCHOOL_RECORDS + 1
    [again] = [r for r in school if r.value == seeded.dead_values[1]]
    headers = dict(again.headers)
    assert headers["origin"] == b"seed", "the original headers go along"
    assert not any(k.startswith("sambus-dlq") for k in headers), "the dead-letter reason does not"
    with pytest.raises(UnknownDeadLetterError):
        await letters.replay("0-99")
    with pytest.raises(UnknownDeadLetterError):
        await letters.replay("nonsense")


@pytest.fixture
def cli(monkeypatch, tmp_path, kafka_bootstrap: str, topics: Topics) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("SAMBUS_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("SAMBUS_TOPIC_PREFIX", topics.prefix)
    monkeypatch.setenv("SAMBUS_DATABASE_URL", upgraded(f"sqlite:///{tmp_path / 'sambus.db'}"))
    return CliRunner()


def test_queues_json_reports_the_lag_and_dead_letters(cli: CliRunner, kafka_bootstrap: str, topics: Topics):
    seeded = run_sync(seed_queues(kafka_bootstrap, topics))

    result = cli.invoke(app, ["queues", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    [lag] = [lag for lag in report["lags"] if lag["group"] == seeded.group]
    assert lag["lag"] == SCHOOL_RECORDS - COMMITTED
    assert report["dead_letters"] == DEAD_LETTERS
    assert report["parked"] == PARKED
    assert report["overdue"] == []


def test_queues_table_names_the_group_and_counts(cli: CliRunner, kafka_bootstrap: str, topics: Topics):
    seeded = run_sync(seed_queues(kafka_bootstrap, topics))

    result = cli.invoke(app, ["queues"])

    assert result.exit_code == 0, result.output
    assert seeded.group in result.output
    assert f"dead letters: {DEAD_LETTERS}" in result.output
    assert f"parked: {PARKED}" in result.output


def test_queues_without_a_broker_says_so(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAMBUS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("SAMBUS_DATABASE_URL", upgraded(f"sqlite:///{tmp_path / 'sambus.db'}"))

    result = CliRunner().invoke(app, ["queues"])

    assert result.exit_code == 1
    assert "cannot read queue state" in result.output


def test_no_deadlines_is_never_overdue():
    assert NoDeadlines().overdue(dt.datetime.now(dt.UTC)) == ()


def test_queues_watch_prints_a_json_line_per_refresh(kafka_bootstrap: str, topics: Topics, tmp_path):
    seeded = run_sync(seed_queues(kafka_bootstrap, topics))
    env = {
        **os.environ,
        "SAMBUS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SAMBUS_TOPIC_PREFIX": topics.prefix,
        "SAMBUS_DATABASE_URL": upgraded(f"sqlite:///{tmp_path / 'sambus.db'}"),
    }
    with subprocess.Popen(
        [str(Path(sys.executable).parent / "sambus"), "queues", "--json", "--watch", "0.5"],
        stdout=subprocess.PIPE, env=env, cwd=tmp_path, text=True,
    ) as watcher:  # fmt: skip
        try:
            assert watcher.stdout is not None
            first, second = json.loads(watcher.stdout.readline()), json.loads(watcher.stdout.readline())
        finally:
            watcher.terminate()
            watcher.wait(timeout=10)

    for report in (first, second):
        [lag] = [lag for lag in report["lags"] if lag["group"] == seeded.group]
        assert lag["lag"] == SCHOOL_RECORDS - COMMITTED
    assert second["taken_at"] > first["taken_at"]


@pytest.mark.asyncio
async def test_a_caught_up_transactional_stage_shows_no_lag(running):
    running.consent("201203150006", AgencyKind.BU_HALSAN)
    await running.send(
        running.topics.agency_events("school"),
        sip_event("lag-1", "201203150006", {"hsaId": "SE2321000206-1001"}),
    )
    await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=1)
    monitor = QueueMonitor(
        bootstrap_servers=running.app.bootstrap_servers,
        topics=running.topics,
        deadlines=NoDeadlines(),
    )

    snapshot = await monitor.snapshot()

    delivery = [lag for lag in snapshot.lags if lag.group.endswith("sambus-delivery")]
    [behind] = [lag for lag in delivery if lag.committed is not None]
    assert behind.end_offset > behind.committed, "the commit marker follows the last record"
    assert behind.lag == 0, "a commit marker is not a record to read"


@pytest.mark.asyncio
async def test_snapshot_names_each_stage_instance_and_the_partitions_it_holds(running):
    monitor = QueueMonitor(
        bootstrap_servers=running.app.bootstrap_servers,
        topics=running.topics,
        deadlines=NoDeadlines(),
    )
    instance = running.app.settings.instance_id
    group = f"{running.topics.prefix}sambus-delivery"
    intents = tuple((running.topics.intents, p) for p in range(running.app.settings.topic_partitions))

    async def delivery_members() -> list[GroupMember]:
        return [m for m in (await monitor.snapshot()).members if m.group == group]

    members = await delivery_members()
    for _ in range(100):  # the group may still be forming: wait until it has assigned every partition
        if [m.partitions for m in members] == [intents]:
            break
        await asyncio.sleep(0.2)
        members = await delivery_members()

    assert [(m.client_id, m.partitions) for m in members] == [(f"{group}-{instance}", intents)]
    assert {m.group for m in (await monitor.snapshot()).members} >= {
        f"{running.topics.prefix}sambus-{stage}" for stage in ("intake", "delivery", "parked", "processes")
    }
