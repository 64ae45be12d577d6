"""Compliance queries on a growing decision ledger: each filter's time at 100 k, 1 M and 10 M entries.

    .venv/bin/python bench/bench_ledger_query.py [--entries 10000000] [--repeat 3] [--keep DIR]

Grows a ledger (schema from the migrations, as ``sambus db upgrade`` makes it) to ``--entries`` rows in
SQLite (a temporary file) and, when SAMBUS_TEST_POSTGRES_URL is set, in PostgreSQL too (a fresh schema,
dropped afterwards), and at 100 k, 1 M and 10 M entries (those not above ``--entries``) times every filter
the compliance page and ``sambus consent query`` offer, through
:meth:`sambus.consent.compliance.Compliance.select` with a :class:`~sambus.consent.compliance.LedgerQuery`'s
default limit of 1,000 (more than the page's 500 and ``sambus consent query``'s 100). The baseline, in the
same run, is the same query with no filter (the ledger's first page). Each filter is timed once as the first
search of it (its pages in the OS's cache at best, not in the database's own), then ``--repeat`` times as a
search asked again; besides wall-clock time it prints the CPU time this process spent (Python's and SQLite's
work, not PostgreSQL's server), which the load of other work on the machine bends least.

Rows are written straight into the ledger's table (no hash chain: the bench is about reading) and copied to
its compliance projection (``ledger_search``, which holds the filters' indexes), shaped like real decisions:
40 recipients, 100 k children, outcomes mostly permits, 12 legal bases of which one is rare, one decision
every 6 seconds. They are bulk-loaded with the projection's indexes dropped and made again after each step
(SQLite: executemany in transactions of 200 k rows, journal and sync off for this throw-away file;
PostgreSQL: COPY), so 10 M entries take minutes, not hours. SQLite is not ANALYZEd (sambus does not);
PostgreSQL is VACUUMed and ANALYZEd, as autovacuum would after inserts this many (so an index-only scan of
the projection needs no visits to its table). It is a bench, not a test.

With ``--keep DIR`` the grown ledgers are kept (SQLite: ``DIR/bench.db``; PostgreSQL: the schema
``bench_kept``) and a later run with the same ``--keep`` reuses them: it migrates them (``upgrade``, so a new
migration's indexes are made on the kept rows), skips the checkpoints below what they hold, and grows them
only if ``--entries`` asks for more. So the filters can be timed again at 10 M without building 10 M again.
Delete ``DIR`` and ``DROP SCHEMA bench_kept CASCADE`` when done.

With ``--behind N`` every filter is timed once more at the largest size with the newest ``N`` entries taken
out of the projection, so each search also reads them from the ledger by key, as while the projector is behind
(it copies up to 5,000 entries per transaction, within about half a second of an append); the answers must
be the same as with the projection caught up, which is then made whole again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from common import postgres_schema

from sambus.consent.compliance import Compliance, LedgerEntry, LedgerQuery
from sambus.consent.ledger import HASHED, entries, project, search
from sambus.router.service.schema import upgrade

CHECKPOINTS = (100_000, 1_000_000, 10_000_000)
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
STEP = dt.timedelta(seconds=6)
BATCH = 200_000
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


_COLUMNS = ("seq", *HASHED, "prev_hash", "entry_hash")
_NO_HASH = "0" * 64


def _rows(first: int, count: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    outcomes = rng.choices([o for o, _ in OUTCOMES], weights=[w for _, w in OUTCOMES], k=count)
    bases = rng.choices(range(len(LEGAL_BASES)), weights=_BASIS_WEIGHTS, k=count)
    recipients = rng.choices(RECIPIENTS, k=count)
    children = [f"bench-child-{n}" for n in rng.choices(range(CHILDREN), k=count)]
    for seq, outcome, basis, recipient, child in zip(
        range(first, first + count), outcomes, bases, recipients, children, strict=True
    ):
        yield (
            seq,
            f"bench-{seq}",
            recipient,
            child,
            None,
            None,
            "sip-initiated",
            outcome,
            f"bench-rule-{basis}",
            1,
            LEGAL_BASES[basis],
            "bench",
            "[]",
            _iso(START + STEP * seq),
            _NO_HASH,
            _NO_HASH,
        )


def _grow(engine: sa.Engine, have: int, want: int, rng: random.Random) -> None:
    """Bulk-load entries ``have + 1`` to ``want`` and copy them to the compliance projection.

    The projection's indexes are dropped, the rows loaded and copied (:func:`sambus.consent.ledger.project`,
    as a ledger does after its appends, here in one chunk), the indexes made again.
    """
    with engine.begin() as conn:
        for index in search.indexes:
            index.drop(conn)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA journal_mode = OFF")
            cursor.execute("PRAGMA synchronous = OFF")
            cursor.execute("PRAGMA cache_size = -1000000")
            insert = str(sa.insert(entries).compile(dialect=engine.dialect, column_keys=list(_COLUMNS)))
            while have < want:
                count = min(BATCH, want - have)
                cursor.executemany(insert, list(_rows(have + 1, count, rng)))
                raw.commit()
                have += count
        else:
            with cursor.copy(f"COPY ledger_entries ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                while have < want:
                    count = min(BATCH, want - have)
                    for row in _rows(have + 1, count, rng):
                        copy.write_row(row)
                    have += count
            raw.commit()
        cursor.close()
    finally:
        raw.close()
    project(engine, chunk=want)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SET maintenance_work_mem = '512MB'"))
        for index in search.indexes:
            index.create(conn)


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
        "recipient + outcome": LedgerQuery(recipient_id=RECIPIENTS[7], outcome="deny"),
        "recipient + legal basis (rare)": LedgerQuery(recipient_id=RECIPIENTS[7], legal_basis=RARE_BASIS),
        "outcome + legal basis (rare)": LedgerQuery(outcome="deny", legal_basis=RARE_BASIS),
        "outcome + legal basis (common)": LedgerQuery(outcome="deny", legal_basis=LEGAL_BASES[3]),
        "child + outcome": LedgerQuery(child="bench-child-4711", outcome="permit"),
        "child + recipient + period": LedgerQuery(
            child="bench-child-4711", recipient_id=RECIPIENTS[7], since=START, until=middle
        ),
        "all five": LedgerQuery(
            child="bench-child-4711",
            recipient_id=RECIPIENTS[7],
            outcome="permit",
            legal_basis=LEGAL_BASES[3],
            since=START,
            until=newest,
        ),
    }


def _time(work: Callable[[], object], repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds (this process: Python, and SQLite's own work) of ``repeat`` runs."""
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        work()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return times, cpu


def bench(name: str, engine: sa.Engine, *, total: int, repeat: int, analyze: bool, behind: int = 0) -> None:
    """Grow the ledger in ``engine`` to each checkpoint up to ``total`` and time every filter there."""
    start = time.perf_counter()
    upgrade(engine)
    compliance = Compliance(engine)
    with engine.connect() as conn:
        have = int(conn.scalar(sa.select(sa.func.max(entries.c.seq))) or 0)
    # a kept ledger grows on with other random rows than a fresh one would (seeded by its size)
    rng = random.Random(20261129 + have)  # noqa: S311 - test data, not secrets
    if have:
        print(
            f"\n{name}: reusing a kept ledger of {have:,} entries"
            f" (migrated in {time.perf_counter() - start:,.0f} s)"
        )
    for size in sorted({*(c for c in CHECKPOINTS if have <= c < total), max(total, have)}):
        start = time.perf_counter()
        if size > have:
            _grow(engine, have, size, rng)
            have = size
        if analyze:  # as autovacuum does after inserts (PostgreSQL 13+): statistics, and the visibility map
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE ledger_entries"))
                conn.execute(sa.text("VACUUM ANALYZE ledger_search"))
        print(
            f"\n{name}, {size:,} entries (grown in {time.perf_counter() - start:,.0f} s); ms: the first"
            f" search, then {repeat} more min/median/max, their median CPU time in this process; load"
            f" {os.getloadavg()[0]:.1f}"
        )
        answers = _time_filters(compliance, size, repeat)
        if behind and size == max(total, have):
            _time_behind(name, engine, compliance, size=size, behind=behind, repeat=repeat, answers=answers)


def _time_filters(compliance: Compliance, size: int, repeat: int) -> dict[str, list[LedgerEntry]]:
    """Time every filter on a ledger of ``size`` entries and print one line each; returns the answers."""
    baseline = 0.0
    answers = {}
    for label, query in _filters(size).items():
        # the first search finds the pages it needs in the OS's cache at best (not in SQLite's or
        # PostgreSQL's own); the next ones as a second search of the same filter would
        (first,), _ = _time(functools.partial(compliance.select, query), 1)
        answers[label] = compliance.select(query)
        times, cpu = _time(functools.partial(compliance.select, query), repeat)
        median = statistics.median(times)
        baseline = baseline or median
        print(
            f"  {label:30} {first * 1e3:8.1f} {min(times) * 1e3:9.1f} {median * 1e3:9.1f}"
            f" {max(times) * 1e3:9.1f} {statistics.median(cpu) * 1e3:9.1f} cpu"
            f"   x{median / baseline:5.1f} baseline   {len(answers[label]):5} found"
        )
    return answers


def _time_behind(
    name: str,
    engine: sa.Engine,
    compliance: Compliance,
    *,
    size: int,
    behind: int,
    repeat: int,
    answers: dict[str, list[LedgerEntry]],
) -> None:
    """Time every filter again with the projection ``behind`` entries behind the ledger, then catch it up.

    The newest ``behind`` entries are taken out of the projection, so each search also reads them from the
    ledger itself (:meth:`Compliance.tail_statement`), as while the projector is behind. Each answer must be
    the one the caught-up projection gave.
    """
    with engine.begin() as conn:
        conn.execute(sa.delete(search).where(search.c.seq > size - behind))
    try:
        print(f"\n{name}, {size:,} entries, the newest {behind:,} not yet in the projection; ms as above")
        again = _time_filters(compliance, size, repeat)
    finally:
        project(engine, chunk=behind)
    differ = [label for label in answers if again[label] != answers[label]]
    if differ:
        raise SystemExit(f"{name}: answers differ with the projection behind: {differ}")


KEPT_SCHEMA = "bench_kept"


@contextmanager
def _sqlite(keep: Path | None) -> Iterator[sa.Engine]:
    with tempfile.TemporaryDirectory() as folder:
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine("sqlite:///" + str((keep or Path(folder)) / "bench.db"))
        try:
            yield engine
        finally:
            engine.dispose()


def main() -> None:
    """Run the benchmark on SQLite, and on PostgreSQL when SAMBUS_TEST_POSTGRES_URL is set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000, help="grow the ledger to this many")
    parser.add_argument("--repeat", type=int, default=3, help="times each query is timed (3)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--behind",
        type=int,
        default=0,
        metavar="N",
        help=(
            "at the largest size, time every filter again with the newest N entries not yet copied to the"
            " compliance projection (read from the ledger itself, as while its projector is behind); 0: not"
        ),
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help=(
            f"keep the grown ledgers (SQLite in DIR/bench.db, PostgreSQL in the schema {KEPT_SCHEMA})"
            " and reuse them when they are there: migrated, grown only to reach --entries,"
            " timed at the size they hold"
        ),
    )
    args = parser.parse_args()
    if not args.no_sqlite:
        with _sqlite(args.keep) as engine:
            bench("SQLite", engine, total=args.entries, repeat=args.repeat, analyze=False, behind=args.behind)
    url = os.environ.get("SAMBUS_TEST_POSTGRES_URL")
    if url:
        with postgres_schema(url, KEPT_SCHEMA if args.keep is not None else None) as engine:
            bench(
                "PostgreSQL", engine, total=args.entries, repeat=args.repeat, analyze=True, behind=args.behind
            )
    else:
        print(
            "\nPostgreSQL: skipped (set SAMBUS_TEST_POSTGRES_URL, e.g. via deploy/postgres/with-postgres.sh)"
        )


if __name__ == "__main__":
    main()
