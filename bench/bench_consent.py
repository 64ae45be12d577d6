"""Consent decisions per second and batched ledger appends per second, against plain inserts in the same run.

    .venv/bin/python bench/bench_consent.py [--decisions 2000] [--entries 20000] [--batch 100] [--runs 3]
        [--project-every 2000]

Runs on SQLite (a temporary file) and, when SAMBUS_TEST_POSTGRES_URL is set, on PostgreSQL too (a fresh
schema, dropped afterwards). The baseline is a plain batched INSERT of rows of the same shape into the same
database (a table with only its primary key), one transaction per batch like the ledger's. Baseline and ledger
batches alternate, each timed on its own, so both see the same load on a busy, shared machine where absolute
times drift.

The ledger's appends are timed as a delivery waits for them (its unique constraint and key, no other index).
The copy of the entries to the compliance projection (``ledger_search`` and its eight indexes), which a
ledger makes in a thread of its own after the append, is made here in the timed loop after every
``--project-every`` entries and timed on its own: "appends + projection/s" counts both, i.e. all the work the
ledger makes the database do. Also shown, for what it explains: plain inserts into a table of the ledger's
shape with the eight compliance indexes on it, as the ledger had them before migration 0012. Each run prints
its ratios; the summary gives min/median/max.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from common import postgres_schema

from sambus.consent import (
    CheckpointSigner,
    ConsentPolicy,
    ConsentRegistry,
    DecisionLedger,
    DecisionRequest,
    LedgerRecord,
    Pseudonymizer,
    RuleSet,
)
from sambus.consent.ledger import entries as ledger_entries
from sambus.consent.ledger import project, search
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.fhir import EventCode
from sambus.contracts.identifiers import luhn_valid
from sambus.contracts.registry_facts import (
    ConsentGiven,
    Custody,
    CustodyUpdated,
    GivenBy,
    HiddenResidenceDecided,
)
from sambus.router.service.schema import create_engine, upgrade

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
CHILDREN = 200
KINDS = (AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN, AgencyKind.DENTAL, AgencyKind.SCHOOL)
PLAIN_COLUMNS = (
    "message_id",
    "recipient_id",
    "child",
    "event",
    "outcome",
    "rule_id",
    "legal_basis",
    "reason",
    "decided_at",
)
BUNDLE = {
    "resourceType": "Bundle",
    "type": "message",
    "entry": [
        {"resource": {"resourceType": "MessageHeader"}},
        {"resource": {"resourceType": "Patient", "address": [{"city": "Västerås"}]}},
        {"resource": {"resourceType": "Task"}},
    ],
}


def _number(n: int) -> str:
    stem = f"2012{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return next(stem + str(c) for c in range(10) if luhn_valid(stem[2:] + str(c)))


def _rate(count: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def _record(n: int, prefix: str) -> LedgerRecord:
    return LedgerRecord(
        message_id=f"{prefix}{n}",
        recipient_id="vasteras-socialtjanst",
        child=f"{n % CHILDREN:064x}",
        event="sip-initiated",
        outcome="permit",
        rule_id="sip-consent",
        rule_version=1,
        legal_basis="OSL 12:2 (samtycke)",
        reason="the guardians' consent c-1 covers sip with social_services",
        decided_at=T0 + dt.timedelta(seconds=n),
    )


def _baseline_tables(engine: sa.Engine) -> tuple[sa.Table, sa.Table]:
    """The bare table (its key only) and one of the ledger's shape with the compliance indexes on it."""
    plain = sa.Table(
        "bench_plain_inserts",
        sa.MetaData(),
        sa.Column("seq", sa.Integer, primary_key=True),
        *(sa.Column(name, sa.String(1000)) for name in PLAIN_COLUMNS),
    )
    indexed = ledger_entries.to_metadata(sa.MetaData(), name="bench_indexed_inserts")
    for constraint in indexed.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            constraint.name = "bench_uq_indexed"
    for index in search.indexes:  # the compliance indexes, on the ledger's shape as before 0012
        sa.Index(f"bench_{index.name}", *(indexed.c[c.name] for c in index.columns))
    plain.metadata.create_all(engine)
    indexed.metadata.create_all(engine)
    return plain, indexed


def bench(
    engine: sa.Engine, *, decisions: int, entries: int, batch: int, project_every: int
) -> dict[str, float]:
    """Measure one database; returns the rates."""
    pseudonyms = Pseudonymizer(secrets.token_bytes(32))
    upgrade(engine)
    registry = ConsentRegistry(engine, pseudonyms)
    children = [_number(n) for n in range(CHILDREN)]
    guardian = _number(CHILDREN + 1)
    registry.apply(
        [
            CustodyUpdated(
                child=child, guardians=(guardian,), custody=Custody.SOLE, at=T0 - dt.timedelta(days=1)
            )
            for child in children
        ]
        + [
            ConsentGiven(
                consent_id=f"c-{n}",
                child=child,
                purpose=Purpose.SIP,
                agency_kinds=frozenset(KINDS[:2]),
                given_by=GivenBy.GUARDIAN,
                guardians=(guardian,),
                valid_from=T0,
                valid_to=None,
                recorded_at=T0,
            )
            for n, child in enumerate(children)
        ]
        + [
            HiddenResidenceDecided(decision_id=f"h-{n}", child=child, valid_from=T0, valid_to=None)
            for n, child in enumerate(children[::10])
        ]
    )
    policy = ConsentPolicy(registry, RuleSet.load())
    requests = [
        DecisionRequest(
            message_id=f"m{n}",
            event=EventCode.SIP_INITIATED,
            child=pseudonyms.of(children[n % CHILDREN]),
            recipient_id="r",
            recipient_kind=KINDS[n % len(KINDS)],
            at=T0 + dt.timedelta(days=1),
            bundle=BUNDLE,
        )
        for n in range(decisions)
    ]

    ledger = DecisionLedger(
        engine, signer=CheckpointSigner.generate(), checkpoint_every=1000, project_after=False
    )
    plain, indexed = _baseline_tables(engine)
    timed = {
        "plain inserts/s": 0.0,
        "indexed inserts/s": 0.0,
        "ledger appends/s": 0.0,
        "appends + projection/s": 0.0,
        "projection": 0.0,
    }
    projected = 0

    def clock(label: str, work: Callable[[], object]) -> None:
        started = time.perf_counter()
        work()
        timed[label] += time.perf_counter() - started

    for start in range(0, entries, batch):
        numbers = range(start, min(start + batch, entries))
        plain_rows = [
            {name: getattr(r, name) for name in PLAIN_COLUMNS if name != "decided_at"}
            | {"decided_at": r.decided_at.isoformat()}
            for r in (_record(n, "p") for n in numbers)
        ]
        indexed_rows = [_indexed_row(n, "i") for n in numbers]
        records = [_record(n, "l") for n in numbers]

        def insert_plain(rows: list[dict[str, object]] = plain_rows) -> None:
            with engine.begin() as conn:
                conn.execute(plain.insert(), rows)

        def insert_indexed(rows: list[dict[str, object]] = indexed_rows) -> None:
            with engine.begin() as conn:
                conn.execute(indexed.insert(), rows)

        clock("plain inserts/s", insert_plain)

        def append(batch: list[LedgerRecord] = records) -> None:
            ledger.append(batch)

        clock("ledger appends/s", append)
        if numbers[-1] + 1 - projected >= project_every or numbers[-1] + 1 == entries:
            clock("projection", lambda: project(engine))
            projected = numbers[-1] + 1
        clock("indexed inserts/s", insert_indexed)

    def decide_all() -> None:
        for request in requests:
            policy.decide(request)

    timed["appends + projection/s"] = timed["ledger appends/s"] + timed.pop("projection")
    rates = {label: entries / seconds for label, seconds in timed.items()}
    rates["decisions/s"] = _rate(decisions, decide_all)
    assert ledger.count() == entries
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(search)) == entries
    return rates


def _indexed_row(n: int, prefix: str) -> dict[str, object]:
    """A row as the ledger writes it, with made-up hashes: for the indexed baseline."""
    r = _record(n, prefix)
    return {
        "seq": n + 1,
        **{name: getattr(r, name) for name in PLAIN_COLUMNS if name != "decided_at"},
        "decided_at": r.decided_at.isoformat(),
        "identity_key_id": None,
        "identity": None,
        "rule_version": r.rule_version,
        "removed": "[]",
        "prev_hash": f"{n:064x}",
        "entry_hash": f"{n + 1:064x}",
    }


def _report(name: str, rates: dict[str, float]) -> None:
    base = rates["plain inserts/s"]
    print(f"{name}:")
    for label, rate in rates.items():
        print(f"  {label:<24} {rate:>10,.0f}   ratio to plain inserts {rate / base:6.3f}")


def _summary(name: str, runs: list[dict[str, float]]) -> None:
    print(f"{name}, {len(runs)} runs, ratio to plain inserts min / median / max:")
    for label in runs[0]:
        ratios = sorted(run[label] / run["plain inserts/s"] for run in runs)
        print(
            f"  {label:<24} {ratios[0]:6.3f} / {statistics.median(ratios):6.3f} / {ratios[-1]:6.3f}"
            f"   ({statistics.median(run[label] for run in runs):,.0f}/s median)"
        )


def main() -> None:
    """Run the benchmark on SQLite, and on PostgreSQL when SAMBUS_TEST_POSTGRES_URL is set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--project-every", type=int, default=2000, help="entries between projection copies")
    args = parser.parse_args()
    sizes = {
        "decisions": args.decisions,
        "entries": args.entries,
        "batch": args.batch,
        "project_every": args.project_every,
    }
    print(
        f"{args.decisions} decisions, {args.entries} ledger entries in batches of {args.batch}, "
        f"copied to the projection every {args.project_every}"
    )
    url = os.environ.get("SAMBUS_TEST_POSTGRES_URL")
    runs = []
    for run in range(args.runs):  # each in a database of its own
        with tempfile.TemporaryDirectory() as folder:
            engine = create_engine("sqlite:///" + str(Path(folder) / "bench.db"))  # as sambus opens it: WAL
            runs.append(bench(engine, **sizes))
            engine.dispose()
        _report(f"SQLite, run {run + 1}", runs[-1])
    summaries = [("SQLite", runs)]
    if url:
        runs = []
        for run in range(args.runs):
            with postgres_schema(url) as engine:
                runs.append(bench(engine, **sizes))
            _report(f"PostgreSQL, run {run + 1}", runs[-1])
        summaries.append(("PostgreSQL", runs))
    else:
        print("PostgreSQL: skipped (set SAMBUS_TEST_POSTGRES_URL, e.g. via deploy/postgres/with-postgres.sh)")
    print()
    for name, done in summaries:
        _summary(name, done)


if __name__ == "__main__":
    main()
