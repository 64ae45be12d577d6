"""``sambus consent``: query, verify and export the ledger from the command line; every query is logged."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from sambus.consent import CheckpointSigner, ConsentRegistry, DecisionLedger, Pseudonymizer
from sambus.consent.compliance import Compliance
from sambus.consent.rules import RuleSet
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.registry_facts import Custody, CustodyUpdated
from sambus.router.cli import consent as consent_cli
from sambus.router.cli.main import app
from tests.children import personnummer_aged
from tests.database import upgraded

from .ledger_records import T0, record

CHILD = personnummer_aged(11)
"""Eleven on any day: a fixed birth date turned the child 15 (consents on its own) and 18 as time passed."""
PSEUDONYM_KEY = "q" * 40


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner.generate()


@pytest.fixture
def database(tmp_path) -> str:
    return upgraded("sqlite:///" + str(tmp_path / "ledger.db"))


@pytest.fixture
def runner(monkeypatch, tmp_path, database, signer) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no .env file is read
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("SAMBUS_DATABASE_URL", database)
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", PSEUDONYM_KEY)
    monkeypatch.setenv("SAMBUS_LEDGER_SIGNING_KEY", signer.seed_hex())
    monkeypatch.delenv("SAMBUS_LEDGER_ENCRYPTION_KEYS", raising=False)
    return CliRunner()


@pytest.fixture
def engine(database):
    made = sa.create_engine(database)
    yield made
    made.dispose()


@pytest.fixture
def ledger(engine, signer) -> DecisionLedger:
    made = DecisionLedger(engine, signer=signer, checkpoint_every=2)
    child = Pseudonymizer(PSEUDONYM_KEY.encode()).of(CHILD)
    made.append(
        [
            record(1, child=child),
            record(
                2,
                child=child,
                outcome="await_consent",
                recipient="vastmanland-folktandvarden",
                removed=("entry[1].resource.address",),
            ),
            record(3),
            record(
                4,
                child=child,
                event="concern-reported",
                rule_id="report-of-concern",
                legal_basis="OSL 10:28 with SoL 14:1",
            ),
        ]
    )
    return made


def _json(runner, *args):
    result = runner.invoke(app, ["consent", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.usefixtures("ledger")
def test_query_by_personnummer_finds_only_that_childs_decisions(runner):
    found = _json(runner, "query", "--personnummer", CHILD)

    assert [e["message_id"] for e in found] == ["m1", "m2", "m4"]
    assert CHILD not in json.dumps(found)


@pytest.mark.usefixtures("ledger")
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--outcome", "await_consent"], ["m2"]),
        (["--recipient", "vastmanland-folktandvarden"], ["m2"]),
        (["--basis", "OSL 10:28 with SoL 14:1"], ["m4"]),
        (["--basis", "OSL 10:28"], []),  # matched exactly, as the ledger keeps it, so an index finds it
        (["--since", (T0 + dt.timedelta(minutes=3)).isoformat()], ["m3", "m4"]),
        (["--until", (T0 + dt.timedelta(minutes=2)).isoformat()], ["m1"]),
        (["--limit", "2"], ["m1", "m2"]),
    ],
)
def test_query_filters(runner, args, expected):
    assert [e["message_id"] for e in _json(runner, "query", *args)] == expected


@pytest.mark.usefixtures("ledger")
def test_query_prints_a_table(runner):
    result = runner.invoke(app, ["consent", "query", "--basis", "OSL 10:28 with SoL 14:1"])

    assert result.exit_code == 0, result.output
    assert "1 decisions" in result.output
    assert "report-of-concern@1" in result.output


@pytest.mark.usefixtures("ledger")
def test_every_query_is_logged_without_the_personnummer(runner, engine):
    runner.invoke(app, ["consent", "query", "--personnummer", CHILD, "--officer", "anna"])
    runner.invoke(app, ["consent", "verify", "--officer", "anna"])
    runner.invoke(app, ["consent", "export", "--format", "csv", "--officer", "bo"])

    history = Compliance(engine).history()

    assert [(h["officer"], h["action"]) for h in history] == [
        ("bo", "export-csv"),
        ("anna", "verify"),
        ("anna", "query"),
    ]
    assert history[2]["results"] == 3
    assert CHILD not in json.dumps(history)
    assert Pseudonymizer(PSEUDONYM_KEY.encode()).of(CHILD) in history[2]["filters"]


@pytest.mark.parametrize("number", ["201203150007", "2012", "abc"])
def test_a_bad_personnummer_is_a_clear_error(runner, number):
    result = runner.invoke(app, ["consent", "query", "--personnummer", number])

    assert result.exit_code == 2
    assert "--personnummer" in result.output
    assert number not in result.output


def test_a_bad_outcome_is_a_clear_error(runner):
    result = runner.invoke(app, ["consent", "query", "--outcome", "maybe"])

    assert result.exit_code == 2
    assert "--outcome" in result.output


@pytest.mark.usefixtures("ledger")
def test_verify_reports_an_intact_ledger(runner):
    report = _json(runner, "verify")

    assert report["ok"] is True
    assert report["entries"] == 4
    assert report["checkpoints"] == 1  # one batch of 4, signed at its end
    assert report["checkpoints_checked"] is True


@pytest.mark.usefixtures("ledger")
def test_verify_names_the_changed_entry_and_fails(runner, engine):
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_entries SET outcome = 'permit' WHERE seq = 2"))

    result = runner.invoke(app, ["consent", "verify"])

    assert result.exit_code == 1
    assert "entry 2 changed" in result.output


@pytest.mark.usefixtures("ledger")
def test_verify_with_another_key_fails_the_checkpoints(runner, monkeypatch):
    monkeypatch.setenv("SAMBUS_LEDGER_SIGNING_KEY", CheckpointSigner.generate().seed_hex())

    result = runner.invoke(app, ["consent", "verify"])

    assert result.exit_code == 1
    assert "unknown key" in result.output


@pytest.mark.usefixtures("ledger")
def test_export_fhir_gives_balp_shaped_audit_events(runner):
    from fhir.resources.R4B.bundle import Bundle  # noqa: PLC0415

    result = runner.invoke(app, ["consent", "export", "--format", "fhir", "--personnummer", CHILD])

    assert result.exit_code == 0, result.output
    bundle = json.loads(result.output)
    Bundle.model_validate(bundle)
    events = [e["resource"] for e in bundle["entry"]]
    assert len(events) == 3
    assert {e["type"]["code"] for e in events} == {"110113"}
    assert [e["outcome"] for e in events] == ["0", "4", "0"]
    assert all(e["meta"]["profile"][0].endswith("IHE.BasicAudit.AuthZconsent") for e in events)
    assert CHILD not in result.output


@pytest.mark.usefixtures("ledger")
def test_export_csv_to_a_file(runner, tmp_path):
    target = tmp_path / "out.csv"

    result = runner.invoke(app, ["consent", "export", "--format", "csv", "--output", str(target)])

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [r["message_id"] for r in rows] == ["m1", "m2", "m3", "m4"]
    assert rows[3]["legal_basis"] == "OSL 10:28 with SoL 14:1"


def test_export_refuses_an_unknown_format(runner):
    result = runner.invoke(app, ["consent", "export", "--format", "xml"])

    assert result.exit_code == 2
    assert "--format" in result.output


def test_rules_lists_the_shipped_rules(runner):
    result = runner.invoke(app, ["consent", "rules"])

    assert result.exit_code == 0, result.output
    assert "sip-consent@2" in result.output
    assert "LVU 32" in result.output


def test_rules_prints_for_each_rule_the_secrecy_broken_and_the_provision_breaking_it(runner, monkeypatch):
    monkeypatch.setattr(consent_cli.console, "width", 2000)  # one line per rule
    rules = RuleSet.load()

    result = runner.invoke(app, ["consent", "rules"])

    assert result.exit_code == 0, result.output
    for rule in rules.rules:
        [row] = [line for line in result.output.splitlines() if f" {rule.id}@{rule.version} " in line]
        cells = [cell.strip() for cell in row.split("│")[1:-1]]
        assert cells[1] == rules.broken_secrecy(rule), rule.id
        assert cells[1].startswith(("OSL ", "skollagen", "PSL")), rule.id
        assert cells[2].startswith(rule.basis.provision), rule.id


def test_rules_reports_a_bad_rule_file(runner, monkeypatch, tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - id: x\n    version: 0\n", encoding="utf-8")
    monkeypatch.setenv("SAMBUS_RULES", str(bad))

    result = runner.invoke(app, ["consent", "rules"])

    assert result.exit_code == 2
    assert "rule 'x' field" in result.output


def test_keygen_prints_usable_keys(runner):
    result = runner.invoke(app, ["consent", "keygen"])

    lines = dict(line.split("=", 1) for line in result.output.splitlines())
    assert CheckpointSigner.from_hex(lines["SAMBUS_LEDGER_SIGNING_KEY"])
    assert lines["SAMBUS_LEDGER_ENCRYPTION_KEYS"].startswith("k1:")


@pytest.mark.parametrize("command", ["query", "verify", "export", "rules", "keygen", "record", "withdraw"])
def test_every_command_has_help(runner, command):
    result = runner.invoke(app, ["consent", command, "--help"])

    assert result.exit_code == 0
    assert "Usage" in result.output


def test_config_check_validates_the_rules_too(runner):
    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == 0, result.output
    assert "Secrecy rules are valid" in result.output


def test_config_check_names_a_bad_rule(runner, monkeypatch, tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - id: lvu\n    version: 1\n    events: [nope]\n", encoding="utf-8")
    monkeypatch.setenv("SAMBUS_RULES", str(bad))

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == 2
    assert "rule 'lvu' field" in result.output


@pytest.mark.usefixtures("ledger")
def test_after_rotating_the_signing_key_old_checkpoints_verify_with_the_old_public_key(
    runner, monkeypatch, signer
):
    monkeypatch.setenv("SAMBUS_LEDGER_SIGNING_KEY", CheckpointSigner.generate().seed_hex())
    monkeypatch.setenv("SAMBUS_LEDGER_VERIFY_KEYS", signer.public_hex())

    report = _json(runner, "verify")

    assert report["ok"] is True
    assert report["checkpoints"] == 1


MOTHER = "198001020018"


def _registry(database) -> ConsentRegistry:
    return ConsentRegistry(sa.create_engine(database), Pseudonymizer(PSEUDONYM_KEY.encode()))


def _covers(database, kind=AgencyKind.SOCIAL_SERVICES, at=None):
    return _registry(database).covers(
        child=Pseudonymizer(PSEUDONYM_KEY.encode()).of(CHILD),
        purpose=Purpose.SIP,
        agency_kind=kind,
        at=at or dt.datetime.now(dt.UTC),
    )


def _record(runner, *extra):
    args = ["consent", "record", "--id", "paper-1", "--personnummer", CHILD, "--purpose", "sip"]
    return runner.invoke(app, [*args, "--agency", "social_services", "--agency", "bu_halsan", *extra])


def test_record_a_guardians_consent_then_withdraw_it(runner, database):
    registry = _registry(database)
    registry.apply(
        [
            CustodyUpdated(
                child=CHILD,
                guardians=(MOTHER,),
                custody=Custody.SOLE,
                at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
            )
        ]
    )
    recorded = _record(runner, "--guardian", MOTHER, "--from", "2026-01-01")

    assert recorded.exit_code == 0, recorded.output
    assert "Recorded consent paper-1" in recorded.output
    assert _covers(database) == "paper-1"
    assert _covers(database, kind=AgencyKind.BU_HALSAN) == "paper-1"
    assert _covers(database, kind=AgencyKind.DENTAL) is None

    withdrawn = runner.invoke(app, ["consent", "withdraw", "--id", "paper-1", "--personnummer", CHILD])

    assert withdrawn.exit_code == 0, withdrawn.output
    assert _covers(database, at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) is None


def test_record_needs_the_guardians_or_the_child(runner):
    result = _record(runner)

    assert result.exit_code == 2
    assert "--guardian" in result.output


def test_a_young_childs_own_consent_is_refused_without_the_number(runner):
    result = _record(runner, "--by-child")

    assert result.exit_code == 1
    assert "from age 15" in result.output
    assert CHILD not in result.output


def test_record_refuses_a_bad_guardian_number(runner):
    result = _record(runner, "--guardian", "198001020007")

    assert result.exit_code == 2
    assert "--guardian" in result.output
    assert "198001020007" not in result.output
