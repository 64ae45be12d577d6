"""`sambus demo`, the README's first command, against the test broker: what a new user sees.

Only CI's `make demo` ran the demo before; a change elsewhere (a new notice to the initiator) broke it without
any test failing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sambus.router.dev.demo import DEMO_CHILD

SAMBUS = Path(sys.executable).with_name("sambus")

pytestmark = pytest.mark.timeout(240)


def _rows(output: str) -> dict[str, list[str]]:
    """The table's rows by topic (the first cell), each as its cells with wrapped lines joined."""
    rows: dict[str, list[str]] = {}
    topic = ""
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if cells[0]:
            topic = cells[0]
            rows[topic] = cells
        else:  # a wrapped continuation of the row above
            rows[topic] = [f"{a} {b}".strip() for a, b in zip(rows[topic], cells, strict=True)]
    return rows


def test_demo_shows_two_deliveries_a_parked_copy_a_waiting_notice_and_a_dead_letter(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "SAMBUS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "COLUMNS": "240",
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [str(SAMBUS), "demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=200, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert set(rows) == {
        "deliver.vasteras-skola-sodra",
        "deliver.vasteras-socialtjanst",
        "deliver.vastmanland-bu-halsan",
        "sambus.parked",
        "sambus.dlq",
    }, result.stdout
    assert rows["deliver.vasteras-socialtjanst"][1:3] == ["permit", "212000-2080"]
    assert rows["deliver.vastmanland-bu-halsan"][1:3] == ["permit", "SE2321000206-1001"]
    assert rows["sambus.parked"][1:3] == ["await_consent", "SE2321000206-1003"]
    assert "no consent in force for sip covering dental" in rows["sambus.parked"][4]
    assert rows["deliver.vasteras-skola-sodra"][1:3] == ["notice", "19800002"]  # the school: dental waits
    assert rows["sambus.dlq"][1] == "dead letter"
    assert "wrong check digit" in rows["sambus.dlq"][4]
    full_number = DEMO_CHILD.replace("-", "")
    assert DEMO_CHILD not in result.stdout
    assert full_number not in result.stdout
    assert "The Kafka key is a keyed pseudonym of the child" in result.stdout
