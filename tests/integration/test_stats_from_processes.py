"""Follow-up statistics from the running service: agency events in, ``sambus stats`` indicators out."""

from __future__ import annotations

import asyncio
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
