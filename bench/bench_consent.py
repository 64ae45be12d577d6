"""Consent decisions per second and batched ledger appends per second, against plain inserts in the same run.

    .venv/bin/python bench/bench_consent.py [--decisions 2000] [--entries 20000] [--batch 100]

Runs on SQLite (a temporary file) and, when SAMBUS_TEST_POSTGRES_URL is set, on PostgreSQL too (a fresh
schema, dropped afterwards). The baseline is a plain batched INSERT of rows of the same shape into the same
database, so the ratios hold on a busy, shared machine where absolute times drift.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

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
from sambus.router.service.schema import upgrade

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


def bench(engine: sa.Engine, *, decisions: int, entries: int, batch: int) -> dict[str, float]:
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

    ledger = DecisionLedger(engine, signer=CheckpointSigner.generate(), checkpoint_every=1000)
    plain = sa.Table(
        "bench_plain_inserts",
        sa.MetaData(),
        sa.Column("seq", sa.Integer, primary_key=True),
        *(
            sa.Column(name, sa.String(1000))
            for name in ("message_id", "recipient_id", "child", "event", "outcome")
        ),
        *(sa.Column(name, sa.String(1000)) for name in ("rule_id", "legal_basis", "reason", "decided_at")),
    )
    plain.metadata.create_all(engine)

    def plain_inserts() -> None:
        for start in range(0, entries, batch):
            rows = [
                {
                    "message_id": r.message_id,
                    "recipient_id": r.recipient_id,
                    "child": r.child,
                    "event": r.event,
                    "outcome": r.outcome,
                    "rule_id": r.rule_id,
                    "legal_basis": r.legal_basis,
                    "reason": r.reason,
                    "decided_at": r.decided_at.isoformat(),
                }
                for r in (_record(n, "p") for n in range(start, min(start + batch, entries)))
            ]
            with engine.begin() as conn:
                conn.execute(plain.insert(), rows)

    def ledger_appends() -> None:
        for start in range(0, entries, batch):
            ledger.append([_record(n, "l") for n in range(start, min(start + batch, entries))])

    def decide_all() -> None:
        for request in requests:
            policy.decide(request)

    rates = {"plain inserts/s": _rate(entries, plain_inserts)}
    rates["ledger appends/s"] = _rate(entries, ledger_appends)
    rates["decisions/s"] = _rate(decisions, decide_all)
    assert ledger.count() == entries
    return rates


def _report(name: str, rates: dict[str, float]) -> None:
    base = rates["plain inserts/s"]
    print(f"{name}:")
    for label, rate in rates.items():
        print(f"  {label:<18} {rate:>10,.0f}   ratio to plain inserts {rate / base:6.3f}")


@contextmanager
def _postgres(url: str) -> Iterator[sa.Engine]:
    schema = f"bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def main() -> None:
    """Run the benchmark on SQLite, and on PostgreSQL when SAMBUS_TEST_POSTGRES_URL is set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    sizes = {"decisions": args.decisions, "entries": args.entries, "batch": args.batch}
    print(f"{args.decisions} decisions, {args.entries} ledger entries in batches of {args.batch}")
    with tempfile.TemporaryDirectory() as folder:
        engine = sa.create_engine("sqlite:///" + str(Path(folder) / "bench.db"))
        _report("SQLite", bench(engine, **sizes))
        engine.dispose()
    url = os.environ.get("SAMBUS_TEST_POSTGRES_URL")
    if url:
        with _postgres(url) as engine:
            _report("PostgreSQL", bench(engine, **sizes))
    else:
        print("PostgreSQL: skipped (set SAMBUS_TEST_POSTGRES_URL, e.g. via deploy/postgres/with-postgres.sh)")


if __name__ == "__main__":
    main()
