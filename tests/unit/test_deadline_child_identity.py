"""A deadline keeps the child's identifier sealed, so its reminders can name the child's Patient.

The table keeps the child as its pseudonym; the identifier is AES-GCM under the dead-letter keys, bound to
the deadline. Without the keys, or for a deadline opened before the identifier was kept, a reminder names no
Patient (and says so: see ``tests/integration/test_router_deadlines.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets

import pytest
import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle
from tests.unit.test_routing_processes import DIRECTORY, VC, bundle, record

from sambus.consent.keys import FieldCipher
from sambus.consent.registry import IDENTITY_PROTECTIONS, Protection
from sambus.contracts.fhir import SCHOOL_UNIT_SYSTEM, EventCode
from sambus.contracts.fhir.codes import PROCESS_ID_SYSTEM
from sambus.contracts.fhir.notices import Addressee, notice
from sambus.contracts.identifiers import LMA_NUMBER_SYSTEM, PERSONNUMMER_SYSTEM
from sambus.contracts.topics import Topics
from sambus.router.routing.rules import RoutingRules
from sambus.router.service.schema import upgrade
from sambus.router.stages.deadlines import UNNAMED_PROTECTED, Deadlines, DeadlineTimers, Timer
from sambus.router.stages.processes import ProcessStore, ProcessTracker

CHILD = "201203150006"
LMA = "12-345678"
LATER = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
"""In the LVU § 32 exam's last week (ordered 2026-11-02): its reminder is due."""


def _cipher() -> FieldCipher:
    return FieldCipher.from_spec(f"k1:{secrets.token_hex(32)}", setting="SAMBUS_DLQ_ENCRYPTION_KEYS")


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


async def _order_exam(engine: sa.Engine, deadlines: Deadlines, *, patient: dict[str, object] | None = None):
    tracker = ProcessTracker(store=ProcessStore(engine), deadlines=deadlines, rules=RoutingRules(DIRECTORY))
    data = bundle("m1", VC)
    if patient is not None:
        data["entry"][-1]["resource"] = patient
    await tracker(record(EventCode.LVU32_EXAM_ORDERED, data))


def _row(engine: sa.Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("select * from deadlines")).one()._mapping)  # noqa: SLF001


@pytest.mark.asyncio
async def test_a_deadline_keeps_the_childs_personnummer_only_sealed_and_its_reminder_opens_it(engine) -> None:
    deadlines = Deadlines(engine, cipher=_cipher())
    await _order_exam(engine, deadlines)

    row = _row(engine)
    assert row["child_identity_key_id"] == "k1"
    assert CHILD not in json.dumps(row, default=str), "the table never holds the number in the clear"
    assert CHILD[2:] not in json.dumps(row, default=str)
    [reminder] = deadlines.due(LATER)
    assert reminder.identity == CHILD


@pytest.mark.asyncio
async def test_a_child_known_by_lma_number_is_kept_with_its_system(engine) -> None:
    deadlines = Deadlines(engine, cipher=_cipher())
    lma_child = {
        "resourceType": "Patient",
        "identifier": [{"system": LMA_NUMBER_SYSTEM, "value": LMA}],
        "birthDate": "2013-05-02",
    }
    await _order_exam(engine, deadlines, patient=lma_child)

    [reminder] = deadlines.due(LATER)
    assert reminder.identity == f"{LMA_NUMBER_SYSTEM}|{LMA}"


@pytest.mark.asyncio
async def test_without_keys_a_deadline_keeps_no_identifier(engine) -> None:
    deadlines = Deadlines(engine)
    await _order_exam(engine, deadlines)

    row = _row(engine)
    assert (row["child_identity"], row["child_identity_key_id"]) == (None, None)
    [reminder] = deadlines.due(LATER)
    assert reminder.identity is None


@pytest.mark.asyncio
async def test_a_sealed_identifier_moved_to_another_deadline_or_opened_with_other_keys_is_not_opened(
    engine,
) -> None:
    deadlines = Deadlines(engine, cipher=_cipher())
    await _order_exam(engine, deadlines)
    with engine.begin() as conn:
        conn.execute(sa.text("update deadlines set deadline_id = 'other:lvu32-exam'"))

    [moved] = deadlines.due(LATER)
    assert moved.identity is None, "the seal is bound to its deadline"
    assert Deadlines(engine, cipher=_cipher()).due(LATER)[0].identity is None
    assert Deadlines(engine).due(LATER)[0].identity is None


@pytest.mark.parametrize(
    "identifier",
    [(PERSONNUMMER_SYSTEM, CHILD), (LMA_NUMBER_SYSTEM, LMA)],
)
def test_a_reminder_with_the_child_carries_a_patient_with_its_identifier_alone(identifier) -> None:
    data = notice(
        event=EventCode.DEADLINE_REMINDER,
        to=Addressee("vasteras-skola-norra", "Norra skolan", SCHOOL_UNIT_SYSTEM, "19800001"),
        about={"system": PROCESS_ID_SYSTEM, "value": "p-1"},
        text="lvu32-exam is due on 2026-11-30",
        at=LATER,
        tasks=["t0"],
        patient=identifier,
    )

    bundle_ = Bundle.model_validate(data)
    header, communication, _outcome, patient = (entry.resource for entry in bundle_.entry)
    assert header.focus[0].reference == f"urn:uuid:{communication.id}"
    assert communication.subject.reference == f"urn:uuid:{patient.id}"
    assert patient.model_dump(exclude_none=True) == {
        "resourceType": "Patient",
        "id": patient.id,
        "identifier": [{"system": identifier[0], "value": identifier[1]}],
    }


def _timers(protections: object) -> DeadlineTimers:
    return DeadlineTimers(
        deadlines=Deadlines(sa.create_engine("sqlite://")),
        directory=DIRECTORY,
        topics=Topics("t."),
        bootstrap_servers="127.0.0.1:1",
        transactional_id="t.sambus-timers",
        clock=lambda: LATER,
        protections=protections,  # type: ignore[arg-type]
    )


def _reminder_entries(timers: DeadlineTimers) -> tuple[list[str], str]:
    timer = Timer(
        deadline_id="p-1:lvu32-exam",
        kind="lvu32-exam",
        process_id="p-1",
        name="lvu32-exam",
        child="pseudonym-1",
        to="vasteras-socialtjanst",
        due_at=LATER,
        event=EventCode.DEADLINE_REMINDER,
        identity=CHILD,
    )
    [out] = timers._notices(timer, LATER)  # noqa: SLF001 - the notice a due timer becomes
    data = json.loads(out.value)
    kinds = [entry["resource"]["resourceType"] for entry in data["entry"]]
    return kinds, out.value.decode()


@pytest.mark.parametrize("protection", sorted(IDENTITY_PROTECTIONS))
def test_a_child_with_a_protected_identity_is_not_named_in_its_reminders(protection: Protection) -> None:
    """Fails closed: the Tasks identify the child to the party that holds them; the Patient stays out."""
    asked: list[tuple[str, dt.datetime]] = []

    def protections(child: str, at: dt.datetime) -> frozenset[Protection]:
        asked.append((child, at))
        return frozenset({protection})

    kinds, text = _reminder_entries(_timers(protections))
    assert "Patient" not in kinds
    assert CHILD not in text
    assert UNNAMED_PROTECTED in text
    assert asked == [("pseudonym-1", LATER)]


def test_an_unprotected_child_is_named_and_without_a_registry_no_child_is() -> None:
    kinds, text = _reminder_entries(_timers(lambda _child, _at: frozenset()))
    assert "Patient" in kinds
    assert CHILD in text
    kinds, text = _reminder_entries(_timers(None))
    assert "Patient" not in kinds
    assert CHILD not in text
