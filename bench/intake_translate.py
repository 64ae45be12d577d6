"""Intake translation throughput against ``json.loads`` of the same events, measured in the same run.

Run: ``.venv/bin/python bench/intake_translate.py [--rounds N]``. Prints events/s for both and their ratio
(translate / json.loads); absolute numbers drift on shared machines, the ratio much less.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from sambus.adapters import translate_message

EXAMPLES = Path(__file__).resolve().parent.parent / "contracts" / "examples"


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
    rounds = parser.parse_args().rounds
    events = [p.read_bytes() for p in sorted(EXAMPLES.glob("*.json"))]
    for event in events:  # warm up, and make sure every example is valid
        translate_message(event)
    baseline = _rate(json.loads, events, rounds * 50)
    translated = _rate(translate_message, events, rounds)
    print(f"{len(events)} example events, {rounds} rounds")
    print(f"json.loads:        {baseline:12,.0f} events/s")
    print(f"translate_message: {translated:12,.0f} events/s")
    print(f"ratio translate / json.loads: {translated / baseline:.4f} (1 / {baseline / translated:,.0f})")


if __name__ == "__main__":
    main()
