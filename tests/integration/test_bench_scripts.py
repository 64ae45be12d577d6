"""The benches on Kafka or PostgreSQL, and the slower ones, run as a user runs them at their smallest size.

As tests/unit/test_bench_scripts.py, for the benches that need a broker (the test broker, through
KAFKA_BOOTSTRAP_SERVERS, which every one of them reads) or the tests' PostgreSQL server: each with the
smallest arguments that still take it through every phase (probe, drains in both orders, paced latency),
asserting its exit code 0 and the figures it promises, each ratio as min / median / max. bench_faults.py is
not run: it is tests/fault/test_exactly_once_cluster.py (which CI runs) longer, on a three-broker cluster.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.unit.test_bench_scripts import run_bench, summary


def postgres_url() -> str:
    """The tests' PostgreSQL server (deploy/postgres/with-postgres.sh sets it); fails in CI, else skips."""
    url = os.environ.get("SAMBUS_TEST_POSTGRES_URL")
    if not url:
        message = "no PostgreSQL: set SAMBUS_TEST_POSTGRES_URL (deploy/postgres/with-postgres.sh does)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


@pytest.mark.slow
def test_parked_outputs_are_those_of_the_parked_stage_as_it_was_measured(tmp_path: Path) -> None:
    """Fixed key and clock: the digests are the ones f647988 printed (so no output of the stage moved)."""
    output = run_bench("parked_outputs.py", str(tmp_path))

    records = "318e4061912ee1be95847e2955a50ab90bf4907771c60c3aa1711260f2c6a1fd"
    ledger = "d8b17fbcb9cef54b8d2bcca107610748989f91e10ccf443542bc6b77bd7b6f4f"
    assert output.splitlines()[-2:] == [
        f"3120 records, sha256 (Bundle timestamps masked) {records}",
        f"2401 ledger rows, sha256 {ledger}",
    ]


@pytest.mark.postgres
def test_consent_on_postgres_prints_every_ratio() -> None:
    output = run_bench(
        "bench_consent.py",
        *("--decisions", "20", "--entries", "100", "--batch", "50", "--runs", "2", "--project-every", "50"),
        env={"SAMBUS_TEST_POSTGRES_URL": postgres_url()},
    )

    table = output.split("PostgreSQL, 2 runs, ratio to plain inserts min / median / max:")[1]
    for label in ("plain inserts/s", "ledger appends/s", "appends + projection/s", "decisions/s"):
        line = next(line for line in table.splitlines() if line.strip().startswith(label))
        low, mid, high = (float(x) for x in re.findall(r"\d+\.\d{3}", line))
        assert 0 < low <= mid <= high, line


@pytest.mark.postgres
def test_ledger_query_on_postgres_times_every_filter() -> None:
    output = run_bench(
        "bench_ledger_query.py",
        *("--entries", "1000", "--repeat", "2", "--behind", "10", "--no-sqlite"),
        env={"SAMBUS_TEST_POSTGRES_URL": postgres_url()},
    )

    assert "PostgreSQL, 1,000 entries" in output
    assert "SQLite" not in output
    assert len(re.findall(r" found$", output, re.MULTILINE)) == 2 * 16  # caught up, then behind


def on_kafka(script: str, kafka_bootstrap: str, *args: str, timeout: float = 110.0) -> str:
    """:func:`run_bench` on the tests' broker."""
    return run_bench(script, *args, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}, timeout=timeout)


DRAIN_TIMEOUT_S = 300
"""A drain bench's test at most: bench_pipeline took 90 s of the usual 120 at load average 8 on 2 cores."""


PHASES = ("probe", "round0", "round1")
"""The drains of a side in a drain bench (bench_router, bench_pipeline) with ``--rounds 2``."""


def drain_bench(script: str, kafka_bootstrap: str, backlog: str, drain_seconds: str) -> str:
    """A drain bench's smallest run: both orders of the sides (2 rounds), 20 paced, 1 run (``backlog``:
    its probe's size option and value)."""
    return on_kafka(
        script,
        kafka_bootstrap,
        *backlog.split(),
        *("--drain-seconds", drain_seconds, "--rounds", "2", "--rate", "20", "--seconds", "1"),
        *("--runs", "1", "--timeout", "60"),
        timeout=DRAIN_TIMEOUT_S - 10,
    )


def assert_drains(output: str, drains: tuple[str, ...], counted: str) -> None:
    """Every drain named (``<side> <phase>``) printed its line: how many it drained, in how many seconds."""
    for drain in drains:
        assert re.search(rf"^    {drain} +\d+ {counted} in +[\d.]+ s: ", output, re.MULTILINE), drain


def assert_summaries(output: str, *labels: str) -> None:
    """Every summary line named printed min <= median <= max, above zero."""
    for label in labels:
        assert summary(output, label)[0] > 0, label


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(DRAIN_TIMEOUT_S)
def test_router_bench_drains_both_sides_in_turns_and_prints_its_ratios(kafka_bootstrap: str) -> None:
    output = drain_bench("bench_router.py", kafka_bootstrap, "--intents 50", "1")

    assert_drains(
        output, tuple(f"{side} {phase}" for side in ("baseline", "stage") for phase in PHASES), "intents"
    )
    for side in ("baseline", "stage"):
        assert re.search(
            rf"^    {side} at 20/s: p50 [\d.]+ ms, p99 [\d.]+ ms of \d+ records", output, re.MULTILINE
        )
    assert_summaries(
        output,
        "throughput ratio router/baseline (goal >= 0.5)",
        "p99 latency ratio router/baseline (goal <= 3)",
        "CPU ratio baseline/router per intent",
    )
    assert "did not finish" not in output


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(DRAIN_TIMEOUT_S)
def test_pipeline_bench_drains_both_sides_in_turns_and_prints_its_ratios(kafka_bootstrap: str) -> None:
    output = drain_bench("bench_pipeline.py", kafka_bootstrap, "--events 30", "0.2")

    assert_drains(
        output,
        tuple(f"{side}{phase}" for side in ("baseline r1-", "sambus   ") for phase in PHASES),
        "events",
    )
    assert re.search(r"^    peak RSS +[\d.]+ MB", output, re.MULTILINE)
    assert_summaries(
        output,
        "throughput ratio sambus/baseline (goal >= 0.1)",
        "p99 latency ratio sambus/baseline",
        "max RSS of a sambus process (<= 250 MB)",
        "CPU ms per event, all sambus processes",
    )


@pytest.mark.kafka
@pytest.mark.slow
def test_operations_bench_prints_the_page_against_the_whole_topic_read(kafka_bootstrap: str) -> None:
    output = on_kafka("bench_operations.py", kafka_bootstrap, "--dead-letters", "200", "--runs", "2")

    assert "200 dead letters seeded in" in output
    assert_summaries(
        output,
        "read the dead-letter topic whole (before)",
        "GET /operations (kept clients, new records only)",
    )
    assert re.search(r"^ratio /operations / whole-topic read: [\d.]+x", output, re.MULTILINE)


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(DRAIN_TIMEOUT_S)
def test_stage_floor_bench_drains_both_sides_in_turns_and_prints_its_ratios(kafka_bootstrap: str) -> None:
    output = drain_bench("bench_stage_floor.py", kafka_bootstrap, "--outputs 4 --intents 50", "1")

    assert_drains(
        output, tuple(f"{side} {phase}" for side in ("baseline", "floor x4") for phase in PHASES), "intents"
    )
    assert "4 output(s) per intent, 1 runs:" in output
    assert_summaries(
        output,
        "throughput ratio floor/baseline",
        "CPU per intent ratio baseline/floor",
        "p99 latency ratio floor/baseline",
    )
    assert "did not finish" not in output
