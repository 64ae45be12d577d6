"""Intake translates a batch first and asks the seen-events table about all its intents at once.

What comes out is what one event at a time gave: the same intents, a re-sent event dropped (within the batch
or after an earlier one committed), an invalid event refused with its own error at its turn.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from sambus.consent import Pseudonymizer
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.topics import Topics
from sambus.router.kafka.records import Outgoing
from sambus.router.service.schema import upgrade
from sambus.router.stages.intake import Intake
from sambus.router.stages.seen_events import SeenEvents

TOPICS = Topics(prefix="t.")
PSEUDONYMIZER = Pseudonymizer(b"unit-test-pseudonym-key-0123456789abcdef")


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'intake.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def _records(events: list[dict[str, Any] | bytes]) -> list[ConsumerRecord]:
    values = [e if isinstance(e, bytes) else json.dumps(e).encode() for e in events]
    return [
        Outgoing(TOPICS.agency_events("school"), value).as_consumed(offset=n)
        for n, value in enumerate(values)
    ]


async def _batch(
    intake: Intake, seen: SeenEvents, records: list[ConsumerRecord], *, prepared: bool
) -> list[Any]:
    """Each record's intents (their message ids) or error, as the stage handles a batch; then it commits."""
    if prepared:
        await intake.prepare(records)
    made: list[Any] = []
    for record in records:
        try:
            out: list[Outgoing] = await intake(record)
        except InvalidEventError as exc:
            made.append(type(exc).__name__)
        else:
            made.append([(o.key, o.value, dict(o.headers)) for o in out])
    seen.before_commit()
    seen.after_commit()
    return made


def _events(sip_event) -> list[dict[str, Any] | bytes]:
    return [
        sip_event(id="e-1"),
        sip_event(id="e-2", data={"child": {"civicNo": "20120315-0006"}}),
        b'{"type": "se.sambus.school.sip-initiated.v1"',  # not JSON
        sip_event(id="e-1"),  # sent again in the same batch
        sip_event(id="e-3", data={"reason": "not-a-reason"}),  # fails the contract
        sip_event(id="e-4"),
    ]


def _bundle_ids(made: list[Any]) -> list[Any]:
    """What a batch made, with each intent's assembly time left out (it is the clock's)."""
    result = []
    for one in made:
        if isinstance(one, str):
            result.append(one)
            continue
        intents = []
        for key, value, headers in one:
            bundle = json.loads(value)
            bundle.pop("timestamp")
            intents.append((key, bundle, headers))
        result.append(intents)
    return result


@pytest.mark.asyncio
async def test_a_prepared_batch_makes_what_one_event_at_a_time_made(engine, tmp_path, sip_event) -> None:
    one_by_one_db = sa.create_engine(f"sqlite:///{tmp_path / 'one.db'}")
    upgrade(one_by_one_db)
    one_seen = SeenEvents(one_by_one_db)
    one_by_one = Intake(topics=TOPICS, pseudonymizer=PSEUDONYMIZER, seen=one_seen)
    seen = SeenEvents(engine)
    intake = Intake(topics=TOPICS, pseudonymizer=PSEUDONYMIZER, seen=seen)

    first = await _batch(intake, seen, _records(_events(sip_event)), prepared=True)
    expected = await _batch(one_by_one, one_seen, _records(_events(sip_event)), prepared=False)
    assert _bundle_ids(first) == _bundle_ids(expected)
    assert [len(x) if isinstance(x, list) else x for x in first] == [
        1, 1, "InvalidEventError", 0, "InvalidEventError", 1
    ]  # fmt: skip

    # Sent again after they committed: nothing new, as before.
    again = await _batch(intake, seen, _records(_events(sip_event)), prepared=True)
    assert [len(x) if isinstance(x, list) else x for x in again] == [
        0, 0, "InvalidEventError", 0, "InvalidEventError", 0
    ]  # fmt: skip
    one_by_one_db.dispose()


@pytest.mark.asyncio
async def test_a_prepared_batch_reads_the_seen_events_table_once(engine, sip_event) -> None:
    reads: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _note(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "sambus_seen_events" in statement:
            reads.append(statement)

    seen = SeenEvents(engine)
    intake = Intake(topics=TOPICS, pseudonymizer=PSEUDONYMIZER, seen=seen)
    made = await _batch(intake, seen, _records([sip_event(id=f"e-{n}") for n in range(100)]), prepared=True)

    assert [len(x) for x in made] == [1] * 100
    assert len(reads) == 1


class _RefusingPseudonymizer(Pseudonymizer):
    """Refuses one child, as a broken key store would: making that intent's record fails."""

    def of(self, person_number: str) -> str:
        if person_number.endswith("0014"):
            raise RuntimeError("the pseudonym key store is unreachable")
        return super().of(person_number)


@pytest.mark.asyncio
async def test_a_record_that_cannot_be_made_fails_its_own_event_at_its_turn(engine, sip_event) -> None:
    """A prepared batch makes its intents' records ahead; one that fails is raised by its own event only."""
    seen = SeenEvents(engine)
    intake = Intake(topics=TOPICS, pseudonymizer=_RefusingPseudonymizer(b"k" * 32), seen=seen)
    records = _records(
        [
            sip_event(id="e-1"),
            sip_event(id="e-2", data={"child": {"civicNo": "20120315-0014"}}),
            sip_event(id="e-3"),
        ]
    )
    await intake.prepare(records)
    assert len(await intake(records[0])) == 1
    with pytest.raises(RuntimeError, match="key store"):
        await intake(records[1])
    assert len(await intake(records[2])) == 1
