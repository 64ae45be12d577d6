"""The ``sambus`` command line, offline commands only (no Kafka)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from sambus.router.cli.main import app
from sambus.router.routing.directory import (
    PACKAGED_DIRECTORY,
    PACKAGED_TWO_COUNTY_DIRECTORY,
    PACKAGED_VASTERBOTTEN_DIRECTORY,
)

CHILD = "201203150006"
SETTINGS_ENV = (
    "SAMBUS_PSEUDONYM_KEY",
    "SAMBUS_DIRECTORY",
    "SAMBUS_DATABASE_URL",
    "SAMBUS_TOPIC_PREFIX",
    "SAMBUS_INSTANCE_ID",
    "SAMBUS_LOCAL_KAFKA_PORT",
    "SAMBUS_KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_BOOTSTRAP_SERVERS",
)


@pytest.fixture
def runner(monkeypatch, tmp_path) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no .env file is read
    monkeypatch.setenv("COLUMNS", "200")  # rich does not wrap the messages we look for
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_help_lists_the_commands(runner):
    result = runner.invoke(app, ["--help"])

    assert result.exit_code == 0
    for command in ("run", "demo", "translate", "kafka", "topics", "config", "db"):
        assert command in result.output


def test_no_arguments_shows_help(runner):
    result = runner.invoke(app, [])

    assert "translate" in result.output
    assert "Usage" in result.output


def test_translate_prints_the_fhir_message(runner, tmp_path, sip_event):
    path = tmp_path / "event.json"
    path.write_text(json.dumps(sip_event()), encoding="utf-8")

    before = dt.datetime.now(dt.UTC)
    result = runner.invoke(app, ["translate", str(path)])

    assert result.exit_code == 0, result.output
    assert "sip-participation" in result.output
    [bundle] = json.loads(result.stdout)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "message"
    assert before <= dt.datetime.fromisoformat(bundle["timestamp"]) <= dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"child": {"civicNo": "20120315-0007"}}, "data.child.civicNo"),
        ({"child": {"civicNo": "201203150007"}}, "data.child.civicNo"),
        ({"schoolUnitCode": "123"}, "data.schoolUnitCode"),
    ],
)
def test_translate_of_an_invalid_event_names_the_field_not_the_number(
    runner, tmp_path, sip_event, data, field
):
    path = tmp_path / "event.json"
    path.write_text(json.dumps(sip_event(data=data)), encoding="utf-8")

    result = runner.invoke(app, ["translate", str(path)])

    assert result.exit_code == 1
    assert field in result.output
    assert "invalid event" in result.output
    assert "201203150007" not in result.output
    assert "20120315-0007" not in result.output


def test_translate_of_bad_json_exits_1(runner, tmp_path):
    path = tmp_path / "event.json"
    path.write_text("{not json", encoding="utf-8")

    result = runner.invoke(app, ["translate", str(path)])

    assert result.exit_code == 1
    assert "not valid JSON" in result.output


def test_translate_of_a_missing_file_exits_2(runner, tmp_path):
    result = runner.invoke(app, ["translate", str(tmp_path / "no-such-event.json")])

    assert result.exit_code == 2
    assert "no-such-event.json" in result.output


def test_config_check_without_pseudonym_key_exits_2_naming_it(runner):
    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == 2
    assert "SAMBUS_PSEUDONYM_KEY" in result.output


def test_config_check_with_a_short_pseudonym_key_exits_2(runner, monkeypatch):
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", "x" * 31)

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == 2
    assert "SAMBUS_PSEUDONYM_KEY" in result.output
    assert "x" * 31 not in result.output


def test_config_check_with_a_key_exits_0_and_counts_recipients(runner, monkeypatch):
    key = "ab" * 32
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", key)

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == 0, result.output
    assert "Configuration is valid: 14 recipients" in result.output
    assert key not in result.output


def test_config_check_refuses_a_county_whose_directory_is_not_configured(runner, monkeypatch):
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.setenv("SAMBUS_COUNTY", "vasterbotten")

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == 2
    assert "SAMBUS_COUNTY=vasterbotten (län 24)" in result.output
    assert "its counties: 19" in result.output


def test_config_check_accepts_vasterbotten_with_its_own_directory(runner, monkeypatch):
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.setenv("SAMBUS_COUNTY", "vasterbotten")
    monkeypatch.setenv("SAMBUS_DIRECTORY", str(PACKAGED_VASTERBOTTEN_DIRECTORY))

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == 0, result.output
    assert "county vasterbotten" in result.output


def test_config_check_refuses_a_care_unit_without_its_care_provider(runner, monkeypatch, tmp_path):
    packaged = PACKAGED_DIRECTORY.read_text(encoding="utf-8")
    without = packaged.replace("    care_provider: region-vastmanland\n", "", 2)
    assert (
        without.count("care_provider: region-vastmanland")
        == packaged.count("care_provider: region-vastmanland") - 2
    )
    directory = tmp_path / "directory.yaml"
    directory.write_text(without, encoding="utf-8")
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.setenv("SAMBUS_DIRECTORY", str(directory))

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == 2, result.output
    assert "names no care_provider (vårdgivare) for vastmanland-bu-halsan, vastmanland-bup" in " ".join(
        result.output.split()
    )


def test_config_check_refuses_a_care_provider_that_is_not_one(runner, monkeypatch, tmp_path):
    directory = tmp_path / "directory.yaml"
    directory.write_text(
        PACKAGED_DIRECTORY.read_text(encoding="utf-8").replace(
            "care_provider: region-vastmanland", "care_provider: vastmanland-bup", 1
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.setenv("SAMBUS_DIRECTORY", str(directory))

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == 2, result.output
    assert "care_provider 'vastmanland-bup' is not a recipient of kind care_provider" in " ".join(
        result.output.split()
    )


def test_config_check_accepts_a_directory_of_two_counties_and_lists_them(runner, monkeypatch):
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.setenv("SAMBUS_COUNTY", "vastmanland")
    monkeypatch.setenv("SAMBUS_DIRECTORY", str(PACKAGED_TWO_COUNTY_DIRECTORY))

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == 0, result.output
    assert "recipients in" in result.output
    assert "(län 19, 24), county vastmanland" in result.output


def test_config_check_with_a_missing_directory_exits_2(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.setenv("SAMBUS_DIRECTORY", str(tmp_path / "missing.yaml"))

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == 2
    assert "routing directory" in result.output


def test_config_check_with_an_invalid_directory_names_the_place(runner, monkeypatch, tmp_path):
    directory = tmp_path / "directory.yaml"
    directory.write_text("recipients:\n  - id: Not_Valid\n    name: x\n    kind: school\n", encoding="utf-8")
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.setenv("SAMBUS_DIRECTORY", str(directory))

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == 2
    assert "recipients.0.id" in result.output
