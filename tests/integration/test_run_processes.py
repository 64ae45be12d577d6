"""``sambus run`` as a process per group of stages: an event goes through all of them, and a stop ends all."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from sambus.consent import ConsentGrant, ConsentRegistry, Pseudonymizer
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.registry_facts import Custody
from sambus.contracts.topics import Header, Topics
from sambus.router.service.bootstrap import STAGE_GROUPS

from .conftest import read_committed, sip_event

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio, pytest.mark.timeout(300)]

SAMBUS = Path(sys.executable).with_name("sambus")
CHILD = "201203150006"


def _children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() != str(pid) or fields.get("State", "").startswith("Z"):
            continue
        with contextlib.suppress(OSError):
            if b"spawn_main" in (status.parent / "cmdline").read_bytes():  # not multiprocessing's tracker
                found.add(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


async def test_run_starts_a_process_per_stage_group_and_stops_them_all(
    kafka_bootstrap, topics: Topics, tmp_path
):
    key = secrets.token_hex(32)
    database = f"sqlite:///{tmp_path / 'sambus.db'}"
    env = {
        **os.environ,
        "SAMBUS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SAMBUS_TOPIC_PREFIX": topics.prefix,
        "SAMBUS_PSEUDONYM_KEY": key,
        "SAMBUS_DATABASE_URL": database,
        "SAMBUS_INSTANCE_ID": secrets.token_hex(4),
    }
    subprocess.run([SAMBUS, "db", "upgrade"], env=env, cwd=tmp_path, check=True, timeout=120)  # noqa: ASYNC221 - before anything runs
    engine = sa.create_engine(database)
    now = dt.datetime.now(dt.UTC)
    child = Pseudonymizer(key.encode("utf-8")).of(CHILD)
    registry = ConsentRegistry(engine)
    registry.set_custody(child, Custody.SOLE, ("guardian",), at=now - dt.timedelta(days=2))
    registry.record(
        ConsentGrant(
            consent_id="c-1",
            child=child,
            purpose=Purpose.SIP,
            agency_kinds=frozenset({AgencyKind.SOCIAL_SERVICES}),
            given_by="guardian",
            valid_from=now - dt.timedelta(days=1),
            guardians=("guardian",),
        ),
        now=now,
    )
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        service = subprocess.Popen([SAMBUS, "run"], env=env, cwd=tmp_path, stdout=out, stderr=out)  # noqa: ASYNC220
    try:
        deadline = time.monotonic() + 60
        while len(_children(service.pid)) < len(STAGE_GROUPS) and time.monotonic() < deadline:
            assert service.poll() is None, log.read_text()
            await asyncio.sleep(0.2)
        groups = _children(service.pid)
        assert len(groups) == len(STAGE_GROUPS), log.read_text()

        from aiokafka import AIOKafkaProducer  # noqa: PLC0415

        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(
                topics.agency_events("school"),
                sip_event("run-1", "20120315-0006", {"organisationNumber": "212000-2080"}),
            )
        finally:
            await producer.stop()
        delivered = await read_committed(
            kafka_bootstrap, [topics.deliver("vasteras-socialtjanst")], count=1, timeout=90
        )
        assert len(delivered) == 1, log.read_text()[-3000:]
        assert dict(delivered[0].headers)[Header.DECISION] == b"permit"  # intake, then delivery
        deadline = time.monotonic() + 60
        tracked = 0
        while not tracked and time.monotonic() < deadline:  # the processes stage, in the third group
            with engine.connect() as conn:
                tracked = conn.scalar(sa.text("SELECT count(*) FROM processes")) or 0
            await asyncio.sleep(0.2)
        assert tracked == 1
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=90)
        engine.dispose()

    assert service.returncode == 0, log.read_text()[-3000:]
    assert not [pid for pid in groups if _alive(pid)]


async def test_stage_groups_stop_when_their_sambus_run_is_killed(kafka_bootstrap, topics: Topics, tmp_path):
    """A SIGKILLed (or OOM-killed) ``sambus run`` left its stage groups running without a supervisor."""
    database = f"sqlite:///{tmp_path / 'sambus.db'}"
    env = {
        **os.environ,
        "SAMBUS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SAMBUS_TOPIC_PREFIX": topics.prefix,
        "SAMBUS_PSEUDONYM_KEY": secrets.token_hex(32),
        "SAMBUS_DATABASE_URL": database,
        "SAMBUS_INSTANCE_ID": secrets.token_hex(4),
    }
    subprocess.run([SAMBUS, "db", "upgrade"], env=env, cwd=tmp_path, check=True, timeout=120)  # noqa: ASYNC221 - before anything runs
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        service = subprocess.Popen([SAMBUS, "run"], env=env, cwd=tmp_path, stdout=out, stderr=out)  # noqa: ASYNC220
    groups: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(_children(service.pid)) < len(STAGE_GROUPS) and time.monotonic() < deadline:
            assert service.poll() is None, log.read_text()
            await asyncio.sleep(0.2)
        groups = _children(service.pid)
        assert len(groups) == len(STAGE_GROUPS), log.read_text()
        service.kill()
        service.wait(timeout=30)
        deadline = time.monotonic() + 120  # each finishes its batch in hand and leaves its consumer groups
        while any(_alive(pid) for pid in groups) and time.monotonic() < deadline:  # noqa: ASYNC110 - polling /proc
            await asyncio.sleep(0.2)
        assert not [pid for pid in groups if _alive(pid)], "stage groups outlived their sambus run"
    finally:
        service.kill()
        for pid in groups:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
