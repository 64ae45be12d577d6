"""The benches without Kafka run as a user runs them, at a tiny size, and print their ratios.

Nothing else runs the scripts in bench/: a change to what they import broke one unnoticed before. These run
each one in a process of its own from the repository's root (the command line its docstring gives), and
check that it ends with exit code 0 and prints every figure it promises, each ratio as min / median / max.
The figures themselves are not judged: at this size, on a shared machine, they mean nothing.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

from sambus.contracts.fhir._validated import ENVIRONMENT_VARIABLE

ROOT = Path(__file__).resolve().parents[2]

SQLITE_ONLY = {"SAMBUS_TEST_POSTGRES_URL": ""}
"""The environment for a bench that also runs on PostgreSQL when this is set (CI sets it)."""

NUMBER = r"(-?[\d,]+(?:\.\d+)?|nan)"
UNIT = r"(?:\s*[a-z]+)?,?"
MIN_MEDIAN_MAX = re.compile(rf"min\s+{NUMBER}{UNIT}\s+median\s+{NUMBER}{UNIT}\s+max\s+{NUMBER}")
"""A summary: ``min 0.149  median 0.151  max 0.160`` (each figure with its unit, or a comma, or neither)."""


def run_bench(script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 110.0) -> str:
    """Run ``bench/<script>`` with ``args`` as a user would; its output (exit code 0 asserted)."""
    environment = {**os.environ, **(env or {})}
    environment.pop(ENVIRONMENT_VARIABLE, None)  # the tests validate FHIR output everywhere, a user does not
    result = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def summary(output: str, label: str) -> tuple[float, float, float]:
    """The min, median and max of the first summary line that starts with ``label`` (asserted in order)."""
    lines = [line for line in output.splitlines() if line.strip().startswith(label)]
    assert lines, f"no line {label!r} in:\n{output}"
    found = MIN_MEDIAN_MAX.search(lines[0])
    assert found, f"no min/median/max in {lines[0]!r}"
    low, mid, high = (float(figure.replace(",", "")) for figure in found.groups())
    assert all(math.isfinite(x) for x in (low, mid, high)), lines[0]
    assert low <= mid <= high, lines[0]
    return low, mid, high


def test_intake_translate_prints_each_run_and_its_ratio() -> None:
    output = run_bench("intake_translate.py", "--rounds", "1", "--runs", "2")

    assert len(re.findall(r"^run \d: json.loads .* ratio \d\.\d{4}", output, re.MULTILINE)) == 2
    assert summary(output, "ratio translate / json.loads")[0] > 0


def test_stage_instrumentation_prints_both_ratios() -> None:
    output = run_bench("bench_stage_instrumentation.py", "--records", "50", "--rounds", "2")

    for handler in ("intake (real work)", "pass-through"):
        line = next((line for line in output.splitlines() if line.startswith(handler)), "")
        assert re.search(r"bare .* rec/s .* with metrics\+tracing .* ratio \d+\.\d{3}$", line), output


def test_consent_on_sqlite_prints_every_ratio() -> None:
    output = run_bench(
        "bench_consent.py",
        *("--decisions", "20", "--entries", "100", "--batch", "50", "--runs", "2", "--project-every", "50"),
        env=SQLITE_ONLY,
    )

    assert "SQLite, run 2:" in output
    assert "PostgreSQL: skipped" in output
    figures = (
        "plain inserts/s",
        "indexed inserts/s",
        "ledger appends/s",
        "appends + projection/s",
        "decisions/s",
    )
    table = output.split("SQLite, 2 runs, ratio to plain inserts min / median / max:")[1]
    for label in figures:
        line = next(line for line in table.splitlines() if line.strip().startswith(label))
        low, mid, high = (float(x) for x in re.findall(r"\d+\.\d{3}", line))
        assert 0 < low <= mid <= high, line


def test_ledger_query_at_its_smallest_times_every_filter_caught_up_and_behind() -> None:
    output = run_bench(
        "bench_ledger_query.py",
        "--entries",
        "1000",
        "--repeat",
        "2",
        "--behind",
        "10",
        env=SQLITE_ONLY,
    )

    caught_up, behind = output.split("the newest 10 not yet in the projection")
    for section in (caught_up, behind):
        rows = re.findall(
            r"^  (\S.*?)\s+(?:[\d.]+\s+){5}cpu\s+x\s+[\d.]+ baseline\s+\d+ found$", section, re.MULTILINE
        )
        assert rows[0] == "none (baseline)"
        assert rows[-1] == "all five"
        assert len(rows) == 16  # the filters the compliance page offers, and the baseline
    assert "PostgreSQL: skipped" in output


def test_stage_cpu_prints_each_stage_for_each_backlog_and_their_ratio(tmp_path: Path) -> None:
    output = run_bench(
        "bench_stage_cpu.py",
        "--events",
        "50",
        "--runs",
        "2",
        "--backlogs",
        "0,50",
        "--profile",
        str(tmp_path),
    )

    for backlog in ("0", "50"):
        table = output.split(f"parked backlog {backlog}:\n")[1]
        for stage in ("intake", "delivery", "processes", "parked (per record)", "all stages (per event)"):
            assert summary(table, stage)[0] > 0
    assert summary(output, "all stages per event, backlog 50 / backlog 0")[0] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "delivery.prof",
        "intake.prof",
        "parked.prof",
        "processes.prof",
    ]
