"""Acute suicide risk as an urgent flow, on the real broker: any party alerts social services and BUP at once.

A school (student health) sees acute suicide risk in a child living in Västerås: social services of Västerås
(on the duty to report concern) and BUP (on the school nurse's assessment under OSL 25:12) each receive one
urgent Task, due four hours later, and nobody else receives anything. Social services acknowledges; its answer
goes back to the school. BUP does not: halfway through, BUP is reminded; after four hours the school is told
that BUP has not acknowledged, naming BUP's Task. Social services hears nothing more. The clock is moved, not
waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from sambus.contracts.topics import Topics
from sambus.router.service.bootstrap import bootstrap
from sambus.router.settings import Settings
from tests.database import upgraded
from tests.fhir_validator import DeliveredBundles
from tests.integration.conftest import Running
from tests.integration.test_answers_end_to_end import CHILD, SOCIAL, Deliveries, no_dead_letters, task_of

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

SCHOOL = "19800002"
"""Västerås, Södra skolan (student health)."""
BUP = "SE2321000206-1002"


class MovableClock:
    """The wall clock plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def settings(topics: Topics, tmp_path: Path) -> Settings:
    """Timers scanned five times a second, so a moved clock is noticed at once."""
    return Settings(
        topic_prefix=topics.prefix,
        database_url=upgraded(f"sqlite:///{tmp_path / 'registry.db'}"),
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        dlq_encryption_keys=SecretStr(f"test:{secrets.token_hex(32)}"),
        instance_id=secrets.token_hex(4),
        deadline_scan_s=0.2,
    )


@pytest_asyncio.fixture
async def running(
    kafka_bootstrap: str, settings: Settings, delivered_bundles: DeliveredBundles, clock: MovableClock
) -> AsyncIterator[Running]:
    """sambus with every stage running, on the movable clock."""
    app = bootstrap(settings, bootstrap_servers=kafka_bootstrap, clock=clock)
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


def event(kind: str, name: str, event_id: str, data: dict[str, Any], *, at: dt.datetime) -> bytes:
    """An agency event sent now (the urgent deadline counts from the event's time)."""
    return json.dumps(
        {
            "type": f"se.sambus.{kind}.{name}.v1",
            "id": event_id,
            "source": f"{kind}-test",
            "time": at.isoformat(),
            "data": {"child": {"civicNo": CHILD}, **data},
        }
    ).encode()


def communication(message: dict[str, Any]) -> dict[str, Any]:
    [found] = [e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "Communication"]
    return found


def notice_text(message: dict[str, Any]) -> str:
    [outcome] = [
        e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "OperationOutcome"
    ]
    return str(outcome["issue"][0]["diagnostics"])


async def test_suicide_risk_alerts_social_services_and_bup_and_escalates_within_hours(
    running: Running, clock: MovableClock
) -> None:
    deliveries = Deliveries(running)
    sent_at = clock().replace(microsecond=0)

    await running.send(
        running.topics.agency_events("school"),
        event(
            "school",
            "suicide-risk-reported",
            "sodra-risk-1",
            {
                "schoolUnitCode": SCHOOL,
                "residenceMunicipality": "1980",
                "secrecyAssessment": {"provision": "OSL 25:12", "assessedBy": "skolskoterska-12"},
            },
            at=sent_at,
        ),
    )
    assert await deliveries.who(2) == {
        ("vasteras-socialtjanst", "suicide-risk-reported"): 1,
        ("vastmanland-bup", "suicide-risk-reported"): 1,
    }
    alerts = {r: m for r, c, m in await deliveries.all(2)}
    due = (sent_at + dt.timedelta(hours=4)).astimezone(dt.UTC)
    for alert in alerts.values():
        task = task_of(alert)
        assert task["priority"] == "stat"
        assert dt.datetime.fromisoformat(task["restriction"]["period"]["end"]) == due
        assert "address" not in next(
            e["resource"] for e in alert["entry"] if e["resource"]["resourceType"] == "Patient"
        )
    social_task = task_of(alerts["vasteras-socialtjanst"])
    bup_task = task_of(alerts["vastmanland-bup"])

    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "task-answered",
            "vasteras-acts",
            {
                "processId": social_task["groupIdentifier"]["value"],
                "taskId": social_task["id"],
                "status": "in-progress",
                "organisationNumber": SOCIAL,
                "answerTo": {"schoolUnitCode": SCHOOL},
            },
            at=sent_at + dt.timedelta(minutes=20),
        ),
    )
    assert await deliveries.who(3) == {
        ("vasteras-socialtjanst", "suicide-risk-reported"): 1,
        ("vastmanland-bup", "suicide-risk-reported"): 1,
        ("vasteras-skola-sodra", "task-status-changed"): 1,
    }

    clock.offset = dt.timedelta(hours=2, minutes=5)  # past halfway: BUP, which has not answered, is reminded
    assert await deliveries.who(4) == {
        ("vasteras-socialtjanst", "suicide-risk-reported"): 1,
        ("vastmanland-bup", "suicide-risk-reported"): 1,
        ("vasteras-skola-sodra", "task-status-changed"): 1,
        ("vastmanland-bup", "deadline-reminder"): 1,
    }

    clock.offset = dt.timedelta(hours=4, minutes=5)  # past the deadline: the school is told BUP has not acted
    assert await deliveries.who(5) == {
        ("vasteras-socialtjanst", "suicide-risk-reported"): 1,
        ("vastmanland-bup", "suicide-risk-reported"): 1,
        ("vasteras-skola-sodra", "task-status-changed"): 1,
        ("vastmanland-bup", "deadline-reminder"): 1,
        ("vasteras-skola-sodra", "deadline-escalation"): 1,
    }
    [escalation] = [m for _, c, m in await deliveries.all(5) if c == "deadline-escalation"]
    assert notice_text(escalation) == (
        f"urgent-response of vastmanland-bup was due on {due:%Y-%m-%d %H:%M} UTC and has not been done"
    )
    about = {a.get("identifier", {}).get("value") for a in communication(escalation).get("about", [])}
    assert bup_task["id"] in about
    assert social_task["id"] not in about
    await no_dead_letters(running)


async def test_without_an_assessment_or_consent_only_social_services_is_alerted(
    running: Running, clock: MovableClock
) -> None:
    """A care unit's alert without a professional's assessment and no consent: social services is alerted on
    the duty to report, BUP is not (its Task waits for a consent that is not there; the reporter is told)."""
    deliveries = Deliveries(running)
    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "suicide-risk-reported",
            "bu-halsan-risk-1",
            {"hsaId": "SE2321000206-1001", "residenceMunicipality": "1980"},
            at=clock().replace(microsecond=0),
        ),
    )
    assert await deliveries.who(2) == {
        ("vasteras-socialtjanst", "suicide-risk-reported"): 1,
        ("vastmanland-bu-halsan", "delivery-waiting"): 1,  # the reporter is told BUP's Task waits for consent
    }
    await no_dead_letters(running)
