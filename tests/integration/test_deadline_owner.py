"""Deadline timers with several instances on one database: each due timer fires once, even when the owner
of the timers pauses in the middle of firing and another instance takes over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from sambus.contracts.errors import BrokerUnavailableError
from sambus.contracts.topics import Topics
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.settings import Settings
from sambus.router.stages import deadlines
from sambus.router.stages.deadlines import Deadline, DeadlineTimers
from tests.database import upgraded
from tests.integration.conftest import read_committed

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

TIMERS = 25
RECIPIENT = "vasteras-socialtjanst"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database shared by the instances: an SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield upgraded(f"sqlite:///{tmp_path / 'shared.db'}")
        return
    url = os.environ.get("SAMBUS_TEST_POSTGRES_URL")
    if not url:
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


@pytest.fixture
def made() -> Iterator[list[Sambus]]:
    """The instances a test makes; their database connections are closed afterwards."""
    apps: list[Sambus] = []
    yield apps
    for app in apps:
        app.engine.dispose()


def _instances(
    topics: Topics, database_url: str, kafka_bootstrap: str, count: int, made: list[Sambus]
) -> list[Sambus]:
    key = SecretStr(secrets.token_hex(32))
    made += [
        bootstrap(
            Settings(
                topic_prefix=topics.prefix,
                database_url=database_url,
                pseudonym_key=key,
                instance_id=f"i{n}",
                deadline_scan_s=0.2,
            ),
            bootstrap_servers=kafka_bootstrap,
        )
        for n in range(count)
    ]
    return made


def _open_due_timers(app: Sambus) -> None:
    now = dt.datetime.now(dt.UTC)
    with app.engine.begin() as conn:
        for n in range(TIMERS):
            app.deadlines.open(
                conn,
                process_id=f"process-{n}",
                deadline=Deadline("lvu32-exam", due_at=now + dt.timedelta(days=3), remind_at=now),
                child=f"child-{n}",
                responsible=RECIPIENT,
                escalate_to=RECIPIENT,
            )


async def _notices(app: Sambus) -> list[Any]:
    return await read_committed(
        app.bootstrap_servers, [app.topics.deliver(RECIPIENT)], count=TIMERS + 1, timeout=5
    )


async def test_three_instances_scanning_at_once_fire_each_due_timer_once(
    topics: Topics, database_url: str, kafka_bootstrap: str, made: list[Sambus]
) -> None:
    apps = _instances(topics, database_url, kafka_bootstrap, 3, made)
    await apps[0].create_topics()
    _open_due_timers(apps[0])
    timers = [app.deadline_timers() for app in apps]

    try:
        await asyncio.gather(*(t.start() for t in timers))
        fired = await asyncio.gather(*(t.tick() for t in timers))
        fired += await asyncio.gather(*(t.tick() for t in timers))
    finally:
        await asyncio.gather(*(t.stop() for t in timers))

    notices = await _notices(apps[0])
    counts = [len(f) for f in fired]
    print(f"timers due: {TIMERS}, fired by each instance: {counts}, notices: {len(notices)}")  # noqa: T201
    assert len(notices) == TIMERS
    assert sorted(len(f) for f in fired) == [0, 0, 0, 0, 0, TIMERS]


async def test_an_owner_paused_while_firing_is_replaced_and_fenced_so_no_timer_fires_twice(
    topics: Topics, database_url: str, kafka_bootstrap: str, made: list[Sambus]
) -> None:
    first, second = _instances(topics, database_url, kafka_bootstrap, 2, made)
    await first.create_topics()
    _open_due_timers(first)
    lease = 1.0
    paused, resume = (
        DeadlineTimers(
            deadlines=app.deadlines,
            directory=app.directory,
            topics=app.topics,
            bootstrap_servers=kafka_bootstrap,
            transactional_id=f"{topics.prefix}sambus-timers",
            clock=app.clock,
            owner=app.settings.instance_id,
            lease_s=lease,
        )
        for app in (first, second)
    )
    await paused.start()
    assert paused.is_owner
    halfway, wake = asyncio.Event(), asyncio.Event()
    producer: Any = paused._producer  # noqa: SLF001 - the test stops the owner inside its transaction
    send = producer.send

    async def send_then_pause(*args: Any, **kwargs: Any) -> Any:
        sent = await send(*args, **kwargs)
        halfway.set()
        await wake.wait()  # like SIGSTOP: the transaction stays open, the lease runs out
        return sent

    producer.send = send_then_pause
    stalled = asyncio.create_task(paused.tick())
    await halfway.wait()
    await asyncio.sleep(lease + 0.5)

    taken = await resume.tick()  # claims the lapsed lease, fences the paused owner, fires every timer
    wake.set()
    late = await stalled  # the paused owner wakes up mid-transaction: its commit is refused
    await resume.stop()
    await paused.stop()

    notices = await _notices(first)
    print(f"timers due: {TIMERS}, fired by the new owner: {len(taken)}, by the paused: {len(late)}")  # noqa: T201
    assert len(taken) == TIMERS
    assert late == []
    assert not paused.is_owner
    assert len(notices) == TIMERS, "each due timer's notice committed exactly once"


async def test_a_claim_that_cannot_read_the_fired_timers_leaves_no_producer_open(
    topics: Topics,
    database_url: str,
    kafka_bootstrap: str,
    made: list[Sambus],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A broker going away between the producer's start and the read of the fired timers (seen in the fault
    test) left the started producer unclosed, one per scan, for as long as the outage lasted."""
    [app] = _instances(topics, database_url, kafka_bootstrap, 1, made)
    await app.create_topics()
    started: list[AIOKafkaProducer] = []

    class Recorded(AIOKafkaProducer):
        async def start(self) -> None:
            started.append(self)
            await super().start()

    async def unreachable(*_: object, **__: object) -> list[Any]:
        raise BrokerUnavailableError("read sambus.timers.fired: the broker went away")

    monkeypatch.setattr(deadlines, "AIOKafkaProducer", Recorded)
    monkeypatch.setattr(deadlines, "read_topic", unreachable)
    timers = app.deadline_timers()

    with pytest.raises(BrokerUnavailableError):
        await timers.start()

    assert len(started) == 1
    assert not timers.is_owner
    assert started[0]._closed, "the producer of the failed claim is stopped"  # noqa: SLF001
