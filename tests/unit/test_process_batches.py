"""The processes stage writes a batch in one database transaction, each message in a savepoint of its own."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord
from tests.consent.conftest import _postgres_engine as postgres_engine
from tests.unit.test_routing_processes import AT, BU_HALSAN, DENTAL, DIRECTORY, SOCIAL, bundle, record

from sambus.contracts.fhir import EVENT_SYSTEM, EventCode
from sambus.contracts.identifiers import HSA_ID_SYSTEM
from sambus.contracts.topics import Header
from sambus.router.routing.rules import RoutingRules
from sambus.router.service.schema import create_engine, upgrade
from sambus.router.stages.deadlines import Deadlines
from sambus.router.stages.deadlines import deadlines as deadline_rows
from sambus.router.stages.processes import ProcessStore, ProcessTracker, applied, asked_tasks

BUP = (HSA_ID_SYSTEM, "SE2321000206-1002")  # vastmanland-bup in the packaged directory


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path) -> Iterator[sa.Engine]:
    """A database made by the migrations: an SQLite file as sambus makes it, or a PostgreSQL schema."""
    if request.param == "sqlite":
        made = create_engine(f"sqlite:///{tmp_path / 'p.db'}")  # write-ahead log, busy timeout
        upgrade(made)
        yield made
        made.dispose()
        return
    postgres = postgres_engine()
    made = next(postgres)
    upgrade(made)
    yield made
    next(postgres, None)


@pytest.fixture
def other(engine) -> ProcessStore:
    """The same database as another reader sees it (a connection of its own for every question)."""
    return ProcessStore(engine)


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
    return _offsets(
        record(EventCode.SIP_INITIATED, bundle("m1", SOCIAL, BU_HALSAN)),
        record(EventCode.SIP_INVITATION_ANSWERED, bundle("m2", BU_HALSAN, status="accepted")),
        record(EventCode.SIP_MEETING_SCHEDULED, bundle("m3", BU_HALSAN)),
    )


def _offsets(*records: ConsumerRecord) -> list[ConsumerRecord]:
    """The records one after the other in their partition."""
    return [dataclasses.replace(one, offset=n) for n, one in enumerate(records)]


async def _stage(tracker: ProcessTracker, batch: list[ConsumerRecord]) -> list[BaseException | None]:
    """Handle ``batch`` as the stage does (prepare, each record, commit hooks): what each record raised."""
    raised: list[BaseException | None] = []
    await tracker.prepare(batch)
    for message in batch:
        try:
            assert await tracker(message) == []
        except Exception as exc:  # noqa: BLE001 - the stage dead-letters it; the test looks at it
            raised.append(exc)
        else:
            raised.append(None)
    tracker.before_commit()
    tracker.after_commit()
    return raised


@pytest.mark.asyncio
async def test_a_batch_commits_once(tracker, engine, other) -> None:
    commits = _commits(engine)

    assert await _stage(tracker, _batch()) == [None, None, None]

    assert len(commits) == 1  # one commit for three messages (each committed on its own before)
    assert other.get("proc-1").state == "meeting-scheduled"
    assert _applied(other) == {"m1", "m2", "m3"}


class FailingDeadlines(Deadlines):
    """Fails while the answer ``m2`` is applied, after its state and parties were written (as a bug would).

    It closes the answering unit's own deadlines: of these batches' messages only an answer does.
    """

    def close(self, conn: sa.Connection, **kwargs: Any) -> None:
        if kwargs.get("responsible") == "vastmanland-bu-halsan":
            raise RuntimeError("a bug")
        super().close(conn, **kwargs)


@pytest.mark.asyncio
async def test_a_message_that_fails_rolls_back_only_itself_and_is_raised_for_it(store, engine) -> None:
    tracker = ProcessTracker(store=store, deadlines=FailingDeadlines(engine), rules=RoutingRules(DIRECTORY))

    raised = await _stage(tracker, _batch())

    assert [type(exc).__name__ if exc else None for exc in raised] == [None, "RuntimeError", None]
    assert _applied(store) == {"m1", "m3"}
    assert store.get("proc-1").parties == {
        "vasteras-socialtjanst": "invited",
        "vastmanland-bu-halsan": "invited",
    }
    assert store.get("proc-1").state == "meeting-scheduled"


@pytest.mark.asyncio
async def test_a_batch_read_again_after_an_abort_changes_the_state_once(tracker, store) -> None:
    batch = _batch()
    await tracker.prepare(batch)
    for message in batch:
        await tracker(message)
    tracker.after_abort()  # e.g. Kafka refused the transaction: the batch is read again

    assert await _stage(tracker, batch) == [None, None, None]
    assert _applied(store) == {"m1", "m2", "m3"}
    assert store.get("proc-1").parties == {
        "vasteras-socialtjanst": "invited",
        "vastmanland-bu-halsan": "accepted",
    }


@pytest.mark.asyncio
async def test_a_care_contact_stated_earlier_in_a_batch_counts_for_a_later_message_of_it(
    tracker, store
) -> None:
    sip = record(EventCode.SIP_INITIATED, bundle("m2", SOCIAL, BUP), process="proc-2")
    batch = _offsets(record(EventCode.CARE_CONTACT_STATED, _care_contact("m1"), process="care-1"), sip)

    assert await _stage(tracker, batch) == [None, None]

    assert store.active("child", "vastmanland-bup")
    assert store.tasks_of("proc-2", "vastmanland-bup")  # BUP was asked: the rules saw its care contact


@pytest.mark.asyncio
async def test_a_message_handled_outside_a_batch_commits_on_its_own(tracker, store, engine) -> None:
    commits = _commits(engine)

    for message in _batch():
        await tracker(message)

    assert len(commits) == 3
    assert store.get("proc-1").state == "meeting-scheduled"


@pytest.mark.asyncio
async def test_a_long_batch_gives_the_write_lock_back_between_parts_and_applies_every_message(
    tracker, store, engine
) -> None:
    """A batch that takes longer than the lock budget commits in parts, so the ledger's appends get in
    between (one transaction for 500 messages held SQLite's write lock for seconds)."""
    tracker.LOCK_BUDGET_S = 0.0  # every look at the time ends a part (the default's 0.1 s on a real load)
    commits = _commits(engine)
    started = record(EventCode.SIP_INITIATED, bundle("m0", SOCIAL, BU_HALSAN))
    scheduled = [record(EventCode.SIP_MEETING_SCHEDULED, bundle(f"m{n}", BU_HALSAN)) for n in range(1, 45)]
    batch = _offsets(started, *scheduled)

    assert await _stage(tracker, batch) == [None] * 45

    assert len(commits) == 3  # parts of 20, 20 and 5 messages
    assert _applied(store) == {f"m{n}" for n in range(45)}
    assert store.get("proc-1").state == "meeting-scheduled"


def _with_id(one: ConsumerRecord, message_id: str) -> ConsumerRecord:
    """``one`` with the message-id header intake gives an intent."""
    return dataclasses.replace(one, headers=(*one.headers, (Header.MESSAGE_ID, message_id.encode())))


@pytest.mark.asyncio
async def test_a_batch_asks_once_which_messages_were_applied_and_applies_each_once(
    tracker, store, engine
) -> None:
    await _stage(
        tracker, _offsets(_with_id(record(EventCode.SIP_INITIATED, bundle("m1", SOCIAL, BU_HALSAN)), "m1"))
    )
    reads: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _note(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "process_messages" in statement:
            reads.append(statement)

    raised = await _stage(
        tracker,
        _offsets(
            _with_id(
                record(EventCode.SIP_INITIATED, bundle("m1", SOCIAL, BU_HALSAN)), "m1"
            ),  # an earlier batch's
            _with_id(
                record(EventCode.SIP_INVITATION_ANSWERED, bundle("m2", BU_HALSAN, status="accepted")), "m2"
            ),
            _with_id(
                record(EventCode.SIP_INVITATION_ANSWERED, bundle("m3", SOCIAL, status="rejected")), "m3"
            ),
            _with_id(
                record(EventCode.SIP_INVITATION_ANSWERED, bundle("m2", BU_HALSAN, status="accepted")), "m2"
            ),
            # A header that names another message: the Bundle's own id counts, asked on its own.
            _with_id(record(EventCode.SIP_MEETING_SCHEDULED, bundle("m4", BU_HALSAN)), "m2"),
        ),
    )

    assert raised == [None] * 5
    assert len(reads) == 2  # the batch's ids at once, and m4's own
    process = store.get("proc-1")
    assert process.parties == {"vasteras-socialtjanst": "declined", "vastmanland-bu-halsan": "accepted"}
    assert process.state == "meeting-scheduled"
    assert _applied(store) == {"m1", "m2", "m3", "m4"}


def _savepoints(engine: sa.Engine) -> list[str]:
    made: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _note(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("SAVEPOINT"):
            made.append(statement)

    return made


@pytest.mark.asyncio
async def test_a_batch_where_nothing_fails_is_written_without_a_savepoint_per_message(
    tracker, store, engine
) -> None:
    savepoints = _savepoints(engine)

    assert await _stage(tracker, _batch()) == [None, None, None]

    assert savepoints == []
    assert _applied(store) == {"m1", "m2", "m3"}
    assert store.get("proc-1").state == "meeting-scheduled"


@pytest.mark.asyncio
async def test_a_failure_in_a_batch_written_without_savepoints_undoes_only_its_own_message(
    store, engine
) -> None:
    tracker = ProcessTracker(store=store, deadlines=FailingDeadlines(engine), rules=RoutingRules(DIRECTORY))
    savepoints = _savepoints(engine)
    batch = _offsets(
        *_batch(),
        record(EventCode.SIP_INITIATED, bundle("m4", SOCIAL, BU_HALSAN), process="proc-2"),
    )

    raised = await _stage(tracker, batch)

    assert [type(exc).__name__ if exc else None for exc in raised] == [None, "RuntimeError", None, None]
    assert len(savepoints) == 4  # written again, each message in a savepoint, once m2 failed
    assert _applied(store) == {"m1", "m3", "m4"}
    assert store.get("proc-1").parties == {
        "vasteras-socialtjanst": "invited",
        "vastmanland-bu-halsan": "invited",
    }
    assert store.get("proc-2").state == "invited"


def _applied_writes(engine: sa.Engine) -> list[int]:
    """How many rows each statement writing ``process_messages`` wrote."""
    made: list[int] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _note(_conn, _cursor, statement, parameters, _context, executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT") and "process_messages" in statement:
            made.append(len(parameters) if executemany else 1)

    return made


@pytest.mark.asyncio
async def test_a_clean_batch_writes_its_applied_messages_in_one_statement_under_their_processes(
    tracker, store, engine
) -> None:
    writes = _applied_writes(engine)
    batch = _offsets(
        *_batch(),
        record(EventCode.SIP_INITIATED, bundle("m4", SOCIAL, BU_HALSAN), process="proc-2"),
        record(EventCode.SIP_INITIATED, bundle("m4", SOCIAL, BU_HALSAN), process="proc-2"),  # sent again
    )

    assert await _stage(tracker, batch) == [None] * 5

    assert writes == [4]  # one statement for the batch (one per message before)
    with engine.connect() as conn:
        rows = {tuple(row) for row in conn.execute(sa.select(applied.c.message_id, applied.c.process_id))}
    assert rows == {("m1", "proc-1"), ("m2", "proc-1"), ("m3", "proc-1"), ("m4", "proc-2")}
    assert store.get("proc-1").state == "meeting-scheduled"


@pytest.mark.asyncio
async def test_a_message_whose_header_names_another_is_applied_once_when_repeated_in_a_batch(
    tracker, store, engine
) -> None:
    writes = _applied_writes(engine)
    scheduled = _with_id(record(EventCode.SIP_MEETING_SCHEDULED, bundle("m9", BU_HALSAN)), "other")

    raised = await _stage(tracker, _offsets(*_batch(), scheduled, scheduled))

    assert raised == [None] * 5
    assert writes == [4]
    assert _applied(store) == {"m1", "m2", "m3", "m9"}


def _selects(engine: sa.Engine) -> list[str]:
    made: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _note(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "(SELECT")):
            made.append(statement)

    return made


@pytest.mark.asyncio
async def test_a_batch_reads_its_processes_and_its_childrens_joint_planning_once(
    tracker, store, engine
) -> None:
    selects = _selects(engine)
    batch = _offsets(
        *(
            _with_id(
                record(EventCode.SIP_INITIATED, bundle(f"m{n}", SOCIAL, BU_HALSAN), process=f"proc-{n}"),
                f"m{n}",
            )
            for n in range(1, 5)
        ),
        _with_id(record(EventCode.SIP_INVITATION_ANSWERED, bundle("m5", BU_HALSAN, status="accepted")), "m5"),
    )

    assert await _stage(tracker, batch) == [None] * 5

    # Which messages were applied, the processes, the children's joint planning: one read each. Main's code
    # read a process and a child's joint planning per SIP (9 reads); the answer reads its process again,
    # which the batch's first message changed.
    assert len(selects) == 4
    assert [store.get(f"proc-{n}").state for n in range(1, 5)] == ["invited"] * 4
    assert store.get("proc-1").parties == {
        "vasteras-socialtjanst": "invited",
        "vastmanland-bu-halsan": "accepted",
    }


def _joint_planning_closed(engine: sa.Engine, process_id: str) -> bool:
    with engine.connect() as conn:
        closed_at = conn.scalar(
            sa.select(deadline_rows.c.closed_at).where(
                deadline_rows.c.deadline_id == f"{process_id}:joint-planning"
            )
        )
    return closed_at is not None


@pytest.mark.asyncio
@pytest.mark.parametrize("batched", [False, True])
async def test_a_sip_after_its_childs_acute_placement_in_the_same_batch_closes_its_joint_planning(
    tracker, engine, batched
) -> None:
    acute = bundle("m2", BU_HALSAN, DENTAL, restriction={"period": {"end": "2026-11-16"}})
    messages = [
        record(EventCode.SIP_INITIATED, bundle("m1", BU_HALSAN), process="proc-1"),  # none pending yet
        record(EventCode.PLACEMENT_STARTED, acute, process="proc-2"),  # now one is
        record(EventCode.SIP_INITIATED, bundle("m3", BU_HALSAN), process="proc-3"),  # ... which this closes
    ]

    if batched:
        assert await _stage(tracker, _offsets(*messages)) == [None] * 3
    else:
        for message in messages:
            assert await _stage(tracker, [message]) == [None]

    assert _joint_planning_closed(engine, "proc-2")


def _inserts(engine: sa.Engine) -> list[tuple[str, int]]:
    """Each INSERT run: its table and how many rows."""
    made: list[tuple[str, int]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _note(_conn, _cursor, statement, parameters, _context, executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            made.append((statement.split()[2], len(parameters) if executemany else 1))

    return made


def _starts(count: int) -> list[ConsumerRecord]:
    return _offsets(
        *(
            _with_id(
                record(EventCode.SIP_INITIATED, bundle(f"m{n}", SOCIAL, BU_HALSAN), process=f"proc-{n}"),
                f"m{n}",
            )
            for n in range(1, count + 1)
        )
    )


@pytest.mark.asyncio
async def test_a_clean_batch_of_starts_inserts_each_tables_rows_in_one_statement(
    tracker, store, engine
) -> None:
    inserts = _inserts(engine)

    assert await _stage(tracker, _starts(4)) == [None] * 4

    tables = [table.strip('"') for table, _rows in inserts]
    assert len(tables) == len(set(tables))  # one statement per table (main: one per message and table)
    assert ("processes", 4) in [(table.strip('"'), rows) for table, rows in inserts]
    assert [store.get(f"proc-{n}").parties for n in range(1, 5)] == [
        {"vasteras-socialtjanst": "invited", "vastmanland-bu-halsan": "invited"}
    ] * 4
    with engine.connect() as conn:
        tasks = conn.execute(sa.select(asked_tasks.c.process_id, asked_tasks.c.owner)).all()
    assert sorted(tasks) == sorted(
        (f"proc-{n}", owner)
        for n in range(1, 5)
        for owner in ("vasteras-socialtjanst", "vastmanland-bu-halsan")
    )


@pytest.mark.asyncio
async def test_a_held_insert_that_fails_fails_only_its_own_message(tracker, store, engine) -> None:
    with engine.begin() as conn:  # a Task of proc-2 kept already: its start's insert of it fails
        conn.execute(
            asked_tasks.insert(),
            {"process_id": "proc-2", "task_id": "t1", "owner": "vastmanland-bu-halsan", "requester": "x"},
        )

    raised = await _stage(tracker, _starts(3))

    assert [type(exc).__name__ if exc else None for exc in raised] == [None, "StoreUnavailableError", None]
    assert _applied(store) == {"m1", "m3"}
    assert store.get("proc-2") is None
    assert store.get("proc-3").state == "invited"
