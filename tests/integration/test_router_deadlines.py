"""Deadlines on the real broker: a reminder before, an escalation after, by an injectable clock; the state
and the fired timers survive a restart, and no timer fires twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from fhir.resources.R4B.bundle import Bundle
from pydantic import SecretStr

from sambus.contracts.fhir import EVENT_SYSTEM, EventCode
from sambus.contracts.identifiers import HSA_ID_SYSTEM, ORGANISATION_NUMBER_SYSTEM, PERSONNUMMER_SYSTEM
from sambus.contracts.topics import Header, Topics
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.settings import Settings
from sambus.router.stages.deadlines import UNNAMED_CHILD
from tests.database import upgraded
from tests.integration.conftest import read_committed

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

ORDERED_AT = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
PROCESS = "lvu32-process-1"
CHILD = "201203150006"


class Clock:
    """A clock the test moves."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def lvu32_ordered() -> dict[str, object]:
    """Social services order an LVU § 32 examination from BU-hälsan."""
    return {
        "resourceType": "Bundle",
        "id": "lvu32-message-1",
        "type": "message",
        "timestamp": ORDERED_AT.isoformat(),
        "entry": [
            {
                "fullUrl": "urn:uuid:h",
                "resource": {
                    "resourceType": "MessageHeader",
                    "id": "h",
                    "eventCoding": {"system": EVENT_SYSTEM, "code": "lvu32-exam-ordered"},
                    "source": {"endpoint": "urn:sambus:source:test"},
                    "focus": [{"reference": "urn:uuid:t"}],
                },
            },
            {
                "fullUrl": "urn:uuid:t",
                "resource": {
                    "resourceType": "Task",
                    "id": "t",
                    "status": "requested",
                    "intent": "order",
                    "groupIdentifier": {"value": PROCESS},
                    "for": {"reference": "urn:uuid:p"},
                    "requester": {
                        "identifier": {"system": ORGANISATION_NUMBER_SYSTEM, "value": "212000-2080"}
                    },
                    "owner": {"identifier": {"system": HSA_ID_SYSTEM, "value": "SE2321000206-1001"}},
                },
            },
            {
                "fullUrl": "urn:uuid:p",
                "resource": {
                    "resourceType": "Patient",
                    "id": "p",
                    "identifier": [{"system": PERSONNUMMER_SYSTEM, "value": CHILD}],
                },
            },
        ],
    }


@pytest.fixture
def settings(topics: Topics, tmp_path: Path) -> Settings:
    return Settings(
        topic_prefix=topics.prefix,
        database_url=upgraded(f"sqlite:///{tmp_path / 'sambus.db'}"),
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        dlq_encryption_keys=SecretStr(f"test:{secrets.token_hex(32)}"),
        instance_id=secrets.token_hex(4),
        deadline_scan_s=0.2,
    )


@asynccontextmanager
async def running(
    settings: Settings, kafka_bootstrap: str, clock: Callable[[], dt.datetime]
) -> AsyncIterator[Sambus]:
    """The processes stage (state and timers) of a sambus, until the block ends."""
    app = bootstrap(settings, bootstrap_servers=kafka_bootstrap, clock=clock)
    await app.create_topics()
    stop = asyncio.Event()
    service = asyncio.create_task(app.run(stop, only="processes"))
    try:
        yield app
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(service, timeout=30)


async def _send_order(app: Sambus) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=app.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            app.topics.intents,
            json.dumps(lvu32_ordered()).encode(),
            key=app.pseudonymizer.of(CHILD).encode(),
            headers=[
                (Header.EVENT_CODE, b"lvu32-exam-ordered"),
                (Header.MESSAGE_ID, b"lvu32-message-1"),
                (Header.CORRELATION_ID, PROCESS.encode()),
            ],
        )
    finally:
        await producer.stop()


async def _until(condition: Callable[[], bool], timeout: float = 30) -> None:
    for _ in range(int(timeout * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    pytest.fail("the process state did not change in time")


async def _tracked(app: Sambus) -> None:
    await _until(lambda: app.processes.get(PROCESS) is not None)


def _read_notice(value: bytes) -> tuple[str, str]:
    bundle = Bundle.model_validate(json.loads(value))
    header, communication, outcome = (entry.resource for entry in bundle.entry[:3])
    assert communication.about[0].identifier.value == PROCESS
    return header.eventCoding.code, outcome.issue[0].diagnostics


def _patient(value: bytes) -> dict[str, object] | None:
    """The child's Patient a notice names (``Communication.subject``), if any."""
    entries = json.loads(value)["entry"]
    communication = entries[1]["resource"]
    patients = [e for e in entries if e["resource"]["resourceType"] == "Patient"]
    if "subject" not in communication:
        assert patients == [], "a Patient only as the Communication's subject"
        return None
    [patient] = patients
    assert communication["subject"] == {"reference": patient["fullUrl"]}
    return {k: v for k, v in patient["resource"].items() if k != "id"}


CHILD_PATIENT = {"resourceType": "Patient", "identifier": [{"system": PERSONNUMMER_SYSTEM, "value": CHILD}]}


def _tasks_about(value: bytes) -> list[str]:
    """The Tasks a notice is about (``Communication.about`` by Task identifier)."""
    communication = json.loads(value)["entry"][1]["resource"]
    return [a["identifier"]["value"] for a in communication["about"] if a.get("type") == "Task"]


async def test_reminder_before_and_escalation_after_a_deadline_across_a_restart(
    settings: Settings, kafka_bootstrap: str, topics: Topics
) -> None:
    clock = Clock(ORDERED_AT)
    bu_halsan = topics.deliver("vastmanland-bu-halsan")
    social = topics.deliver("vasteras-socialtjanst")
    async with running(settings, kafka_bootstrap, clock) as app:
        await _send_order(app)
        await _tracked(app)
        process = app.processes.get(PROCESS)
        assert process is not None
        assert (process.kind, process.state, process.initiator) == (
            "lvu32-exam",
            "ordered",
            "vasteras-socialtjanst",
        )
        assert process.parties == {"vastmanland-bu-halsan": "invited"}
        assert await read_committed(kafka_bootstrap, [bu_halsan], count=1, timeout=1) == []

        clock.now = ORDERED_AT + dt.timedelta(days=22)  # within the last week of four
        [reminder] = await read_committed(kafka_bootstrap, [bu_halsan], count=1, timeout=20)

    assert _read_notice(reminder.value) == ("deadline-reminder", "lvu32-exam is due on 2026-11-30")
    assert _tasks_about(reminder.value) == ["t"], "the reminder names the Task BU-hälsan holds"
    assert _patient(reminder.value) == CHILD_PATIENT, "and the child"
    assert dict(reminder.headers)[Header.CORRELATION_ID] == PROCESS.encode()
    # A crash right after the reminder's transaction committed, before the database noted it:
    with sa.create_engine(settings.database_url).begin() as conn:
        conn.execute(sa.text("UPDATE deadlines SET reminded_at = NULL"))

    clock.now = ORDERED_AT + dt.timedelta(days=29)  # past due; the service restarts
    async with running(settings, kafka_bootstrap, clock) as app:
        process = app.processes.get(PROCESS)
        assert process is not None
        assert process.state == "ordered", "the process state survived the restart"
        [escalation] = await read_committed(kafka_bootstrap, [social], count=1, timeout=20)
        await asyncio.sleep(1)  # several scans

    assert _read_notice(escalation.value) == (
        "deadline-escalation",
        "lvu32-exam was due on 2026-11-30 and has not been done",
    )
    assert _tasks_about(escalation.value) == ["t"], "social services sent that Task"
    assert _patient(escalation.value) == CHILD_PATIENT
    assert CHILD.encode() not in b"".join(v for _, v in escalation.headers), "the child is in no header"
    assert app.pseudonymizer.of(CHILD).encode() == escalation.key, "the key is the pseudonym"
    reminders = await read_committed(kafka_bootstrap, [bu_halsan], count=2, timeout=3)
    assert len(reminders) == 1, "the reminder fired once, though the database had forgotten it"
    escalations = await read_committed(kafka_bootstrap, [social], count=2, timeout=2)
    assert len(escalations) == 1


async def test_a_completed_examination_closes_its_deadline(
    settings: Settings, kafka_bootstrap: str, topics: Topics
) -> None:
    clock = Clock(ORDERED_AT)
    async with running(settings, kafka_bootstrap, clock) as app:
        await _send_order(app)
        await _tracked(app)
        completed = lvu32_ordered()
        completed["id"] = "lvu32-message-2"
        entries = completed["entry"]
        assert isinstance(entries, list)
        entries[0]["resource"]["eventCoding"]["code"] = "lvu32-exam-completed"
        entries[1]["resource"]["status"] = "completed"
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        await producer.send_and_wait(
            app.topics.intents,
            json.dumps(completed).encode(),
            key=app.pseudonymizer.of(CHILD).encode(),
            headers=[
                (Header.EVENT_CODE, str(EventCode.LVU32_EXAM_COMPLETED).encode()),
                (Header.CORRELATION_ID, PROCESS.encode()),
            ],
        )
        await producer.stop()
        await _until(lambda: getattr(app.processes.get(PROCESS), "state", None) == "completed")
        clock.now = ORDERED_AT + dt.timedelta(days=40)
        await asyncio.sleep(1)

    assert app.processes.get(PROCESS).parties == {"vastmanland-bu-halsan": "completed"}
    topics_told = [topics.deliver("vastmanland-bu-halsan"), topics.deliver("vasteras-socialtjanst")]
    assert await read_committed(kafka_bootstrap, topics_told, count=1, timeout=2) == []


async def test_a_deadline_opened_before_it_kept_the_child_reminds_without_the_patient_and_says_so(
    settings: Settings, kafka_bootstrap: str, topics: Topics
) -> None:
    clock = Clock(ORDERED_AT)
    bu_halsan = topics.deliver("vastmanland-bu-halsan")
    async with running(settings, kafka_bootstrap, clock) as app:
        await _send_order(app)
        await _until(lambda: app.deadlines.state(f"{PROCESS}:lvu32-exam") is not None)
        # As a deadline opened before migration 0011 (or without SAMBUS_DLQ_ENCRYPTION_KEYS) is:
        with sa.create_engine(settings.database_url).begin() as conn:
            conn.execute(sa.text("UPDATE deadlines SET child_identity = NULL, child_identity_key_id = NULL"))
        clock.now = ORDERED_AT + dt.timedelta(days=22)
        [reminder] = await read_committed(kafka_bootstrap, [bu_halsan], count=1, timeout=20)

    event, text = _read_notice(reminder.value)
    assert event == "deadline-reminder"
    assert text == f"lvu32-exam is due on 2026-11-30; {UNNAMED_CHILD}"
    assert "the child is not named here" in text
    assert _patient(reminder.value) is None
    assert _tasks_about(reminder.value) == ["t"], "the Task still identifies the child to BU-hälsan"
    assert CHILD[2:] not in reminder.value.decode()
