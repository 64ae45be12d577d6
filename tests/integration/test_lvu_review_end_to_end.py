"""The three-monthly LVU 14 § review reminder on the real broker, from social services' own events.

An LVU placement starts; the placing social services (and nobody else) is reminded a week before every
third month that the board must consider whether its decisions under LVU 14 § second paragraph are still
needed, period after period, across a restart, each reminder once; the placement's end stops them.
The processes stage runs by a clock the test moves; the intents are what the adapters make of the events.
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
from pydantic import SecretStr

from sambus.adapters import translate_message
from sambus.contracts.topics import Topics
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.settings import Settings
from sambus.router.stages.intake import Intake
from sambus.router.stages.processes import processes
from tests.database import upgraded
from tests.integration.conftest import read_committed

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

PLACED_AT = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
CHILD = "20120315-0006"
SOCIAL_TOPIC = "vasteras-socialtjanst"
RECIPIENTS = ("vastmanland-bu-halsan", "vastmanland-folktandvarden")


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


def _event(kind: str, event_id: str, time: dt.datetime, data: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "type": f"se.sambus.social.{kind}.v1",
            "id": event_id,
            "source": "socialtjanst-vasteras",
            "time": time.isoformat(),
            "data": {
                "child": {"civicNo": CHILD},
                "placingMunicipality": "1980",
                "legalBasis": "lvu",
                "notify": [{"hsaId": "SE2321000206-1001"}, {"hsaId": "SE2321000206-1003"}],
                **data,
            },
        }
    ).encode("utf-8")


def _exam_requested(event_id: str, time: dt.datetime) -> bytes:
    """The placing social services' 2017:209 request for the child (closes the wait for it)."""
    return json.dumps(
        {
            "type": "se.sambus.social.health-exam-requested.v1",
            "id": event_id,
            "source": "socialtjanst-vasteras",
            "time": time.isoformat(),
            "data": {
                "child": {"civicNo": CHILD},
                "organisationNumber": "212000-2080",
                "residenceMunicipality": "1980",
            },
        }
    ).encode("utf-8")


async def _send(app: Sambus, event: bytes) -> None:
    """What the intake stage makes of a social services event, on the intents topic."""
    intake = Intake(topics=app.topics, pseudonymizer=app.pseudonymizer)
    producer = AIOKafkaProducer(bootstrap_servers=app.bootstrap_servers)
    await producer.start()
    try:
        for intent in translate_message(event):
            out = intake.intent_record(intent)
            await producer.send_and_wait(out.topic, out.value, key=out.key, headers=list(out.headers))
    finally:
        await producer.stop()


async def _until(condition: Callable[[], bool], timeout: float = 30) -> None:
    for _ in range(int(timeout * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    pytest.fail("the process state did not change in time")


def _text(value: bytes) -> str:
    bundle = json.loads(value)
    assert bundle["entry"][0]["resource"]["eventCoding"]["code"] == "deadline-reminder"
    return bundle["entry"][1]["resource"]["payload"][0]["contentString"]


async def test_the_placing_board_is_reminded_every_three_months_until_the_placement_ends(
    settings: Settings, kafka_bootstrap: str, topics: Topics
) -> None:
    clock = Clock(PLACED_AT)
    social = topics.deliver(SOCIAL_TOPIC)
    placement = _event(
        "placement-started",
        "placement-1",
        PLACED_AT,
        {
            "form": "hvb",
            "start": "2026-11-20",
            "residence": {
                "line": ["Storgatan 1"],
                "postalCode": "722 11",
                "city": "Västerås",
                "municipality": "1980",
            },
        },
    )
    async with running(settings, kafka_bootstrap, clock) as app:
        await _send(app, placement)
        await _send(app, _exam_requested("exam-1", PLACED_AT + dt.timedelta(days=2)))
        await _until(lambda: any(p.kind == "health-exam-2017-209" for p in _processes(app)))
        clock.now = dt.datetime(2027, 2, 14, 9, 0, tzinfo=dt.UTC)  # a week before three months
        [first] = await read_committed(kafka_bootstrap, [social], count=1, timeout=20)

    assert "LVU 14 §" in _text(first.value)
    assert "2027-02-20" in _text(first.value)
    assert CHILD.replace("-", "") not in first.key.decode(), "the key is the child's pseudonym"

    clock.now = dt.datetime(2027, 5, 14, 9, 0, tzinfo=dt.UTC)  # the next period, after a restart
    async with running(settings, kafka_bootstrap, clock) as app:
        reminders = await read_committed(kafka_bootstrap, [social], count=2, timeout=20)
        assert reminders[0].value == first.value
        assert "2027-05-20" in _text(reminders[1].value)
        await asyncio.sleep(1)  # several scans: nothing fires twice
        assert len(await read_committed(kafka_bootstrap, [social], count=3, timeout=2)) == 2

        ended = _event("placement-ended", "placement-end-1", clock.now, {"end": "2027-05-15"})
        await _send(app, ended)
        await _until(lambda: any(p.kind == "placement-ended" for p in _processes(app)))
        clock.now = dt.datetime(2027, 8, 14, 9, 0, tzinfo=dt.UTC)
        await asyncio.sleep(1.5)  # several scans after the end
        assert len(await read_committed(kafka_bootstrap, [social], count=3, timeout=2)) == 2, (
            "a reminder came after the placement ended"
        )
    for recipient in RECIPIENTS:
        assert await read_committed(kafka_bootstrap, [topics.deliver(recipient)], count=1, timeout=1) == [], (
            f"{recipient} is not the placing board and gets no review reminder"
        )


def _processes(app: Sambus) -> list[sa.Row[tuple[str]]]:
    with app.processes.engine.connect() as conn:
        return list(conn.execute(sa.select(processes.c.kind)).all())


async def test_the_placing_board_is_reminded_once_when_no_2017_209_request_follows_a_placement(
    settings: Settings, kafka_bootstrap: str, topics: Topics
) -> None:
    """No deadline in the law or the agreements: the rule file's term (14 days, marked verify) after the
    placement; the placing social services, and nobody else, is reminded once, naming the child."""
    clock = Clock(PLACED_AT)
    social = topics.deliver(SOCIAL_TOPIC)
    placement = _event(
        "placement-started",
        "placement-2",
        PLACED_AT,
        {
            "form": "family_home",
            "start": "2026-11-20",
            "residence": {
                "line": ["Storgatan 1"],
                "postalCode": "722 11",
                "city": "Västerås",
                "municipality": "1980",
            },
        },
    )
    async with running(settings, kafka_bootstrap, clock) as app:
        await _send(app, placement)
        await _until(lambda: any(p.kind == "placement" for p in _processes(app)))
        clock.now = PLACED_AT + dt.timedelta(days=13, hours=23)
        assert await read_committed(kafka_bootstrap, [social], count=1, timeout=2) == [], "not yet due"
        clock.now = PLACED_AT + dt.timedelta(days=14, hours=1)
        [reminder] = await read_committed(kafka_bootstrap, [social], count=1, timeout=20)
        await asyncio.sleep(1)  # several scans: it fires once
        assert len(await read_committed(kafka_bootstrap, [social], count=2, timeout=2)) == 1

    text = _text(reminder.value)
    assert text.startswith("lag (2017:209): no health-examination request (health-exam-requested)"), text
    assert "2026-12-04" in text
    [patient] = [
        e["resource"]
        for e in json.loads(reminder.value)["entry"]
        if e["resource"]["resourceType"] == "Patient"
    ]
    assert patient["identifier"][0]["value"] == CHILD.replace("-", "")
    for recipient in RECIPIENTS:
        assert await read_committed(kafka_bootstrap, [topics.deliver(recipient)], count=1, timeout=1) == []
