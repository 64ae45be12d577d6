"""Every care unit told to block the guardians' record access must acknowledge it, or social services hear.

On the real broker, by a clock the test moves, from the agencies' own events: social services decide hidden
residence and name BU-hälsan and Folktandvården; BU-hälsan answers its block Task ``accepted`` (its EHR's
own ``ehr.task-status`` event). Half-way to the configured hours only Folktandvården and the care provider
(Region Västmanland, vårdgivare of both), which have not acknowledged, are reminded; at the end social
services (and only they) are told that these have not, each notice once.

The care provider: guardians' e-access to the record is set per vårdgivare, so the block also goes to the
care provider of each unit named, as a Task of its own that it must acknowledge in the same hours.
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
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from sambus.adapters import translate_message
from sambus.consent.compliance import Compliance, LedgerQuery
from sambus.contracts.intent import Intent
from sambus.contracts.topics import Topics
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.settings import Settings
from sambus.router.stages.intake import Intake
from tests.database import upgraded
from tests.integration.conftest import read_committed

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

DECIDED_AT = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
CHILD = "20120315-0006"
BU_HALSAN = "SE2321000206-1001"
DENTAL = "SE2321000206-1003"
CARE_PROVIDER = "SE2321000206-E00000000001"
"""Region Västmanland as vårdgivare (care provider) of BU-hälsan and Folktandvården."""


class Clock:
    """A clock the test moves."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def settings(topics: Topics, tmp_path: Path) -> Settings:
    return Settings(
        topic_prefix=topics.prefix,
        database_url=upgraded(f"sqlite:///{tmp_path / 'sambus.db'}"),
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        dlq_encryption_keys=SecretStr(f"test:{secrets.token_hex(32)}"),
        instance_id=secrets.token_hex(4),
        deadline_scan_s=0.2,
    )  # SAMBUS_GUARDIAN_ACCESS_ACK_HOURS: the default, four hours


@asynccontextmanager
async def running(
    settings: Settings, kafka_bootstrap: str, clock: Callable[[], dt.datetime]
) -> AsyncIterator[Sambus]:
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


async def _send(app: Sambus, intents: list[Intent]) -> None:
    intake = Intake(topics=app.topics, pseudonymizer=app.pseudonymizer)
    producer = AIOKafkaProducer(bootstrap_servers=app.bootstrap_servers)
    await producer.start()
    try:
        for intent in intents:
            out = intake.intent_record(intent)
            await producer.send_and_wait(out.topic, out.value, key=out.key, headers=list(out.headers))
    finally:
        await producer.stop()


def _decided(*notify: str) -> list[Intent]:
    return translate_message(
        json.dumps(
            {
                "type": "se.sambus.social.hidden-residence-decided.v1",
                "id": "hidden-1",
                "source": "socialtjanst-vasteras",
                "time": DECIDED_AT.isoformat(),
                "data": {
                    "child": {"civicNo": CHILD},
                    "organisationNumber": "212000-2080",
                    "decisionId": "beslut-2026-117",
                    "validFrom": DECIDED_AT.isoformat(),
                    "notify": [{"hsaId": unit} for unit in notify or (BU_HALSAN, DENTAL)],
                },
            }
        ).encode()
    )


def _accepted(process_id: str, task_id: str, unit: str = BU_HALSAN) -> list[Intent]:
    return translate_message(
        json.dumps(
            {
                "type": "se.sambus.ehr.task-status.v1",
                "id": "ack-1",
                "source": "cosmic-region-vastmanland",
                "time": (DECIDED_AT + dt.timedelta(minutes=20)).isoformat(),
                "data": {
                    "processId": process_id,
                    "child": {"civicNo": CHILD},
                    "taskId": task_id,
                    "status": "accepted",
                    "hsaId": unit,
                    "answerTo": {"organisationNumber": "212000-2080"},
                },
            }
        ).encode()
    )


async def _until(condition: Callable[[], bool], timeout: float = 30) -> None:
    for _ in range(int(timeout * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    pytest.fail("the process state did not change in time")


def _notice(value: bytes) -> tuple[str, str]:
    bundle = json.loads(value)
    code = bundle["entry"][0]["resource"]["eventCoding"]["code"]
    return code, bundle["entry"][1]["resource"]["payload"][0]["contentString"]


async def test_a_unit_that_does_not_acknowledge_the_block_is_reminded_then_escalated(
    settings: Settings, kafka_bootstrap: str, topics: Topics
) -> None:
    clock = Clock(DECIDED_AT)
    decided = _decided()
    [intent] = decided
    [task_id] = [
        e["resource"]["id"]
        for e in intent.bundle["entry"]
        if e["resource"]["resourceType"] == "Task"
        and e["resource"]["owner"]["identifier"]["value"] == BU_HALSAN
    ]
    bu_halsan, dental = topics.deliver("vastmanland-bu-halsan"), topics.deliver("vastmanland-folktandvarden")
    social, region = topics.deliver("vasteras-socialtjanst"), topics.deliver("region-vastmanland")
    async with running(settings, kafka_bootstrap, clock) as app:
        await _send(app, decided)
        await _until(lambda: app.processes.get(intent.correlation_id) is not None)
        await _send(app, _accepted(intent.correlation_id, task_id))
        await _until(
            lambda: (
                (p := app.processes.get(intent.correlation_id)) is not None
                and p.parties.get("vastmanland-bu-halsan") == "accepted"
            )
        )

        clock.now = DECIDED_AT + dt.timedelta(hours=2, minutes=5)  # half-way
        reminders = await read_committed(kafka_bootstrap, [dental, region], count=2, timeout=20)
        assert sorted(r.topic for r in reminders) == sorted([dental, region])
        for reminder in reminders:
            code, text = _notice(reminder.value)
            assert code == "deadline-reminder"
            assert "acknowledge the guardian-access block" in text

        clock.now = DECIDED_AT + dt.timedelta(hours=4, minutes=5)  # past due
        escalations = await read_committed(kafka_bootstrap, [social], count=2, timeout=20)
        told = sorted(_notice(e.value) for e in escalations)
        assert [code for code, _ in told] == ["deadline-escalation"] * 2
        texts = " | ".join(text for _, text in told)
        assert "vastmanland-folktandvarden has not acknowledged the guardian-access block" in texts
        assert "region-vastmanland has not acknowledged the guardian-access block" in texts
        for escalation in escalations:  # the child is named to social services by its identifier alone
            [patient] = [
                e["resource"]
                for e in json.loads(escalation.value)["entry"]
                if e["resource"]["resourceType"] == "Patient"
            ]
            assert sorted(patient) == ["id", "identifier", "resourceType"], "no address, no name"
            assert patient["identifier"][0]["value"] == CHILD.replace("-", "")
            assert CHILD.replace("-", "").encode() not in escalation.key + b"".join(
                v for _, v in escalation.headers
            )

        await asyncio.sleep(1)  # several scans: nothing fires twice
        assert len(await read_committed(kafka_bootstrap, [social, dental, region], count=5, timeout=2)) == 4
        assert await read_committed(kafka_bootstrap, [bu_halsan], count=1, timeout=1) == [], (
            "BU-hälsan acknowledged and is neither reminded nor escalated"
        )


@asynccontextmanager
async def whole(
    settings: Settings, kafka_bootstrap: str, clock: Callable[[], dt.datetime]
) -> AsyncIterator[Sambus]:
    """Every stage (delivery and processes among them), on the test's clock."""
    app = bootstrap(settings, bootstrap_servers=kafka_bootstrap, clock=clock)
    await app.create_topics()
    stop = asyncio.Event()
    service = asyncio.create_task(app.run(stop))
    try:
        yield app
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(service, timeout=30)


def _code(value: bytes) -> str:
    return str(json.loads(value)["entry"][0]["resource"]["eventCoding"]["code"])


def _task(value: bytes) -> dict[str, object]:
    bundle = json.loads(value)
    [task] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task"]
    return task


async def test_the_block_reaches_the_care_provider_which_must_acknowledge_it_too(
    settings: Settings, kafka_bootstrap: str, topics: Topics
) -> None:
    clock = Clock(DECIDED_AT)
    [intent] = decided = _decided(BU_HALSAN)
    bu_halsan, region = topics.deliver("vastmanland-bu-halsan"), topics.deliver("region-vastmanland")
    social = topics.deliver("vasteras-socialtjanst")
    async with whole(settings, kafka_bootstrap, clock) as app:
        await _send(app, decided)
        [unit_record] = await read_committed(kafka_bootstrap, [bu_halsan], count=1, timeout=30)
        [provider_record] = await read_committed(kafka_bootstrap, [region], count=1, timeout=30)
        unit_task, provider_task = _task(unit_record.value), _task(provider_record.value)
        assert provider_task["code"] == unit_task["code"]
        assert provider_task["owner"] == {
            "type": "Organization",
            "identifier": {"system": "urn:oid:1.2.752.29.4.19", "value": CARE_PROVIDER},
        }
        assert provider_task["id"] != unit_task["id"]
        assert provider_task["focus"] == unit_task["focus"], "the same hidden-residence Flag"
        entries = Compliance(app.ledger.engine).select(LedgerQuery(recipient_id="region-vastmanland"))
        assert [(e.outcome, e.rule_id, e.rule_version) for e in entries] == [("permit", "guardian-access", 2)]

        await _send(app, _accepted(intent.correlation_id, str(provider_task["id"]), unit=CARE_PROVIDER))
        await _until(
            lambda: (
                (p := app.processes.get(intent.correlation_id)) is not None
                and p.parties.get("region-vastmanland") == "accepted"
            )
        )

        clock.now = DECIDED_AT + dt.timedelta(hours=4, minutes=5)  # past due
        told = await read_committed(kafka_bootstrap, [social], count=2, timeout=20)
        assert sorted(_code(r.value) for r in told) == ["deadline-escalation", "task-status-changed"], (
            "social services get the care provider's acknowledgement and one escalation"
        )
        [escalation] = [r for r in told if _code(r.value) == "deadline-escalation"]
        _, text = _notice(escalation.value)
        assert "vastmanland-bu-halsan has not acknowledged the guardian-access block" in text
        await asyncio.sleep(1)  # several scans
        to_provider = await read_committed(kafka_bootstrap, [region], count=3, timeout=3)
        assert [_code(r.value) for r in to_provider] == ["hidden-residence-decided"], (
            "the care provider acknowledged: it gets its block and no reminder"
        )
