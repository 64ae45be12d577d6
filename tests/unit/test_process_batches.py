"""The processes stage writes a batch in one database transaction, each message in a savepoint of its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord
from tests.unit.test_routing_processes import AT, BU_HALSAN, DIRECTORY, SOCIAL, bundle, record

from sambus.contracts.fhir import EVENT_SYSTEM, EventCode
from sambus.contracts.identifiers import HSA_ID_SYSTEM
from sambus.router.routing.rules import RoutingRules
from sambus.router.service.schema import create_engine, upgrade
from sambus.router.stages.deadlines import Deadlines
from sambus.router.stages.processes import ProcessStore, ProcessTracker, applied

BUP = (HSA_ID_SYSTEM, "SE2321000206-1002")  # vastmanland-bup in the packaged directory


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'p.db'}"


@pytest.fixture
def engine(url) -> Iterator[sa.Engine]:
    made = create_engine(url)  # as sambus makes it: write-ahead log, busy timeout
    upgrade(made)
    yield made
    made.dispose()


@pytest.fixture
def other(url, engine) -> Iterator[ProcessStore]:
    """The same database as another process (the delivery stage, an operator) sees it."""
    del engine  # made and upgraded first
    made = create_engine(url)
    yield ProcessStore(made)
    made.dispose()


@pytest.fixture
def store(engine) -> ProcessStore:
    return ProcessStore(engine)


@pytest.fixture
def tracker(store, engine) -> ProcessTracker:
    return ProcessTracker(
        store=store, deadlines=Deadlines(engine), rules=RoutingRules(DIRECTORY, care_contacts=store)
    )


def _applied(store: ProcessStore) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.scalars(sa.select(applied.c.message_id)))


def _commits(engine: sa.Engine) -> list[int]:
    counted: list[int] = []
    sa.event.listen(engine, "commit", lambda _conn: counted.append(1))
    return counted


def _care_contact(message_id: str) -> dict[str, Any]:
    """A care-contact-stated message: BUP states an active care contact with the child."""
    return {
        "resourceType": "Bundle",
        "id": message_id,
        "type": "message",
        "timestamp": AT.isoformat(),
        "entry": [
            {
                "fullUrl": "urn:uuid:h",
                "resource": {
                    "resourceType": "MessageHeader",
                    "eventCoding": {"system": EVENT_SYSTEM, "code": str(EventCode.CARE_CONTACT_STATED)},
                },
            },
            {
                "fullUrl": "urn:uuid:e",
                "resource": {
                    "resourceType": "EpisodeOfCare",
                    "status": "active",
                    "managingOrganization": {"identifier": {"system": BUP[0], "value": BUP[1]}},
                    "period": {"start": AT.isoformat()},
                },
            },
        ],
    }


def _batch() -> list[ConsumerRecord]:
    return [
        record(EventCode.SIP_INITIATED, bundle("m1", SOCIAL, BU_HALSAN)),
        record(EventCode.SIP_INVITATION_ANSWERED, bundle("m2", BU_HALSAN, status="accepted")),
        record(EventCode.SIP_MEETING_SCHEDULED, bundle("m3", BU_HALSAN)),
    ]


@pytest.mark.asyncio
async def test_a_batch_commits_once_and_others_see_it_only_when_it_has(tracker, engine, other) -> None:
    commits = _commits(engine)
    batch = _batch()

    await tracker.prepare(batch)
    for message in batch:
        assert await tracker(message) == []
    seen_before = other.get("proc-1")
    tracker.before_commit()
    tracker.after_commit()

    assert seen_before is None  # nothing shows before the batch commits
    assert len(commits) == 1  # one commit for three messages (each committed on its own before)
    assert other.get("proc-1").state == "meeting-scheduled"
    assert _applied(other) == {"m1", "m2", "m3"}


class FailingDeadlines(Deadlines):
    """Fails while ``failing``, after the tracker wrote the message's state and parties (as a bug would)."""

    failing = False

    def close(self, conn: sa.Connection, **kwargs: Any) -> None:
        if self.failing:
            raise RuntimeError("a bug")
        super().close(conn, **kwargs)


@pytest.mark.asyncio
async def test_a_message_that_fails_rolls_back_only_itself(store, engine) -> None:
    deadlines = FailingDeadlines(engine)
    tracker = ProcessTracker(store=store, deadlines=deadlines, rules=RoutingRules(DIRECTORY))
    batch = _batch()

    await tracker.prepare(batch)
    await tracker(batch[0])
    deadlines.failing = True
    with pytest.raises(RuntimeError):  # the stage dead-letters it
        await tracker(batch[1])
    deadlines.failing = False
    await tracker(batch[2])
    tracker.before_commit()
    tracker.after_commit()

    assert _applied(store) == {"m1", "m3"}
    assert store.get("proc-1").parties == {
        "vasteras-socialtjanst": "invited",
        "vastmanland-bu-halsan": "invited",
    }
    assert store.get("proc-1").state == "meeting-scheduled"


@pytest.mark.asyncio
async def test_an_aborted_batch_writes_nothing_and_is_applied_when_read_again(tracker, store) -> None:
    batch = _batch()

    await tracker.prepare(batch)
    for message in batch:
        await tracker(message)
    tracker.after_abort()  # e.g. Kafka refused the transaction

    assert _applied(store) == set()
    assert store.get("proc-1") is None

    await tracker.prepare(batch)
    for message in batch:
        await tracker(message)
    tracker.before_commit()
    tracker.after_commit()
    assert store.get("proc-1").state == "meeting-scheduled"


@pytest.mark.asyncio
async def test_a_care_contact_stated_earlier_in_a_batch_counts_for_a_later_message_of_it(
    tracker, store
) -> None:
    sip = record(EventCode.SIP_INITIATED, bundle("m2", SOCIAL, BUP), process="proc-2")
    batch = [record(EventCode.CARE_CONTACT_STATED, _care_contact("m1"), process="care-1"), sip]

    await tracker.prepare(batch)
    await tracker(batch[0])
    stated = store.active("child", "vastmanland-bup")  # as the routing rules ask, inside the batch
    await tracker(batch[1])
    tracker.before_commit()
    tracker.after_commit()

    assert stated
    assert store.tasks_of("proc-2", "vastmanland-bup")  # BUP was asked: the rules saw its care contact


@pytest.mark.asyncio
async def test_a_message_handled_outside_a_batch_commits_on_its_own(tracker, store, engine) -> None:
    commits = _commits(engine)

    for message in _batch():
        await tracker(message)

    assert len(commits) == 3
    assert store.get("proc-1").state == "meeting-scheduled"
