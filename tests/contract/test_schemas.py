"""The checked-in JSON Schemas and AsyncAPI document match the models; drift fails."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from sambus.contracts.events import EVENT_TYPES
from sambus.contracts.export import asyncapi, documents, event_schema
from sambus.contracts.topics import Topics
from sambus.router.cli.contracts import EXAMPLES_DIR, SCHEMAS_DIR
from sambus.router.cli.main import app


def test_checked_in_schemas_match_the_models():
    for name, text in documents().items():
        path = SCHEMAS_DIR / name
        assert path.exists(), f"{name} is not checked in; run `sambus contracts export`"
        assert path.read_text(encoding="utf-8") == text, f"{name} drifted; run `sambus contracts export`"


def test_there_is_a_schema_for_every_event_type_and_nothing_else():
    files = {p.name.removesuffix(".schema.json") for p in (SCHEMAS_DIR / "events").glob("*.json")}

    assert files == set(EVENT_TYPES)


def test_a_schema_fixes_the_type_and_describes_the_data():
    schema = event_schema("se.sambus.social.lvu32-exam-ordered.v1")

    assert schema["properties"]["type"]["const"] == "se.sambus.social.lvu32-exam-ordered.v1"
    assert set(schema["required"]) >= {"type", "id", "source", "time", "data"}
    data = schema["$defs"]["Lvu32ExamOrdered"]
    assert data["additionalProperties"] is False
    assert {"child", "orderedOn", "due"} <= set(data["required"])


def test_asyncapi_names_every_topic_and_every_event_type():
    document = asyncapi()
    addresses = {channel["address"] for channel in document["channels"].values()}
    topics = Topics()

    assert {topics.agency_events(k) for k in ("school", "social", "ehr")} <= addresses
    assert {topics.intents, topics.dlq, topics.parked, "deliver.{recipient}"} <= addresses
    on_agency_topics = {
        name
        for channel in document["channels"].values()
        for name in channel["messages"]
        if name.startswith("se.")
    }
    assert on_agency_topics == set(EVENT_TYPES)


def test_export_check_fails_when_a_file_drifted(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.setattr("sambus.router.cli.contracts.SCHEMAS_DIR", tmp_path)
    (tmp_path / "asyncapi.json").write_text(json.dumps({"asyncapi": "stale"}), encoding="utf-8")

    result = runner.invoke(app, ["contracts", "export", "--check"])

    assert result.exit_code == 1
    assert "asyncapi.json: differs" in result.output
    assert "missing" in result.output


def test_export_check_passes_on_the_checked_in_contract():
    result = CliRunner().invoke(app, ["contracts", "export", "--check"])

    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_export_writes_what_check_then_accepts_and_removes_stale_files(tmp_path, monkeypatch):
    runner = CliRunner()
    schemas, golden = tmp_path / "schemas", tmp_path / "golden"
    monkeypatch.setattr("sambus.router.cli.contracts.SCHEMAS_DIR", schemas)
    monkeypatch.setattr("sambus.router.cli.contracts.GOLDEN_DIR", golden)
    (schemas / "events").mkdir(parents=True)
    (schemas / "events" / "se.sambus.school.retired.v1.schema.json").write_text("{}", encoding="utf-8")

    written = runner.invoke(app, ["contracts", "export", "--examples"])
    checked = runner.invoke(app, ["contracts", "export", "--check"])

    assert written.exit_code == 0, written.output
    assert checked.exit_code == 0, checked.output
    assert not (schemas / "events" / "se.sambus.school.retired.v1.schema.json").exists()
    assert len(list((schemas / "events").glob("*.json"))) == len(EVENT_TYPES)
    assert len(list(golden.glob("*.json"))) == len(list(EXAMPLES_DIR.glob("*.json"))), "one per example"
    assert json.loads((schemas / "asyncapi.json").read_text(encoding="utf-8"))["asyncapi"] == "3.0.0"
