"""The compliance projection: written after the append, never needed for a complete answer.

An append writes the ledger's two B-trees; the compliance filters' indexes live on ``ledger_search``, which a
:class:`~sambus.consent.ledger.Projector` fills after the append has committed. A compliance query reads the
projection and, for what is not copied yet, the ledger itself: its answer is the same however far behind the
projection is, and once it has caught up the projection holds exactly the ledger's entries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time

import pytest
import sqlalchemy as sa

from sambus.consent import DecisionLedger
from sambus.consent.compliance import Compliance, LedgerEntry, LedgerQuery
from sambus.consent.ledger import SEARCHED, LedgerDecision, Projector, entries, project, search
from sambus.router.service.schema import upgrade

from .ledger_records import T0, record

RECIPIENTS = ("vasteras-socialtjanst", "vastmanland-bup", "vasteras-skola")
OUTCOMES = ("permit", "permit_redacted", "await_consent", "deny")
BASES = ("OSL 12:2 (samtycke)", "OSL 10:28 with LVU 32 §; breaks OSL 26:1 (socialtjänst)")


def _records(count: int, rng: random.Random, first: int = 1):
    return [
        record(
            n,
            recipient=rng.choice(RECIPIENTS),
            outcome=rng.choice(OUTCOMES),
            child=f"child-{rng.randrange(5)}",
            legal_basis=rng.choice(BASES),
            # decision times out of ledger order, as when a batch holds older intents
            decided_at=T0 + dt.timedelta(minutes=rng.randrange(count)),
        )
        for n in range(first, first + count)
    ]


QUERIES = [
    LedgerQuery(),
    LedgerQuery(limit=7),
    LedgerQuery(child="child-3"),
    LedgerQuery(recipient_id="vastmanland-bup", limit=5),
    LedgerQuery(outcome="deny"),
    LedgerQuery(legal_basis=BASES[1], outcome="permit"),
    LedgerQuery(recipient_id="vasteras-skola", legal_basis=BASES[0], limit=3),
    LedgerQuery(since=T0 + dt.timedelta(minutes=10), until=T0 + dt.timedelta(minutes=30)),
    LedgerQuery(child="child-1", recipient_id="vastmanland-bup", outcome="await_consent"),
]


def _expected(engine: sa.Engine, query: LedgerQuery) -> list[int]:
    """The answer worked out by hand from every ledger entry: the seqs matching, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(entries)).mappings().all()

    def matches(row) -> bool:
        wanted = {k: v for k, v in query.filters().items() if k not in {"since", "until", "limit"}}
        if any(row[{"child": "child"}.get(k, k)] != v for k, v in wanted.items()):
            return False
        moment = dt.datetime.fromisoformat(row["decided_at"])
        return (query.since is None or moment >= query.since) and (
            query.until is None or moment < query.until
        )

    found = sorted((row["decided_at"], row["seq"]) for row in rows if matches(row))
    return [seq for _, seq in found[: query.limit]]


def _projected(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(search).order_by(search.c.seq))]


def _entries_as_projected(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        columns = [entries.c[name] for name in SEARCHED]
        return [tuple(row) for row in conn.execute(sa.select(*columns).order_by(entries.c.seq))]


@pytest.fixture
def ledger(engine) -> DecisionLedger:
    upgrade(engine)
    return DecisionLedger(engine, project_after=False)  # the tests copy when they choose


def test_the_answer_is_the_same_before_during_and_after_the_projection_catches_up(ledger, engine):
    rng = random.Random(12)  # noqa: S311 - test data
    for start in range(1, 61, 20):
        ledger.append(_records(20, rng, first=start))
    compliance = Compliance(engine)
    expected = {query: _expected(engine, query) for query in QUERIES}
    assert all(expected[q] for q in QUERIES if q.child != "child-1"), "the data leaves some queries empty"

    answers = []
    for copied in (0, 7, 25, 60):  # nothing, a few, most and all of the ledger in the projection
        if copied:
            project(engine, chunk=copied - len(_projected(engine)), once=True)
            assert len(_projected(engine)) == copied
        answers.append({query: [e.seq for e in compliance.select(query)] for query in QUERIES})

    assert answers == [expected] * 4


def test_once_caught_up_the_projection_holds_exactly_the_ledgers_entries(ledger, engine):
    rng = random.Random(7)  # noqa: S311 - test data
    first = _records(30, rng)
    ledger.append(first)
    assert project(engine, chunk=4) == 30  # in chunks of four, each in order
    ledger.append(_records(5, rng, first=31))
    assert ledger.append([first[2], record(36)]) == 1  # one of them already there

    assert project(engine) == 6
    assert project(engine) == 0
    assert _projected(engine) == _entries_as_projected(engine)


def test_a_projection_behind_is_read_past_and_a_caught_up_one_alone_answers(ledger, engine):
    ledger.append([record(n) for n in range(1, 4)])
    compliance = Compliance(engine)
    statements: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def seen(*args) -> None:
        statements.append(" ".join(args[2].split()))

    assert [e.seq for e in compliance.select(LedgerQuery())] == [1, 2, 3]
    project(engine)
    assert [e.seq for e in compliance.select(LedgerQuery())] == [1, 2, 3]

    tails = [s for s in statements if s.startswith("SELECT") and "ledger_entries.seq >" in s]
    assert (
        len(tails) == 2
    )  # each query also reads the entries after the projection's last (none, the 2nd time)


def test_with_a_full_page_projected_only_the_uncopied_entries_that_could_displace_one_are_read(
    ledger, engine
):
    # 20 copied entries a minute apart; then 30 not copied: 29 decided after the whole ledger, and one
    # decided (late in the ledger, early in time) between the copied ones' 2nd and 3rd
    ledger.append([record(n) for n in range(1, 21)])
    project(engine)
    late = [record(n, decided_at=T0 + dt.timedelta(hours=2, minutes=n)) for n in range(21, 50)]
    early = record(50, decided_at=T0 + dt.timedelta(minutes=2, seconds=30))
    ledger.append([*late, early])
    compliance = Compliance(engine)
    tails: list[tuple[str, object]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def seen(_conn, _cursor, statement, parameters, *_args) -> None:
        if "ledger_entries.seq >" in " ".join(statement.split()):
            tails.append((statement, parameters))

    page = compliance.select(LedgerQuery(limit=10))
    sa.event.remove(engine, "before_cursor_execute", seen)

    assert [e.seq for e in page] == [1, 2, 50, *range(3, 10)]
    [(statement, parameters)] = tails
    with engine.connect() as conn:
        sent = [row[0] for row in conn.exec_driver_sql(statement, parameters)]
    # not the 29 decided later (on the code before, 10 of them: as many as the limit, sorted out in Python)
    assert sent == [50]


def test_a_ledger_copies_its_appends_to_the_projection_in_a_thread_of_its_own(engine):
    upgrade(engine)
    ledger = DecisionLedger(engine)
    assert ledger.projector is not None
    for start in range(1, 50, 7):
        ledger.append([record(n) for n in range(start, start + 7)])

    deadline = time.monotonic() + 60
    while len(_projected(engine)) < 49 and time.monotonic() < deadline:
        ledger.projector.wait(1)
    assert _projected(engine) == _entries_as_projected(engine)
    assert len(_projected(engine)) == 49


def test_the_projector_thread_ends_when_idle_and_a_new_append_starts_another(engine):
    upgrade(engine)
    ledger = DecisionLedger(engine, project_after=False)
    projector = Projector(engine, idle_s=0.05)
    ledger.append([record(1)])
    projector.wake()
    assert projector.wait(60)
    deadline = time.monotonic() + 60
    while projector.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not projector.running

    ledger.append([record(2)])
    projector.wake()
    assert projector.wait(60)
    assert [row[0] for row in _projected(engine)] == [1, 2]


def test_a_projector_that_cannot_copy_logs_only_the_error_type_and_copies_at_the_next_wake_up(engine, caplog):
    upgrade(engine)
    ledger = DecisionLedger(engine, project_after=False)
    projector = Projector(engine)
    ledger.append([record(1)])
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE ledger_search RENAME TO ledger_search_away"))
    projector.wake()
    assert projector.wait(60)
    assert "copying ledger entries to the compliance projection failed: StoreUnavailableError" in caplog.text

    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE ledger_search_away RENAME TO ledger_search"))
    projector.wake()
    assert projector.wait(60)
    assert [row[0] for row in _projected(engine)] == [1]


def test_an_entry_read_back_is_the_decision_appended_with_its_place_and_hash(ledger, engine):
    appended = record(4, removed=("Patient.address", "Observation"))
    ledger.append([appended])
    project(engine)

    (found,) = Compliance(engine).select(LedgerQuery())

    with engine.connect() as conn:
        hash_ = conn.scalar(sa.select(entries.c.entry_hash))
    fields = {f.name: getattr(appended, f.name) for f in dataclasses.fields(LedgerDecision)}
    assert found == LedgerEntry(**fields, seq=1, entry_hash=hash_)
    assert vars(found) == vars(LedgerEntry(**fields, seq=1, entry_hash=hash_))
    assert found.decided_at.tzinfo is dt.UTC
