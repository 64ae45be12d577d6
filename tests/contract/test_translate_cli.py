"""`sambus translate` on every source's events: the FHIR messages, or the field and the problem."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from typer.testing import CliRunner

from sambus.router.cli.contracts import EXAMPLES_DIR, GOLDEN_DIR
from sambus.router.cli.main import app


@pytest.mark.parametrize(
    "name",
    ["social.lvu32-exam-ordered", "ehr.health-exam-completed", "sip.plan-established", "ehr.fhir-consent"],
)
def test_translate_prints_the_golden_messages(name):
    path = EXAMPLES_DIR / f"se.sambus.{name}.v1.json"

    result = CliRunner().invoke(app, ["translate", str(path)])

    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    golden = json.loads((GOLDEN_DIR / path.name).read_text(encoding="utf-8"))
    # Bundle.timestamp is when the message was assembled: now, where the golden files use a fixed time.
    for bundle in (*printed, *golden):
        assert dt.datetime.fromisoformat(bundle.pop("timestamp")).tzinfo is not None
    assert printed == golden
    for bundle in printed:
        Bundle.model_validate(bundle)


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    [
        (
            "social.health-exam-requested",
            {"dentalCare": {"hsaId": "SE1"}},
            "data.dentalCare.hsaId: an HSA-id",
        ),
        ("ehr.task-status", {"status": "done"}, "data.status: Input should be"),
        ("sip.plan-established", {"followUp": None}, "data.followUp"),
        ("social.custody-updated", {"custody": "sole"}, "sole custody names 1 different guardian"),
        (  # fhir.resources raised TypeError here: a traceback, and "internal error" in the service
            "ehr.fhir-consent",
            {"contained": [{"resourceType": None, "id": "kind-school"}]},
            "data: not a valid FHIR Consent: a resource in it has a missing or unknown resourceType",
        ),
    ],
)
def test_translate_of_an_invalid_event_names_the_field_and_exits_1(tmp_path, name, change, expected):
    event = json.loads((EXAMPLES_DIR / f"se.sambus.{name}.v1.json").read_text(encoding="utf-8"))
    event["data"].update(change)
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")

    result = CliRunner().invoke(app, ["translate", str(path)])

    assert result.exit_code == 1
    assert expected in " ".join(result.output.split())
    assert "201203150006" not in result.output


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "the message is nested deeper than 64 levels"),
        (b'{"data":"' + b"x" * 600_000 + b'"}', "at most 524,288 bytes are read"),
    ],
    ids=["100000-deep", "600-kB"],
)
def test_translate_of_a_document_past_the_limits_names_the_limit_without_a_traceback(
    tmp_path, document, expected
):
    path = tmp_path / "event.json"
    path.write_bytes(document)

    result = subprocess.run(
        [str(Path(sys.executable).parent / "sambus"), "translate", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip

    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
