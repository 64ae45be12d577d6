"""Fault benchmark: the three-instance exactly-once test (tests/fault/test_exactly_once_cluster.py), longer.

    bash deploy/postgres/with-postgres.sh .venv/bin/python bench/bench_faults.py \
        [--intents 100000] [--kills 60] [--stops 6] [--timers 200] [--runs 3] [--no-baseline]

Each run is the same scenario twice, one after the other on the same machine: first without faults (the
baseline), then with SIGKILLs, SIGSTOPs longer than the session timeout and one broker crash. It prints,
for each, the wall time and the test's own counts (deliveries, duplicates, missing, ledger entries, timers
fired), and the ratio of the faulted run's time to the baseline's, as min/median/max over the runs.
Needs Java and Maven (the local three-broker cluster) and PostgreSQL (SAMBUS_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/fault/test_exactly_once_cluster.py"


def _run(*, intents: int, kills: int, stops: int, broker: bool, timers: int) -> tuple[float, str, bool]:
    env = {
        **os.environ,
        "SAMBUS_FAULT_INTENTS": str(intents),
        "SAMBUS_FAULT_KILLS": str(kills),
        "SAMBUS_FAULT_STOPS": str(stops),
        "SAMBUS_FAULT_BROKER": "1" if broker else "0",
        "SAMBUS_FAULT_TIMERS": str(timers),
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - pytest on this repository's own test
        [sys.executable, "-m", "pytest", TEST, "-q", "-s", "-p", "no:cacheprovider", "-o", "timeout=0"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    counts = "\n".join(
        line
        for line in result.stdout.splitlines()
        if line.startswith(("3 instances", "deliveries:", "ledger:", "timers:"))
    )
    return elapsed, counts or result.stdout[-2000:], result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--stops", type=int, default=6)
    parser.add_argument("--timers", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="first run the scenario without faults, for the time ratio (--no-baseline: the faulted runs' "
        "counts only, which is what exactly-once is judged by; half the time)",
    )
    args = parser.parse_args()
    ratios = []
    ok = True
    for run in range(1, args.runs + 1):
        if args.baseline:
            base, base_counts, base_ok = _run(
                intents=args.intents, kills=0, stops=0, broker=False, timers=args.timers
            )
            ok &= base_ok
            print(f"run {run}: baseline {base:.0f} s ({'passed' if base_ok else 'FAILED'})\n{base_counts}")
        faulted, counts, faulted_ok = _run(
            intents=args.intents, kills=args.kills, stops=args.stops, broker=True, timers=args.timers
        )
        ok &= faulted_ok
        print(f"run {run}: faulted {faulted:.0f} s ({'passed' if faulted_ok else 'FAILED'})\n{counts}")
        if args.baseline:
            ratios.append(faulted / base)
    if ratios:
        print(
            f"faulted / baseline time over {args.runs} runs: min {min(ratios):.2f}, "
            f"median {statistics.median(ratios):.2f}, max {max(ratios):.2f}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
