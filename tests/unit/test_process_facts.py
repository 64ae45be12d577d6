"""The processes stage keeps each process's anonymous follow-up fact, from messages the adapters make."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from sambus.adapters import translate_message
from sambus.contracts.intent import Intent
from sambus.contracts.topics import Header
from sambus.router.cli.contracts import EXAMPLES_DIR
from sambus.router.routing.directory import RoutingDirectory
from sambus.router.routing.rules import RoutingRules
from sambus.router.service.schema import upgrade
from sambus.router.stages.deadlines import Deadlines
from sambus.router.stages.processes import ProcessStore, ProcessTracker
from sambus.router.stats.indicators import (
    MIN_CELL,
    Period,
    SqlStatsFacts,
    age_on,
    followup_facts,
    indicators,
    sex_of,
)

DIRECTORY = RoutingDirectory.load()  # the example packaged with sambus
PSEUDONYM = "pseudonym-of-the-child"
GIRL = "20120315-0006"
"""Born 2012-03-15: 14 years old in November 2026."""
BOY = "20101224-5674"
HEALTH = {"hsaId": "SE2321000206-1001"}
DENTAL = {"hsaId": "SE2321000206-1003"}


def intent(
    name: str, *, time: str = "2026-11-20T09:00:00+01:00", event_id: str = "e1", **data: Any
) -> Intent:
    """The intent the adapters make of the example event ``name``, with ``data`` fields replaced."""
    event = json.loads((EXAMPLES_DIR / f"se.sambus.{name}.v1.json").read_text(encoding="utf-8"))
    event["data"].update(data)
    event["time"] = time
    event["id"] = event_id
    [made] = translate_message(json.dumps(event).encode())
    return made


def record(
    made: Intent, process_id: str | None = None, pseudonym: str = PSEUDONYM
) -> ConsumerRecord[bytes, bytes]:
    """The ``sambus.intents`` record of an intent (under another process id or child pseudonym when given)."""
    value = json.dumps(made.bundle).encode()
    headers = (
        (Header.EVENT_CODE, str(made.event).encode()),
        (Header.CORRELATION_ID, (process_id or made.correlation_id).encode()),
    )
    return ConsumerRecord(
        topic="t.sambus.intents",
        partition=0,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=pseudonym.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(pseudonym),
        serialized_value_size=len(value),
        headers=headers,
    )


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def tracker(engine) -> ProcessTracker:
    upgrade(engine)
    store = ProcessStore(engine)
    deadlines = Deadlines(engine)
    return ProcessTracker(store=store, deadlines=deadlines, rules=RoutingRules(DIRECTORY))


def facts(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(followup_facts).order_by(followup_facts.c.id)).mappings().all()
    return [{k: v for k, v in row.items() if k != "id"} for row in rows]


def sip_steps(process_id: str, child: str = GIRL) -> list[Intent]:
    """Meeting held on 3 December and plan established on 17 December, for the process."""
    return [
        intent(
            "sip.meeting-held",
            time="2026-12-03T13:00:00+01:00",
            event_id=f"{process_id}-m",
            processId=process_id,
            child={"civicNo": child},
        ),
        intent(
            "sip.plan-established",
            time="2026-12-17T10:00:00+01:00",
            event_id=f"{process_id}-p",
            processId=process_id,
            child={"civicNo": child},
        ),
    ]


@pytest.mark.asyncio
async def test_a_sip_fact_follows_initiation_meeting_and_plan(tracker, engine) -> None:
    started = intent("school.sip-initiated")
    await tracker(record(started))
    assert facts(engine) == [
        {
            "process_id": started.correlation_id,
            "kind": "sip",
            "sex": "girl",
            "age_band": "13-17",
            "county_part": "ostra-vastmanland",  # the requesting school is in Västerås
            "started_on": dt.date(2026, 11, 20),
            "held_on": None,
            "plan_on": None,
            "completed_on": None,
            "medical_on": None,
            "oral_on": None,
            "closed_on": None,
            "closure_reason": None,
        }
    ]

    for step in sip_steps(started.correlation_id):
        await tracker(record(step))

    [fact] = facts(engine)
    assert (fact["held_on"], fact["plan_on"]) == (dt.date(2026, 12, 3), dt.date(2026, 12, 17))


@pytest.mark.asyncio
async def test_replayed_messages_change_no_fact(tracker, engine) -> None:
    started = intent("school.sip-initiated")
    messages = [started, *sip_steps(started.correlation_id)]
    for made in messages:
        await tracker(record(made))
    before = facts(engine)

    for made in [*messages, *reversed(messages)]:
        await tracker(record(made))

    assert facts(engine) == before
    assert len(before) == 1


@pytest.mark.asyncio
async def test_a_later_second_meeting_does_not_move_the_first_meeting_date(tracker, engine) -> None:
    started = intent("school.sip-initiated")
    await tracker(record(started))
    first, _ = sip_steps(started.correlation_id)
    again = intent(
        "sip.meeting-held",
        time="2027-01-10T13:00:00+01:00",
        event_id="another-meeting",
        processId=started.correlation_id,
    )
    await tracker(record(first))
    await tracker(record(again))

    [fact] = facts(engine)
    assert fact["held_on"] == dt.date(2026, 12, 3)


@pytest.mark.asyncio
async def test_a_scheduled_meeting_is_not_a_held_one(tracker, engine) -> None:
    started = intent("school.sip-initiated")
    await tracker(record(started))
    scheduled = intent(
        "sip.meeting-scheduled",
        time="2026-11-25T13:00:00+01:00",
        event_id="scheduled",
        processId=started.correlation_id,
    )
    await tracker(record(scheduled))
    assert facts(engine)[0]["held_on"] is None

    held, _ = sip_steps(started.correlation_id)
    await tracker(record(held))
    assert facts(engine)[0]["held_on"] == dt.date(2026, 12, 3)


@pytest.mark.asyncio
async def test_no_identity_is_stored_in_the_facts(tracker, engine) -> None:
    started = intent("school.sip-initiated")
    for made in [started, *sip_steps(started.correlation_id)]:
        await tracker(record(made))

    with engine.connect() as conn:
        stored = json.dumps([list(r) for r in conn.execute(sa.select(followup_facts)).all()], default=str)
    assert "20120315" not in stored
    assert "0315-0006" not in stored
    assert "03150006" not in stored
    assert PSEUDONYM not in stored
    assert set(followup_facts.c.keys()) == {
        "id", "process_id", "kind", "sex", "age_band", "county_part",
        "started_on", "held_on", "plan_on", "completed_on", "medical_on", "oral_on", "closed_on",
        "closure_reason",
    }  # fmt: skip


@pytest.mark.asyncio
async def test_an_acute_placement_is_completed_by_its_joint_planning(tracker, engine) -> None:
    placed = intent("social.placement-started", acute=True, start="2026-11-19")
    await tracker(record(placed))
    joint_planning = intent("social.sip-initiated", time="2026-11-27T10:00:00+01:00", event_id="jp")
    await tracker(record(joint_planning, process_id=placed.correlation_id))

    [fact] = facts(engine)
    assert fact["kind"] == "acute_placement"
    assert (fact["sex"], fact["age_band"]) == ("boy", "13-17")  # 20101224-5674, 15 years old
    assert fact["county_part"] == "ostra-vastmanland"  # placed by Västerås (1980)
    assert (fact["started_on"], fact["completed_on"]) == (dt.date(2026, 11, 20), dt.date(2026, 11, 27))


@pytest.mark.asyncio
async def test_a_new_sip_for_the_placed_child_is_the_joint_planning_of_its_acute_placement(
    tracker, engine
) -> None:
    placed = intent("social.placement-started", acute=True, start="2026-11-19")
    await tracker(record(placed))
    other_child = intent("social.sip-initiated", time="2026-11-25T10:00:00+01:00", event_id="other")
    await tracker(record(other_child, pseudonym="pseudonym-of-another-child"))
    assert facts(engine)[0]["completed_on"] is None
    joint_planning_deadline = f"{placed.correlation_id}:joint-planning"
    assert Deadlines(engine).state(joint_planning_deadline)["closed_at"] is None

    sip = intent(
        "social.sip-initiated", time="2026-12-01T10:00:00+01:00", event_id="jp", child={"civicNo": BOY}
    )
    await tracker(record(sip))

    placement, *sips = facts(engine)
    assert (placement["kind"], placement["completed_on"]) == ("acute_placement", dt.date(2026, 12, 1))
    assert [s["kind"] for s in sips] == ["sip", "sip"]
    assert Deadlines(engine).state(joint_planning_deadline)["closed_at"] is not None, "no escalation follows"


@pytest.mark.asyncio
async def test_a_placement_that_is_not_acute_is_not_followed_up(tracker, engine) -> None:
    await tracker(record(intent("social.placement-started", acute=False)))

    assert facts(engine) == []


@pytest.mark.asyncio
async def test_a_2017_209_examination_is_completed_when_both_statements_are_in(tracker, engine) -> None:
    requested = intent("social.health-exam-requested", healthCare=HEALTH, dentalCare=DENTAL)
    await tracker(record(requested))
    health = intent(
        "ehr.health-exam-completed",
        time="2026-12-01T09:00:00+01:00",
        event_id="s1",
        processId=requested.correlation_id,
    )
    dental = intent(
        "ehr.health-exam-completed",
        time="2026-12-08T09:00:00+01:00",
        event_id="s2",
        processId=requested.correlation_id,
        hsaId=DENTAL["hsaId"],
        statement="oral",
    )
    await tracker(record(health))
    assert facts(engine)[0]["completed_on"] is None
    assert (facts(engine)[0]["medical_on"], facts(engine)[0]["oral_on"]) == (dt.date(2026, 12, 1), None)

    await tracker(record(dental))

    [fact] = facts(engine)
    assert (fact["kind"], fact["county_part"]) == ("exam_2017_209", "ostra-vastmanland")
    assert fact["completed_on"] == dt.date(2026, 12, 8)
    assert (fact["medical_on"], fact["oral_on"]) == (dt.date(2026, 12, 1), dt.date(2026, 12, 8))


@pytest.mark.asyncio
async def test_an_oral_statement_alone_dates_only_the_oral_examination(tracker, engine) -> None:
    requested = intent("social.health-exam-requested", healthCare=HEALTH, dentalCare=DENTAL)
    await tracker(record(requested))
    dental = intent(
        "ehr.health-exam-completed",
        time="2026-12-08T09:00:00+01:00",
        event_id="s2",
        processId=requested.correlation_id,
        hsaId=DENTAL["hsaId"],
        statement="oral",
    )
    await tracker(record(dental))
    await tracker(record(dental))  # sent again: dated once

    [fact] = facts(engine)
    assert (fact["medical_on"], fact["oral_on"], fact["completed_on"]) == (None, dt.date(2026, 12, 8), None)


@pytest.mark.asyncio
@pytest.mark.parametrize("reason", ["declined", "goals_met", "transition_to_adulthood"])
async def test_a_closed_sip_keeps_its_closure_reason(tracker, engine, reason) -> None:
    started = intent("school.sip-initiated")
    await tracker(record(started))
    closed = intent(
        "sip.closed",
        time="2027-02-01T10:00:00+01:00",
        event_id="closed",
        processId=started.correlation_id,
        reason=reason,
    )
    await tracker(record(closed))

    [fact] = facts(engine)
    assert (fact["closed_on"], fact["closure_reason"]) == (dt.date(2027, 2, 1), reason)


@pytest.mark.asyncio
async def test_a_placed_young_person_of_19_is_in_the_18_21_band_not_13_17(tracker, engine) -> None:
    requested = intent(
        "social.health-exam-requested",
        healthCare=HEALTH,
        dentalCare=DENTAL,
        child={"civicNo": "20070512-0020"},  # 19 years old in November 2026
    )
    await tracker(record(requested))

    [fact] = facts(engine)
    assert (fact["kind"], fact["age_band"]) == ("exam_2017_209", "18-21")


@pytest.mark.asyncio
async def test_a_person_older_than_21_gets_no_fact(tracker, engine) -> None:
    requested = intent(
        "social.health-exam-requested",
        healthCare=HEALTH,
        dentalCare=DENTAL,
        child={"civicNo": "20030101-0013"},  # 23 years old
    )
    await tracker(record(requested))

    assert facts(engine) == []


@pytest.mark.asyncio
async def test_an_lvu_32_exam_is_completed_by_its_statement(tracker, engine) -> None:
    ordered = intent("social.lvu32-exam-ordered", child={"civicNo": "20230301-0009"})
    await tracker(record(ordered))
    await tracker(
        record(
            intent(
                "ehr.lvu32-exam-completed",
                time="2026-12-10T09:00:00+01:00",
                event_id="done",
                processId=ordered.correlation_id,
                child={"civicNo": "20230301-0009"},
            )
        )
    )

    [fact] = facts(engine)
    assert (fact["kind"], fact["sex"], fact["age_band"]) == ("lvu_32", "girl", "0-5")
    assert (fact["completed_on"] - fact["started_on"]).days == 20


@pytest.mark.asyncio
async def test_facts_feed_the_indicators_with_small_counts_suppressed(tracker, engine) -> None:
    children = ["20120315-0006", "20101224-5674", "20150601-0006", "20111111-0019", "20130102-0002"]
    processes = []
    for n, child in enumerate(children):
        started = intent("school.sip-initiated", event_id=f"sip-{n}", child={"civicNo": child})
        processes.append(started.correlation_id)
        await tracker(record(started))
    for process_id, child in zip(processes[:2], children, strict=False):
        for step in sip_steps(process_id, child):
            await tracker(record(step))

    table = indicators(SqlStatsFacts(engine), Period.parse("2026H2"))

    assert table.value("sip_initiated") == MIN_CELL
    assert table.value("sip_held") is None  # 2 of 5: suppressed
    assert table.value("sip_initiated", "county_part", "ostra-vastmanland") == MIN_CELL


@pytest.mark.parametrize(
    ("number", "sex"),
    [("201203150006", "girl"), ("201012245674", "boy"), ("201203750006", "girl"), ("", "other")],
)
def test_sex_is_the_second_to_last_digit(number, sex) -> None:
    assert sex_of(number) == sex


def test_age_counts_whole_years() -> None:
    assert age_on(dt.date(2012, 3, 15), dt.date(2026, 3, 14)) == 13
    assert age_on(dt.date(2012, 3, 15), dt.date(2026, 3, 15)) == 14


@pytest.mark.asyncio
async def test_a_facts_table_made_before_it_had_process_ids_gets_them(engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE followup_facts (id INTEGER PRIMARY KEY, kind VARCHAR(30) NOT NULL, "
                "sex VARCHAR(10) NOT NULL, age_band VARCHAR(10) NOT NULL, county_part VARCHAR(60) NOT NULL, "
                "started_on DATE NOT NULL, held_on DATE, plan_on DATE, completed_on DATE)"
            )
        )
        conn.execute(sa.text("CREATE INDEX ix_followup_facts_started_on ON followup_facts (started_on)"))
    upgrade(engine)  # adopts the table, as `sambus db upgrade` does
    store = ProcessStore(engine)
    deadlines = Deadlines(engine)
    tracker = ProcessTracker(store=store, deadlines=deadlines, rules=RoutingRules(DIRECTORY))
    started = intent("school.sip-initiated")

    await tracker(record(started))

    assert [f["process_id"] for f in facts(engine)] == [started.correlation_id]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            followup_facts.insert().values(
                process_id=started.correlation_id, kind="sip", sex="girl", age_band="0-5",
                county_part="x", started_on=dt.date(2026, 11, 20),
            )
        )  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("child", "expected"),
    [
        ({"lmaNumber": "12-345678", "birthDate": "2013-05-02", "gender": "female"}, ("girl", "13-17")),
        ({"lmaNumber": "12-345678", "birthDate": "2021-01-09", "gender": "male"}, ("boy", "0-5")),
        ({"reserveNumber": {"value": "RN-2012-0042"}, "birthDate": "2015-06-30"}, ("not-stated", "6-12")),
        (
            {"reserveNumber": {"value": "RN-2012-0042"}, "birthDate": "2008-01-01", "gender": "other"},
            ("other", "18-21"),
        ),
    ],
)
async def test_a_child_without_personnummer_is_followed_up_by_its_stated_birth_date_and_gender(
    tracker, engine, child, expected
) -> None:
    await tracker(record(intent("social.health-exam-requested", child=child)))

    [fact] = facts(engine)
    assert (fact["kind"], fact["sex"], fact["age_band"]) == ("exam_2017_209", *expected)


@pytest.mark.asyncio
async def test_a_child_without_personnummer_or_birth_date_gets_no_fact_rather_than_a_guessed_one(
    tracker, engine
) -> None:
    await tracker(record(intent("social.health-exam-requested", child={"lmaNumber": "12-345678"})))

    assert facts(engine) == []


def test_a_gender_goes_only_with_an_lma_number_or_reservnummer() -> None:
    with pytest.raises(Exception, match="gender goes with lmaNumber or reserveNumber"):
        intent("social.health-exam-requested", child={"civicNo": GIRL, "gender": "female"})
