"""Compliance queries on a growing decision ledger: each filter's time at 100 k, 1 M and 10 M entries.

    .venv/bin/python bench/bench_ledger_query.py [--entries 10000000] [--repeat 3]

Grows a ledger (schema from the migrations, as ``sambus db upgrade`` makes it) to ``--entries`` rows in
SQLite (a temporary file) and, when SAMBUS_TEST_POSTGRES_URL is set, in PostgreSQL too (a fresh schema,
dropped afterwards), and at 100 k, 1 M and 10 M entries (those not above ``--entries``) times every filter the
compliance page and ``sambus consent query`` offer, through
:meth:`sambus.consent.compliance.Compliance.select`
with the CLI's default limit. The baseline, in the same run, is the same query with no filter (the ledger's
first page). Rows are written straight into the table (no hash chain: the bench is about reading), shaped
like real decisions: 40 recipients, 100 k children, outcomes mostly permits, 12 legal bases of which one is
rare, one decision every 6 seconds. SQLite is not ANALYZEd (sambus does not); PostgreSQL is, as autovacuum
would be after a load this size. It may take many minutes at 10 M: it is a bench, not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from sambus.consent.compliance import Compliance, LedgerQuery
from sambus.consent.ledger import entries
from sambus.router.service.schema import upgrade

CHECKPOINTS = (100_000, 1_000_000, 10_000_000)
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
STEP = dt.timedelta(seconds=6)
BATCH = 20_000
RECIPIENTS = [f"bench-recipient-{n:02d}" for n in range(40)]
CHILDREN = 100_000
OUTCOMES = (("permit", 80), ("permit_redacted", 10), ("await_consent", 8), ("deny", 2))
LEGAL_BASES = [
    *(f"OSL 12:2 consent, rule {n}; breaks OSL 26:1 (socialtjänst)" for n in range(11)),
    "OSL 10:2 (verify): necessary for social services' own task, as assessed; breaks OSL 26:1 (socialtjänst)",
]
RARE_BASIS = LEGAL_BASES[-1]
_BASIS_WEIGHTS = [100] * 11 + [1]


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _rows(first: int, count: int, rng: random.Random) -> list[dict[str, object]]:
    outcomes = rng.choices([o for o, _ in OUTCOMES], weights=[w for _, w in OUTCOMES], k=count)
    bases = rng.choices(range(len(LEGAL_BASES)), weights=_BASIS_WEIGHTS, k=count)
    return [
        {
            "seq": seq,
            "message_id": f"bench-{seq}",
            "recipient_id": RECIPIENTS[rng.randrange(len(RECIPIENTS))],
            "child": f"bench-child-{rng.randrange(CHILDREN)}",
            "identity_key_id": None,
            "identity": None,
            "event": "sip-initiated",
            "outcome": outcome,
            "rule_id": f"bench-rule-{basis}",
            "rule_version": 1,
            "legal_basis": LEGAL_BASES[basis],
            "reason": "bench",
            "removed": "[]",
            "decided_at": _iso(START + STEP * seq),
            "prev_hash": "0" * 64,
            "entry_hash": "0" * 64,
        }
        for seq, outcome, basis in zip(range(first, first + count), outcomes, bases, strict=True)
    ]


def _grow(engine: sa.Engine, have: int, want: int, rng: random.Random) -> None:
    while have < want:
        count = min(BATCH, want - have)
        with engine.begin() as conn:
            conn.execute(sa.insert(entries), _rows(have + 1, count, rng))
        have += count


def _filters(size: int) -> dict[str, LedgerQuery]:
    middle = (START + STEP * (size // 2)).replace(hour=0, minute=0, second=0, microsecond=0)
    newest = (START + STEP * size).replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "none (baseline)": LedgerQuery(),
        "child": LedgerQuery(child="bench-child-4711"),
        "recipient": LedgerQuery(recipient_id=RECIPIENTS[7]),
        "outcome deny": LedgerQuery(outcome="deny"),
        "legal basis (common)": LedgerQuery(legal_basis=LEGAL_BASES[3]),
        "legal basis (rare)": LedgerQuery(legal_basis=RARE_BASIS),
        "period: one day": LedgerQuery(since=middle, until=middle + dt.timedelta(days=1)),
        "period: since the newest day": LedgerQuery(since=newest),
        "recipient + outcome + period": LedgerQuery(
            recipient_id=RECIPIENTS[7], outcome="deny", since=middle, until=middle + dt.timedelta(days=30)
        ),
    }


def _time(work: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times


def bench(name: str, engine: sa.Engine, *, total: int, repeat: int, analyze: bool) -> None:
    """Grow the ledger in ``engine`` to each checkpoint up to ``total`` and time every filter there."""
    upgrade(engine)
    compliance = Compliance(engine)
    rng = random.Random(20261129)  # noqa: S311 - test data, not secrets
    have = 0
    for size in sorted({*(c for c in CHECKPOINTS if c < total), total}):
        start = time.perf_counter()
        _grow(engine, have, size, rng)
        have = size
        if analyze:
            with engine.begin() as conn:
                conn.execute(sa.text("ANALYZE ledger_entries"))
        print(
            f"\n{name}, {size:,} entries (grown in {time.perf_counter() - start:,.0f} s); ms min/median/max"
        )
        baseline = 0.0
        for label, query in _filters(size).items():
            found = len(compliance.select(query))  # warm the cache as a second search would
            times = _time(lambda query=query: compliance.select(query), repeat)
            median = statistics.median(times)
            baseline = baseline or median
            print(
                f"  {label:30} {min(times) * 1e3:9.1f} {median * 1e3:9.1f} {max(times) * 1e3:9.1f}"
                f"   x{median / baseline:7.1f} baseline   {found:5} found"
            )


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
    parser.add_argument("--entries", type=int, default=10_000_000, help="grow the ledger to this many")
    parser.add_argument("--repeat", type=int, default=3, help="times each query is timed (3)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            engine = sa.create_engine("sqlite:///" + str(Path(folder) / "bench.db"))
            bench("SQLite", engine, total=args.entries, repeat=args.repeat, analyze=False)
            engine.dispose()
    url = os.environ.get("SAMBUS_TEST_POSTGRES_URL")
    if url:
        with _postgres(url) as engine:
            bench("PostgreSQL", engine, total=args.entries, repeat=args.repeat, analyze=True)
    else:
        print(
            "\nPostgreSQL: skipped (set SAMBUS_TEST_POSTGRES_URL, e.g. via deploy/postgres/with-postgres.sh)"
        )


if __name__ == "__main__":
    main()
