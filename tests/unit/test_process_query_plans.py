"""Applying a message to its process reads no table whole: every statement the processes stage runs for a
message seeks its rows by an index, so the stage's cost per message does not grow with the tables."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from sambus.adapters import translate_message
from sambus.contracts.topics import Header
from sambus.router.cli.contracts import EXAMPLES_DIR
from sambus.router.routing.directory import RoutingDirectory
from sambus.router.routing.rules import RoutingRules
from sambus.router.service.schema import upgrade
from sambus.router.stages.deadlines import Deadlines
from sambus.router.stages.processes import ProcessStore, ProcessTracker

DIRECTORY = RoutingDirectory.load()  # the example packaged with sambus
PSEUDONYM = "pseudonym-of-the-child"


def _records() -> list[ConsumerRecord[bytes, bytes]]:
    """Every example event the adapters take, as the intents they make, all about one child."""
    made = []
    for path in sorted(EXAMPLES_DIR.glob("se.sambus.*.json")):
        made.extend(translate_message(path.read_bytes()))
    records = []
    for offset, intent in enumerate(made):
        value = json.dumps(intent.bundle).encode()
        headers = (
            (Header.EVENT_CODE, str(intent.event).encode()),
            (Header.CORRELATION_ID, intent.correlation_id.encode()),
        )
        records.append(
            ConsumerRecord(
                topic="t.sambus.intents",
                partition=0,
                offset=offset,
                timestamp=0,
                timestamp_type=0,
                key=PSEUDONYM.encode(),
                value=value,
                checksum=None,
                serialized_key_size=len(PSEUDONYM),
                serialized_value_size=len(value),
                headers=headers,
            )
        )
    return records


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def _plan(engine: sa.Engine, statement: str, parameters: Any) -> list[str]:
    with engine.connect() as conn:
        return [str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]


@pytest.mark.asyncio
async def test_no_statement_a_message_is_applied_with_reads_a_table_whole(engine) -> None:
    tracker = ProcessTracker(
        store=ProcessStore(engine), deadlines=Deadlines(engine), rules=RoutingRules(DIRECTORY)
    )
    ran: list[tuple[str, Any]] = []

    def note(_conn, _cursor, statement, parameters, _context, executemany) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")) and not executemany:
            ran.append((statement, parameters))

    records = _records()
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        await tracker.prepare(records)
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
    tracker.after_commit()

    assert len({statement for statement, _ in ran}) > 5, "the examples ran the stage's statements"
    plans = {statement: _plan(engine, statement, parameters) for statement, parameters in ran}
    scans = {statement: plan for statement, plan in plans.items() if any(s.startswith("SCAN ") for s in plan)}
    assert not scans, json.dumps(scans, indent=1)
