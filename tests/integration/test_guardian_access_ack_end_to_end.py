"""Every care unit told to block the guardians' record access must acknowledge it, or social services hear.

On the real broker, by a clock the test moves, from the agencies' own events: social services decide hidden
residence and name BU-hälsan and Folktandvården; BU-hälsan answers its block Task ``accepted`` (its EHR's
own ``ehr.task-status`` event). Half-way to the configured hours only Folktandvården, which has not
acknowledged, is reminded; at the end social services (and only they) are told that Folktandvården has
not, each notice once.
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


def _decided() -> list[Intent]:
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
                    "notify": [{"hsaId": BU_HALSAN}, {"hsaId": DENTAL}],
                },
            }
        ).encode()
    )


def _accepted(process_id: str, task_id: str) -> list[Intent]:
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
                    "hsaId": BU_HALSAN,
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
    social = topics.deliver("vasteras-socialtjanst")
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
        [reminder] = await read_committed(kafka_bootstrap, [dental], count=1, timeout=20)
        code, text = _notice(reminder.value)
        assert code == "deadline-reminder"
        assert "acknowledge the guardian-access block" in text

        clock.now = DECIDED_AT + dt.timedelta(hours=4, minutes=5)  # past due
        [escalation] = await read_committed(kafka_bootstrap, [social], count=1, timeout=20)
        code, text = _notice(escalation.value)
        assert code == "deadline-escalation"
        assert "vastmanland-folktandvarden has not acknowledged the guardian-access block" in text
        assert CHILD.replace("-", "") not in escalation.value.decode()

        await asyncio.sleep(1)  # several scans: nothing fires twice
        assert len(await read_committed(kafka_bootstrap, [social, dental], count=3, timeout=2)) == 2
        assert await read_committed(kafka_bootstrap, [bu_halsan], count=1, timeout=1) == [], (
            "BU-hälsan acknowledged and is neither reminded nor escalated"
        )
