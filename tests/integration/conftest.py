"""Fixtures for tests on the real broker: a running sambus and helpers to produce and read records."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from pydantic import SecretStr

from sambus.consent import ConsentGrant
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.registry_facts import Custody
from sambus.contracts.topics import Topics
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.settings import Settings
from tests.database import upgraded
from tests.fhir_validator import DeliveredBundles

pytestmark = pytest.mark.kafka

READ_S = 30.0
"""How long a read waits at least for its records (unless they are all there sooner)."""

STALLED_S = 20.0
"""After :data:`READ_S` a read waits on while something was written to the watched topics this recently."""

MAX_READ_S = 90.0
"""No read waits longer, however busy the pipeline (pytest-timeout ends a test at 120 s)."""


@dataclass
class Running:
    """A sambus running against the real broker on this test's topics."""

    app: Sambus
    producer: AIOKafkaProducer
    delivered: DeliveredBundles

    @property
    def topics(self) -> Topics:
        """This test's topic names."""
        return self.app.topics

    async def send(
        self,
        topic: str,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
        *,
        key: bytes | None = None,
    ) -> None:
        """Publish one record and wait for the broker's acknowledgement."""
        await self.producer.send_and_wait(topic, value, key=key, headers=headers)

    def consent(self, personnummer: str, *kinds: AgencyKind, purpose: Purpose = Purpose.SIP) -> None:
        """Record sole custody and the guardian's consent for ``purpose`` with agencies of ``kinds``."""
        now = dt.datetime.now(dt.UTC)
        child = self.app.pseudonymizer.of(personnummer)
        self.app.registry.set_custody(child, Custody.SOLE, ("guardian",), at=now - dt.timedelta(days=2))
        self.app.registry.record(
            ConsentGrant(
                consent_id=f"c-{secrets.token_hex(4)}",
                child=child,
                purpose=purpose,
                agency_kinds=frozenset(kinds),
                given_by="guardian",
                valid_from=now - dt.timedelta(days=1),
                guardians=("guardian",),
            ),
            now=now,
        )

    async def read(
        self, *topics: str, count: int, timeout: float = READ_S, quiet: float | None = None
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """Read ``count`` committed records from ``topics`` (fewer if none come): :func:`read_committed`.

        Progress is watched on every topic of this sambus but the parked stage's periodic re-check ticks: a
        read goes on while the pipeline still writes.
        Every FHIR Bundle read is kept for the FHIR validator (see :func:`delivered_bundles`).
        """
        records = await read_committed(
            self.app.bootstrap_servers,
            list(topics),
            count=count,
            timeout=timeout,
            quiet=quiet,
            watch=[
                (spec.name, spec.partitions)
                for spec in self.app.topic_specs()
                if spec.name != self.topics.parked_recheck  # the parked stage's clock ticks there, always
            ],
        )
        self.delivered.keep(record.value for record in records)
        return records


class _Written:
    """How many records have been written (committed or not) to some partitions: progress of a pipeline."""

    def __init__(self, bootstrap_servers: str, partitions: list[TopicPartition]) -> None:
        self._partitions = partitions
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, isolation_level="read_uncommitted"
        )

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()

    async def total(self, also: set[TopicPartition]) -> int | None:
        """The sum of the partitions' and ``also``'s high watermarks (None when they cannot be read)."""
        try:
            ends = await self._consumer.end_offsets(sorted({*self._partitions, *also}))
        except KafkaError:  # a topic not created yet, or deleted by the shared broker's janitor
            return None
        return int(sum(ends.values()))


async def read_committed(
    bootstrap_servers: str,
    topics: list[str],
    *,
    count: int,
    timeout: float = READ_S,
    quiet: float | None = None,
    watch: Sequence[tuple[str, int]] = (),
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read up to ``count`` records with ``read_committed`` isolation, from the start of ``topics``.

    The read ends as soon as ``count`` records are read. Otherwise it waits at least ``timeout`` seconds, and
    after that for as long as the pipeline progresses: it ends once nothing was written to ``topics`` or to
    the ``watch`` topics ((name, partitions): a sambus's intents, retries, processes...) for ``quiet``
    seconds (by default ``min(timeout, STALLED_S)``), and after :data:`MAX_READ_S` at the latest.

    So a loaded machine's slow pipeline is waited for as long as it moves, and a read that must find
    nothing (``count`` one more than expected) waits its ``timeout`` and until the pipeline is quiet: never
    less than a fixed window of ``timeout`` seconds would.
    """
    quiet = min(timeout, STALLED_S) if quiet is None else quiet
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    watched = [TopicPartition(name, p) for name, partitions in watch for p in range(partitions)]
    loop = asyncio.get_running_loop()
    records: list[ConsumerRecord[bytes, bytes]] = []
    await consumer.start()
    try:
        async with _Written(bootstrap_servers, watched) as written:
            start = last_progress = checked = loop.time()
            seen = await written.total(consumer.assignment())
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=300)
                now = loop.time()
                for partition_records in batch.values():
                    records.extend(partition_records)
                    last_progress = now
                if now - checked >= 0.5:
                    checked = now
                    total = await written.total(consumer.assignment())
                    if total is not None and total != seen:
                        seen, last_progress = total, now
                if now - start >= MAX_READ_S or (now - start >= timeout and now - last_progress >= quiet):
                    break
    finally:
        await consumer.stop()
    return records[:count]  # a fetch can bring more than asked for


@pytest.fixture
def settings(topics: Topics, tmp_path: Path) -> Settings:
    """Settings of this test's sambus: its topics, a fresh SQLite database, a fresh pseudonym key.

    A test module overrides this fixture to run sambus with another directory or rule file.
    """
    return Settings(
        topic_prefix=topics.prefix,
        database_url=upgraded(f"sqlite:///{tmp_path / 'registry.db'}"),
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        dlq_encryption_keys=SecretStr(f"test:{secrets.token_hex(32)}"),
        instance_id=secrets.token_hex(4),
    )


@pytest.fixture(scope="session")
def delivered_bundles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeliveredBundles]:
    """The Bundles the end-to-end tests read from Kafka; at the end one HAPI FHIR validator run checks them.

    The run validates against base R4, HL7 Sweden's base profiles and sambus's conformance resources; an error
    fails the session (reported at the teardown of its last test), as does a missing validator under CI.
    """
    kept = DeliveredBundles(tmp_path_factory.mktemp("delivered-bundles"))
    yield kept
    kept.check()


@pytest_asyncio.fixture
async def running(
    kafka_bootstrap: str, settings: Settings, delivered_bundles: DeliveredBundles
) -> AsyncIterator[Running]:
    """sambus with every stage running, on this test's topics and a fresh SQLite registry."""
    app = bootstrap(settings, bootstrap_servers=kafka_bootstrap)
    await app.create_topics()
    stop = asyncio.Event()
    service = asyncio.create_task(app.run(stop))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        yield Running(app=app, producer=producer, delivered=delivered_bundles)
    finally:
        await producer.stop()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(service, timeout=30)


def sip_event(event_id: str, civic_no: str, *invitees: dict[str, str]) -> bytes:
    """A school's "SIP initiated" event as the bytes a school system would send."""
    return json.dumps(
        {
            "type": "se.sambus.school.sip-initiated.v1",
            "id": event_id,
            "source": "skolsystem-test",
            "time": "2026-11-20T09:00:00+01:00",
            "data": {
                "child": {"civicNo": civic_no},
                "schoolUnitCode": "19800002",
                "initiatedBy": "student_health",
                "reason": "mental_health",
                "invite": list(invitees),
            },
        }
    ).encode("utf-8")
