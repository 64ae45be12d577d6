"""Lag (2017:209): social services states that an equivalent examination exists (the agreement's exception).

The ``processes`` stage ties the statement to the child's placement waiting for its request and closes that
reminder; the delivery stage writes the ledger with the assessment as the reason. A statement that no
waiting placement takes is refused, the ledger says so and the sender is told why (fail closed). Real
adapters, the real intake, process state, deadline table and delivery handler on one SQLite database.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from sambus.adapters import translate_message
from sambus.consent import ConsentPolicy, ConsentRegistry, LedgerRecord, Pseudonymizer
from sambus.contracts.errors import InvalidEventError, ProcessNotKnownError
from sambus.contracts.topics import Header, Topics
from sambus.router.routing.directory import RoutingDirectory
from sambus.router.routing.rules import RoutingRules
from sambus.router.service.schema import upgrade
from sambus.router.stages.deadlines import Deadlines
from sambus.router.stages.delivery import Delivery
from sambus.router.stages.intake import Intake
from sambus.router.stages.processes import ProcessStore, ProcessTracker

CHILD = "201203150006"
SOCIAL = "212000-2080"
TOPICS = Topics(prefix="t.")
PSEUDONYMIZER = Pseudonymizer(b"unit-test-pseudonym-key-0123456789abcdef")
DIRECTORY = RoutingDirectory.load()
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def _event(name: str, event_id: str, data: dict[str, Any], *, time: str) -> dict[str, Any]:
    return {
        "type": f"se.sambus.social.{name}.v1",
        "id": event_id,
        "source": "socialtjanst-vasteras",
        "time": time,
        "data": {"child": {"civicNo": "20120315-0006"}, **copy.deepcopy(data)},
    }


PLACEMENT = {
    "placingMunicipality": "1980",
    "legalBasis": "sol",
    "notify": [{"hsaId": "SE2321000206-1001"}],
    "form": "family_home",
    "start": "2026-11-19",
    "residence": {
        "line": ["Storgatan 1"],
        "postalCode": "722 11",
        "city": "Västerås",
        "municipality": "1980",
    },
}
REQUEST = {"organisationNumber": SOCIAL}
EQUIVALENT = {"organisationNumber": SOCIAL, "assessedBy": "ifo-handlaggare-41", "examinedOn": "2026-09-14"}


class _Ledger:
    def __init__(self) -> None:
        self.records: list[LedgerRecord] = []

    def append(self, records: list[LedgerRecord]) -> int:
        self.records.extend(records)
        return len(records)


class _Sambus:
    """The two stages that read ``sambus.intents`` here, over one database."""

    def __init__(self, engine: sa.Engine) -> None:
        upgrade(engine)
        self.store = ProcessStore(engine)
        self.deadlines = Deadlines(engine)
        self.tracker = ProcessTracker(
            store=self.store, deadlines=self.deadlines, rules=RoutingRules(DIRECTORY)
        )
        self.ledger = _Ledger()
        self.delivery = Delivery(
            topics=TOPICS,
            directory=DIRECTORY,
            policy=ConsentPolicy(ConsentRegistry(engine)),
            clock=lambda: NOW,
            ledger=self.ledger,
            asked=self.store,
        )
        self._offset = 0

    def record(self, event: dict[str, Any]) -> ConsumerRecord:
        [intent] = translate_message(json.dumps(event).encode())
        out = Intake(topics=TOPICS, pseudonymizer=PSEUDONYMIZER).intent_record(intent)
        self._offset += 1
        return out.as_consumed(offset=self._offset)

    async def processes(self, event: dict[str, Any]) -> ConsumerRecord:
        record = self.record(event)
        await self.tracker(record)
        return record

    async def deliver(self, record: ConsumerRecord) -> list[Any]:
        out = await self.delivery(record)
        self.delivery.before_commit()
        return out

    def waiting(self) -> bool:
        with self.store.engine.connect() as conn:
            return self.deadlines.open_for_child(
                conn, child=PSEUDONYMIZER.of(CHILD), name="health-exam-request"
            )


@pytest.fixture
def sambus(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 's.db'}")
    yield _Sambus(engine)
    engine.dispose()


@pytest.mark.asyncio
async def test_an_equivalent_examination_closes_the_placements_reminder_and_the_ledger_says_why(
    sambus,
) -> None:
    await sambus.processes(_event("placement-started", "p-1", PLACEMENT, time="2026-11-19T09:00:00+01:00"))
    assert sambus.waiting()

    record = await sambus.processes(
        _event("equivalent-health-exam-exists", "e-1", EQUIVALENT, time="2026-11-20T09:00:00+01:00")
    )
    out = await sambus.deliver(record)

    assert out == [], "nothing is delivered for the assessment itself"
    assert not sambus.waiting(), "the reminder is closed"
    [entry] = sambus.ledger.records
    assert (entry.event, entry.outcome, entry.rule_id) == (
        "equivalent-health-exam-exists",
        "permit",
        "equivalent-health-exam",
    )
    assert "equivalent examination exists" in entry.reason
    assert "ifo-handlaggare-41" in entry.reason
    assert "2026-09-14" in entry.reason
    assert CHILD not in entry.reason


@pytest.mark.asyncio
@pytest.mark.parametrize("before", ["nothing", "request", "placement-ended"])
async def test_an_equivalent_examination_no_waiting_placement_takes_is_refused_and_the_sender_told(
    sambus, before
) -> None:
    if before != "nothing":
        await sambus.processes(
            _event("placement-started", "p-1", PLACEMENT, time="2026-11-19T09:00:00+01:00")
        )
    if before == "request":
        await sambus.processes(
            _event("health-exam-requested", "r-1", REQUEST, time="2026-11-19T10:00:00+01:00")
        )
    if before == "placement-ended":
        ended = {k: PLACEMENT[k] for k in ("placingMunicipality", "legalBasis", "notify")} | {
            "end": "2026-11-19"
        }
        await sambus.processes(_event("placement-ended", "x-1", ended, time="2026-11-19T10:00:00+01:00"))
    assert not sambus.waiting()

    record = await sambus.processes(
        _event("equivalent-health-exam-exists", "e-1", EQUIVALENT, time="2026-11-20T09:00:00+01:00")
    )
    [notice] = await sambus.deliver(record)

    assert notice.topic == "t.deliver.vasteras-socialtjanst", "the sender, and only the sender, is told"
    headers = {k: v.decode() for k, v in notice.headers}
    assert headers[Header.EVENT_CODE] == "delivery-denied"
    text = json.loads(notice.value)["entry"][1]["resource"]["payload"][0]["contentString"]
    assert "no placement of this child waits for its 2017:209 health-examination request" in text
    assert CHILD not in notice.value.decode()
    [entry] = sambus.ledger.records
    assert (entry.outcome, entry.rule_id) == ("deny", "equivalent-health-exam")
    assert "refused" in entry.reason


@pytest.mark.asyncio
async def test_a_later_placement_still_waits_for_its_request_after_a_refused_statement(sambus) -> None:
    await sambus.processes(
        _event("equivalent-health-exam-exists", "e-1", EQUIVALENT, time="2026-11-18T09:00:00+01:00")
    )
    await sambus.processes(_event("placement-started", "p-1", PLACEMENT, time="2026-11-19T09:00:00+01:00"))

    assert sambus.waiting(), "a statement before the placement is tied to nothing (fail closed)"


@pytest.mark.asyncio
async def test_delivery_waits_until_the_process_state_has_applied_the_statement(sambus) -> None:
    record = sambus.record(
        _event("equivalent-health-exam-exists", "e-1", EQUIVALENT, time="2026-11-20T09:00:00+01:00")
    )

    with pytest.raises(ProcessNotKnownError):
        await sambus.delivery(record)
    assert sambus.ledger.records == []


def test_the_statement_names_who_assessed_it() -> None:
    data = {k: v for k, v in EQUIVALENT.items() if k != "assessedBy"}

    with pytest.raises(InvalidEventError) as caught:
        translate_message(
            json.dumps(_event("equivalent-health-exam-exists", "e-1", data, time=NOW.isoformat())).encode()
        )

    assert caught.value.field == "data.assessedBy"
