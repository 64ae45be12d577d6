"""Follow-up statistics from the running service: agency events in, ``sambus stats`` indicators out."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from sambus.adapters import translate_message
from sambus.router.cli.contracts import EXAMPLES_DIR
from sambus.router.stats.indicators import Period, SqlStatsFacts, followup_facts, indicators
from tests.integration.conftest import Running, sip_event

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CHILDREN = ("20120315-0006", "20101224-5674", "20150601-0006", "20111111-0019", "20130102-0002")
"""Five children (three girls, two boys): enough that the totals are not suppressed."""
BU_HALSAN = {"hsaId": "SE2321000206-1001"}
SOCIAL = "212000-2080"
VC = "SE2321000206-1006"
DENTAL = "SE2321000206-1003"


def _step(name: str, event_id: str, process_id: str, child: str, time: str) -> bytes:
    event: dict[str, Any] = json.loads((EXAMPLES_DIR / f"se.sambus.{name}.v1.json").read_text("utf-8"))
    event.update(id=event_id, time=time)
    event["data"].update(processId=process_id, child={"civicNo": child})
    return json.dumps(event).encode()


async def _facts_with(running: Running, column: str, count: int) -> list[dict[str, Any]]:
    """The facts, once ``count`` of them have ``column`` set (or what there is after 60 s)."""
    rows: list[dict[str, Any]] = []
    for _ in range(240):
        with running.app.processes.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(sa.select(followup_facts)).mappings()]
        if sum(row[column] is not None for row in rows) >= count:
            break
        await asyncio.sleep(0.25)
    return rows


async def test_sips_sent_by_the_agencies_show_in_the_indicators(running: Running) -> None:
    processes = {}
    for n, child in enumerate(CHILDREN):
        value = sip_event(f"stats-{n}", child, BU_HALSAN)
        [intent] = translate_message(value)
        processes[child] = intent.correlation_id
        await running.send(running.topics.agency_events("school"), value)
    started = await _facts_with(running, "started_on", len(CHILDREN))
    assert len(started) == len(CHILDREN)

    for n, (child, process_id) in enumerate(processes.items()):
        await running.send(
            running.topics.agency_events("social"),
            _step("sip.meeting-held", f"m-{n}", process_id, child, "2026-12-03T15:00:00+01:00"),
        )
        await running.send(
            running.topics.agency_events("social"),
            _step("sip.plan-established", f"p-{n}", process_id, child, "2026-12-17T10:00:00+01:00"),
        )
    rows = await _facts_with(running, "plan_on", len(CHILDREN))

    assert sorted(r["process_id"] for r in rows) == sorted(processes.values())
    assert sorted((r["sex"], r["age_band"]) for r in rows) == [
        ("boy", "13-17"), ("boy", "13-17"), ("girl", "13-17"), ("girl", "13-17"), ("girl", "6-12"),
    ]  # fmt: skip
    stored = json.dumps(rows, default=str)
    assert not any(child.replace("-", "")[2:] in stored for child in CHILDREN)
    table = indicators(SqlStatsFacts(running.app.processes.engine), Period.parse("2026H2"))
    assert table.value("sip_initiated") == len(CHILDREN)
    assert table.value("sip_held") == len(CHILDREN)
    assert table.value("sip_with_plan") == len(CHILDREN)
    assert table.value("sip_initiated", "county_part", "ostra-vastmanland") == len(CHILDREN)
    # Three girls and two boys: both below five, so the split by sex is suppressed.
    assert table.value("sip_initiated", "sex", "girl") is None
    assert table.value("sip_initiated", "sex", "boy") is None


def _personnummer(born: dt.date, serial: int) -> str:
    """A valid personnummer (Luhn check digit) for someone born on ``born``; odd ``serial``: a boy."""
    digits = f"{born:%y%m%d}{serial:03d}"
    total = sum(sum(divmod(int(c) * (2 - i % 2), 10)) for i, c in enumerate(digits))
    return f"{born:%Y%m%d}{serial:03d}{(10 - total % 10) % 10}"


def _young_people(today: dt.date) -> list[str]:
    """Five placed young people aged 18 to 21 today (three girls, two boys)."""
    return [
        _personnummer(dt.date(today.year - age, today.month, 1) - dt.timedelta(days=1), serial)
        for age, serial in ((18, 2), (19, 11), (20, 22), (21, 33), (19, 44))
    ]


def _now_event(kind: str, name: str, event_id: str, civic_no: str, data: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "type": f"se.sambus.{kind}.{name}.v1",
            "id": event_id,
            "source": f"{kind}-test",
            "time": dt.datetime.now(dt.UTC).isoformat(),
            "data": {"child": {"civicNo": civic_no}, **data},
        }
    ).encode()


async def test_placed_young_peoples_statements_and_declined_sips_show_apart(running: Running) -> None:
    """18-21-year-olds in a band of their own; medical and oral statements and a declined SIP counted."""
    today = dt.datetime.now(dt.UTC).date()
    young = _young_people(today)
    social, ehr = running.topics.agency_events("social"), running.topics.agency_events("ehr")
    exams: dict[str, str] = {}
    for n, civic_no in enumerate(young):
        value = _now_event(
            "social", "health-exam-requested", f"exam-{n}", civic_no,
            {"organisationNumber": SOCIAL, "healthCare": {"hsaId": VC}, "dentalCare": {"hsaId": DENTAL}},
        )  # fmt: skip
        [intent] = translate_message(value)
        exams[civic_no] = intent.correlation_id
        await running.send(social, value)
    await _facts_with(running, "started_on", len(young))
    for n, (civic_no, process_id) in enumerate(exams.items()):
        statements = [(VC, "mental_physical")] + ([(DENTAL, "oral")] if n < 2 else [])
        for unit, statement in statements:
            await running.send(
                ehr,
                _now_event(
                    "ehr", "health-exam-completed", f"st-{statement}-{n}", civic_no,
                    {"processId": process_id, "hsaId": unit, "statement": statement,
                     "documentId": f"doc-{n}", "answerTo": {"organisationNumber": SOCIAL}},
                ),
            )  # fmt: skip
    sips: dict[str, str] = {}
    for n, civic_no in enumerate(young):
        value = _now_event(  # now: the age band is the age when the SIP starts (a fixed date ages them)
            "school", "sip-initiated", f"young-sip-{n}", civic_no,
            {"schoolUnitCode": "19800002", "initiatedBy": "student_health", "reason": "mental_health",
             "invite": [BU_HALSAN]},
        )  # fmt: skip
        [intent] = translate_message(value)
        sips[civic_no] = intent.correlation_id
        await running.send(running.topics.agency_events("school"), value)
    await _facts_with(running, "started_on", 2 * len(young))
    for n, (civic_no, process_id) in enumerate(sips.items()):
        closed = _step("sip.closed", f"closed-{n}", process_id, civic_no, dt.datetime.now(dt.UTC).isoformat())
        body = json.loads(closed)
        body["data"]["reason"] = "declined"
        await running.send(running.topics.agency_events("social"), json.dumps(body).encode())
    await _facts_with(running, "closure_reason", len(young))
    rows = await _facts_with(running, "medical_on", len(young))

    assert {r["age_band"] for r in rows} == {"18-21"}
    exam_rows = [r for r in rows if r["kind"] == "exam_2017_209"]
    assert sum(r["medical_on"] is not None for r in exam_rows) == len(young)
    assert sum(r["oral_on"] is not None for r in exam_rows) == 2
    assert sum(r["completed_on"] is not None for r in exam_rows) == 2
    assert sorted(r["closure_reason"] for r in rows if r["kind"] == "sip") == ["declined"] * len(young)
    stored = json.dumps(rows, default=str)
    assert not any(civic_no[2:] in stored for civic_no in young)
    table = indicators(SqlStatsFacts(running.app.processes.engine), Period.latest_half(today))
    assert table.value("exam_requested", "age_band", "18-21") == len(young)
    assert table.value("exam_medical_completed") == len(young)
    assert table.value("exam_oral_completed") is None  # 2 of 5: small, suppressed
    assert table.value("sip_initiated", "age_band", "18-21") == len(young)
    assert table.value("sip_declined") == len(young)
    assert table.value("sip_closed_goals_met") == 0
