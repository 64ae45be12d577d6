"""Intake translation throughput against ``json.loads`` of the same events, measured in the same run.

Run: ``.venv/bin/python bench/intake_translate.py [--rounds N] [--runs 3] [--validate]``. Prints events/s for
both and their ratio (translate / json.loads) for each run, then the ratio's min/median/max; absolute numbers
drift on shared machines, the ratio much less. The service translates without validating the builders'
output with ``fhir.resources`` (the tests do); ``--validate`` measures with that validation on, as before.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from sambus.adapters import translate_message
from sambus.contracts.fhir import set_validation

EXAMPLES = Path(__file__).resolve().parent.parent / "contracts" / "examples"
GOAL = 1 / 60


def _rate(work: Callable[[bytes], object], events: list[bytes], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        for event in events:
            work(event)
    return rounds * len(events) / (time.perf_counter() - start)


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="passes over every example (default 20)")
    parser.add_argument("--runs", type=int, default=3, help="measurements, each against its own baseline (3)")
    parser.add_argument("--validate", action="store_true", help="validate every resource with fhir.resources")
    args = parser.parse_args()
    events = [p.read_bytes() for p in sorted(EXAMPLES.glob("*.json"))]
    set_validation(enabled=True)
    for event in events:  # warm up, and make sure every example is valid
        translate_message(event)
    set_validation(enabled=args.validate)
    print(
        f"{len(events)} example events, {args.rounds} rounds, validation {'on' if args.validate else 'off'}"
    )
    ratios = []
    for run in range(1, args.runs + 1):
        baseline = _rate(json.loads, events, args.rounds * 50)
        translated = _rate(translate_message, events, args.rounds)
        ratios.append(translated / baseline)
        print(
            f"run {run}: json.loads {baseline:12,.0f} events/s, "
            f"translate_message {translated:10,.0f} events/s, "
            f"ratio {translated / baseline:.4f} (1 / {baseline / translated:,.0f})"
        )
    print(
        f"ratio translate / json.loads: min {min(ratios):.4f}, median {statistics.median(ratios):.4f}, "
        f"max {max(ratios):.4f} (goal >= {GOAL:.4f}, 1 / 60)"
    )


if __name__ == "__main__":
    main()
