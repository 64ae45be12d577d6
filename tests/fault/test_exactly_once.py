"""Exactly once through crashes: the delivery stage is SIGKILLed again and again while 10,000 intents flow.

A ``read_committed`` consumer of ``deliver.*`` must then see every expected delivery exactly once, in
per-child order, and the ledger must hold exactly one decision per (message, recipient).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import secrets
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import SecretStr

from sambus.adapters import translate_message
from sambus.consent import ConsentGrant
from sambus.consent.ledger import entries
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.fhir import deterministic_id
from sambus.contracts.registry_facts import Custody
from sambus.contracts.topics import Topics
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.settings import Settings
from sambus.router.stages.intake import Intake
from tests.database import upgraded

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.asyncio, pytest.mark.timeout(420)]

INTENTS = 10_000
CHILDREN = 100
KILLS = 6
DELIVERED_TO = ("vasteras-socialtjanst", "vastmanland-bu-halsan")  # consented; dental care is parked
SAMBUS = Path(sys.executable).with_name("sambus")


def personnummer(n: int) -> str:
    """A valid made-up personnummer (born 2012-03-15), the n-th of its birth date."""
    digits = f"120315{n:03d}"
    total = 0
    for i, char in enumerate(digits):
        d = int(char) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return f"20{digits}{(10 - total % 10) % 10}"


def sip_event(child: str) -> bytes:
    return json.dumps(
        {
            "type": "se.sambus.school.sip-initiated.v1",
            "id": f"fault-{child}",
            "source": "skolsystem-fault",
            "time": "2026-11-20T09:00:00+01:00",
            "data": {
                "child": {"civicNo": child},
                "schoolUnitCode": "19800002",
                "initiatedBy": "student_health",
                "reason": "mental_health",
                "invite": [
                    {"organisationNumber": "212000-2080"},
                    {"hsaId": "SE2321000206-1001"},
                    {"hsaId": "SE2321000206-1003"},
                ],
            },
        }
    ).encode()


class Router:
    """``sambus run --stage delivery`` as a child process, killed and restarted at will."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self._env = env
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(SAMBUS), "run", "--stage", "delivery"], env=self._env, stdout=log, stderr=log
            )
        self.starts += 1

    def kill(self) -> None:
        assert self.process is not None
        assert self.process.poll() is None, f"the router died by itself; see {self._log}"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Progress:
    """Counts committed deliveries as they appear (it may see a message twice only if exactly-once fails).

    A record is one offset of one partition: should the reader fetch an offset again (after a broker's
    failover), that is the same record and is counted once (in :attr:`fetched_again`); the same message at
    two offsets is a duplicate delivery.
    """

    def __init__(self, bootstrap_servers: str, topics: list[str]) -> None:
        self.records: list[Any] = []
        self.fetched_again = 0
        self._offsets: set[tuple[str, int, int]] = set()
        self._changed = asyncio.Condition()
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap_servers,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            metadata_max_age_ms=1000,
        )

    async def run(self) -> None:
        await self._consumer.start()
        try:
            while True:
                batch = await self._consumer.getmany(timeout_ms=200)
                async with self._changed:
                    for records in batch.values():
                        for record in records:
                            at = (record.topic, record.partition, record.offset)
                            if at in self._offsets:
                                self.fetched_again += 1
                                continue
                            self._offsets.add(at)
                            self.records.append(record)
                    self._changed.notify_all()
        finally:
            await self._consumer.stop()

    async def caught_up(self, timeout: float) -> bool:
        """Whether, within ``timeout`` seconds, every record committed so far has been seen.

        Under ``read_committed`` the end offsets are the last stable offsets, so an open transaction holds
        this back until it commits or aborts.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while True:
                    partitions = self._consumer.assignment()
                    if partitions:
                        ends = await self._consumer.end_offsets(list(partitions))
                        behind = [tp for tp, end in ends.items() if await self._consumer.position(tp) < end]
                        if not behind:
                            return True
                    await asyncio.sleep(0.5)
        return False

    async def reaches(self, count: int, timeout: float) -> bool:
        """Whether at least ``count`` records have been seen within ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(self.records) >= count)
                return True
        return False

    async def keeps_coming_until(self, count: int, *, stalled_after: float) -> bool:
        """Whether ``count`` records arrive, waiting as long as some arrive every ``stalled_after`` seconds.

        A loaded machine delivers more slowly but still delivers; a stuck router delivers nothing.
        """
        seen = len(self.records)
        while not await self.reaches(count, timeout=stalled_after):
            if len(self.records) == seen:
                return False
            seen = len(self.records)
        return True


@pytest_asyncio.fixture
async def app(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> AsyncIterator[Sambus]:
    settings = Settings(
        topic_prefix=topics.prefix,
        database_url=upgraded(f"sqlite:///{tmp_path / 'sambus.db'}"),
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        dlq_encryption_keys=SecretStr(f"test:{secrets.token_hex(32)}"),
    )
    sambus = bootstrap(settings, bootstrap_servers=kafka_bootstrap)
    await sambus.create_topics()
    return sambus


def _intents(app: Sambus, count: int = INTENTS) -> list[tuple[int, bytes, bytes, list[tuple[str, bytes]]]]:
    """(index, key, value, headers) of every intent: each child's SIP message, re-sent with a new id."""
    intake = Intake(topics=app.topics, pseudonymizer=app.pseudonymizer)
    templates = []
    for n in range(CHILDREN):
        [intent] = translate_message(sip_event(personnummer(n)))
        templates.append(intake.intent_record(intent))
    intents = []
    for i in range(count):
        template = templates[i % CHILDREN]
        bundle = json.loads(template.value)
        bundle["id"] = f"fault-message-{i}"
        value = json.dumps(bundle, separators=(",", ":")).encode()
        assert template.key is not None
        intents.append((i, template.key, value, list(template.headers)))
    return intents


def _consent_all(app: Sambus) -> None:
    now = dt.datetime.now(dt.UTC)
    for n in range(CHILDREN):
        child = app.pseudonymizer.of(personnummer(n))
        app.registry.set_custody(child, Custody.SOLE, ("guardian",), at=now - dt.timedelta(days=2))
        app.registry.record(
            ConsentGrant(
                consent_id=f"consent-{n}",
                child=child,
                purpose=Purpose.SIP,
                agency_kinds=frozenset({AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN}),
                given_by="guardian",
                guardians=("guardian",),
                valid_from=now - dt.timedelta(days=1),
            ),
            now=now,
        )


async def _produce(app: Sambus, intents: list[tuple[int, bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    """Publish the intents in small bursts over some seconds, so the kills fall while they flow.

    Each burst is a transaction, so the input holds every intent exactly once whatever the producer's
    retries do when a broker dies under it: a duplicate delivery is then the router's.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=app.bootstrap_servers, transactional_id=f"fault-input-{secrets.token_hex(4)}"
    )
    await producer.start()
    try:
        for start in range(0, len(intents), 250):
            async with producer.transaction():
                sends = [
                    await producer.send(app.topics.intents, value, key=key, headers=headers)
                    for _, key, value, headers in intents[start : start + 250]
                ]
                await asyncio.gather(*sends)
            await asyncio.sleep(0.5)
    finally:
        await producer.stop()


async def _kill_while_delivering(router: Router, progress: Progress, *, expected: int) -> int:
    """Kill the router at random moments, each time once it delivers again; returns the number of kills."""
    rng = random.Random(os.environ.get("SAMBUS_FAULT_SEED"))  # noqa: S311 - kill times, not secrets
    kills = 0
    router.start()
    while kills < KILLS:
        restarted_at = len(progress.records)
        assert await progress.reaches(restarted_at + 1, timeout=90), (
            f"no progress after start {router.starts}"
        )
        await asyncio.sleep(rng.uniform(0.0, 1.5))
        if len(progress.records) >= expected:
            break
        router.kill()
        kills += 1
        router.start()
    return kills


def _check_ledger(database_url: str) -> None:
    """One decision per (message, recipient), dental care's awaiting consent included."""
    with sa.create_engine(database_url).connect() as conn:
        rows = conn.execute(sa.select(entries.c.message_id, entries.c.recipient_id, entries.c.outcome)).all()
    assert len(rows) == INTENTS * 3
    assert len({(m, r) for m, r, _ in rows}) == INTENTS * 3
    outcomes: dict[str, int] = defaultdict(int)
    for _, recipient, outcome in rows:
        outcomes[f"{recipient}:{outcome}"] += 1
    assert outcomes == {
        "vasteras-socialtjanst:permit": INTENTS,
        "vastmanland-bu-halsan:permit": INTENTS,
        "vastmanland-folktandvarden:await_consent": INTENTS,
    }


async def test_killed_router_neither_loses_nor_duplicates_a_delivery(app: Sambus, tmp_path: Path) -> None:
    _consent_all(app)
    intents = _intents(app)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": app.bootstrap_servers,
        "SAMBUS_TOPIC_PREFIX": app.topics.prefix,
        "SAMBUS_DATABASE_URL": app.settings.database_url,
        "SAMBUS_PSEUDONYM_KEY": app.settings.require_pseudonym_key().decode(),
    }
    router = Router(env, tmp_path / "router.log")
    progress = Progress(app.bootstrap_servers, [app.topics.deliver(r) for r in DELIVERED_TO])
    watching = asyncio.create_task(progress.run())
    producing = asyncio.create_task(_produce(app, intents))
    expected = INTENTS * len(DELIVERED_TO)
    try:
        kills = await _kill_while_delivering(router, progress, expected=expected)
        await producing
        assert await progress.keeps_coming_until(expected, stalled_after=60), (
            f"{len(progress.records)} of {expected} arrived, then nothing for 60 s"
        )
        await asyncio.sleep(2)  # a duplicate, if any, would show up now
    finally:
        router.stop()
        producing.cancel()
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching

    assert kills >= 5, f"the router finished before it was killed 5 times ({kills})"
    index_of = {
        deterministic_id(f"fault-message-{i}", recipient): (recipient, i)
        for i in range(INTENTS)
        for recipient in DELIVERED_TO
    }
    delivered = [json.loads(record.value)["id"] for record in progress.records]
    assert len(delivered) == expected
    assert len(set(delivered)) == expected, "a delivery was seen twice"
    assert set(delivered) == set(index_of), "a delivery is missing"
    # Per-child order: on each recipient's topic, a child's messages come in the order they were sent.
    order: dict[tuple[str, bytes | None], list[int]] = defaultdict(list)
    for record in progress.records:
        recipient, index = index_of[json.loads(record.value)["id"]]
        order[recipient, record.key].append(index)
    assert len(order) == CHILDREN * len(DELIVERED_TO)
    assert all(indexes == sorted(indexes) for indexes in order.values())
    _check_ledger(app.settings.database_url)
