"""The scale-out run of deploy/scale-out/scale_out.py, as CI runs it.

Three brokers, PostgreSQL, two ``sambus run --stage`` instances of every stage group, the demo's workload
plus 10,000 SIP events (``SAMBUS_SCALE_OUT_EVENTS``), each inviting one agency. Mid-run the delivery
group's instance 1 gets SIGTERM and the intake group's instance 1 SIGKILL; the other instance of each must
take over, and a ``read_committed`` read must find every delivery exactly once. The script checks and
reports; this test runs it and says what its report says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ports import port_block

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(1500)]

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "scale-out" / "scale_out.py"
PORT = port_block("SAMBUS_TEST_SCALE_OUT_PORT", 29600, 6)
EVENTS = int(os.environ.get("SAMBUS_SCALE_OUT_EVENTS", "10000"))


def test_two_instances_of_every_stage_group_deliver_exactly_once_and_take_over_a_stopped_one(tmp_path):
    if not os.environ.get("SAMBUS_TEST_POSTGRES_URL"):
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("no PostgreSQL: set SAMBUS_TEST_POSTGRES_URL", pytrace=False)
        pytest.skip("no PostgreSQL: set SAMBUS_TEST_POSTGRES_URL (deploy/postgres/with-postgres.sh does)")
    report_file = tmp_path / "report.json"

    command = [sys.executable, str(SCRIPT), "--events", str(EVENTS), "--port", str(PORT)]
    with subprocess.Popen(
        [*command, "--report", str(report_file)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    ) as run:
        try:
            _, stderr = run.communicate(timeout=1350)
        except subprocess.TimeoutExpired:
            run.terminate()  # the script stops its instances and brokers and drops its schema
            _, stderr = run.communicate(timeout=120)

    progress = stderr[-6000:]
    assert report_file.exists(), f"the run did not finish (exit {run.returncode}):\n{progress}"
    report = json.loads(report_file.read_text(encoding="utf-8"))
    print(f"\n{progress}")  # noqa: T201 - the run's times and counts are what this test reports
    counts = report["counts"]
    assert report["failures"] == [], f"{report['failures']}; counts {counts}; logs in {report['logs']}"
    assert run.returncode == 0
    assert counts["deliveries_read"] == counts["deliveries_distinct"] == EVENTS + 2
    assert counts["delivery_duplicates"] == 0
    assert counts["intents_read"] == counts["intents_distinct"] == EVENTS + 1
    assert counts["ledger_entries"] == counts["ledger_distinct"] == EVENTS + 3
    assert (counts["parked"], counts["dead_letters"]) == (1, 1)
    groups = report["queues_before"]
    assert {"intake", "delivery", "parked", "processes"} <= set(groups)
    assert all(sorted(members) == ["0", "1"] for members in groups.values()), groups
    stopped = {stop["instance"]: stop["signal"] for stop in report["stops"]}
    assert stopped == {"delivery/1": "SIGTERM", "intake/1": "SIGKILL"}
    assert list(report["queues_after"]["delivery"]) == ["0"]
    assert list(report["queues_after"]["intake"]) == ["0"]
