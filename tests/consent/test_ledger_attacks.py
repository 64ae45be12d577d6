"""An attacker with write access to the database but not the signing key: every attack is named by verify.

The ledger keeps each signed checkpoint in an anchor file as well (outside the database): a removed tail,
removed checkpoints or an emptied ledger are found by checking the database against it. Without the anchor
(as on main before it), nine of these attacks passed as "intact".
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sambus.consent import CheckpointSigner, DecisionLedger, Tamper, verify
from sambus.consent.anchor import Anchor, AnchorFile
from sambus.router.cli.main import app
from sambus.router.service.schema import upgrade

from .ledger_attacks import ATTACKS, CHECKPOINT_EVERY, build, sql


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner.generate()


@pytest.fixture
def anchor(tmp_path) -> AnchorFile:
    return AnchorFile(tmp_path / "anchor" / "ledger.anchor")


@pytest.fixture
def ledger(engine, signer, anchor) -> DecisionLedger:
    upgrade(engine)
    made = DecisionLedger(engine, signer=signer, checkpoint_every=CHECKPOINT_EVERY, anchors=[anchor])
    build(made.append)
    return made


def _check(engine, signer, anchor):
    return verify(engine, {signer.key_id: signer.public}, anchor.read())


def test_each_checkpoint_is_anchored_outside_the_database(ledger, anchor, signer):
    anchors = anchor.read()

    assert [(a.seq, a.checkpoints) for a in anchors] == [(3, 1), (6, 2), (9, 3)]
    assert all(a.valid({signer.key_id: signer.public}) for a in anchors)
    assert ledger.last_anchors == (anchors[-1],)


@pytest.mark.usefixtures("ledger")
def test_the_untouched_ledger_is_intact_against_its_anchor(engine, signer, anchor):
    result = _check(engine, signer, anchor)

    assert result.ok
    assert result.anchored is not None
    assert result.anchored.seq == 9


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
@pytest.mark.usefixtures("ledger")
def test_every_attack_is_named(engine, signer, anchor, attack):
    attack.run(engine)

    result = _check(engine, signer, anchor)

    assert not result.ok, f"{attack.name} passed verify"
    assert str(result.first).startswith(attack.first), str(result.first)


def test_there_are_at_least_seventeen_attacks():
    assert len(ATTACKS) >= 17  # the count


@pytest.mark.usefixtures("ledger")
def test_a_forged_anchor_line_is_named(engine, signer, anchor):
    forged = Anchor.sign(
        CheckpointSigner.generate(), seq=12, entry_hash="a" * 64, checkpoints=4, signed_at="x"
    )
    with anchor.path.open("a", encoding="ascii") as out:
        out.write(forged.to_json() + "\n")

    result = _check(engine, signer, anchor)

    assert (result.first.kind, result.first.seq) == (Tamper.FORGED, 12)
    assert str(result.first) == "anchor 12 forged: its signature is not valid under the verification keys"


def test_an_anchor_behind_the_database_is_not_a_problem(engine, signer, anchor, ledger):
    # A crash between the database's commit and the anchor's write leaves the anchor behind, never ahead.
    ledger.append([])
    lines = anchor.path.read_text(encoding="ascii").splitlines()
    anchor.path.write_text("\n".join(lines[:-1]) + "\n", encoding="ascii")

    assert _check(engine, signer, anchor).ok


@pytest.fixture
def sqlite_ledger(sqlite_engine, signer, anchor) -> DecisionLedger:
    """The same ledger on an SQLite file, which the command line opens by its URL."""
    upgrade(sqlite_engine)
    made = DecisionLedger(sqlite_engine, signer=signer, checkpoint_every=CHECKPOINT_EVERY, anchors=[anchor])
    build(made.append)
    return made


@pytest.fixture
def cli(monkeypatch, tmp_path, signer, anchor, sqlite_engine) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("SAMBUS_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", "q" * 40)
    monkeypatch.setenv("SAMBUS_LEDGER_SIGNING_KEY", signer.seed_hex())
    monkeypatch.setenv("SAMBUS_LEDGER_ANCHOR_FILE", str(anchor.path))
    return CliRunner()


@pytest.mark.usefixtures("sqlite_ledger")
def test_sambus_consent_verify_names_an_emptied_ledger(sqlite_engine, cli):
    sql(sqlite_engine, "DELETE FROM ledger_checkpoints")
    sql(sqlite_engine, "DELETE FROM ledger_entries")
    sql(sqlite_engine, "UPDATE ledger_head SET seq = 0, entry_hash = :h", h="0" * 64)

    result = cli.invoke(app, ["consent", "verify", "--officer", "anna"])

    assert result.exit_code == 1
    assert "entry 1 removed: entries 1 to 9 are missing" in result.output
    assert "checkpoint 3 missing" in result.output


@pytest.mark.usefixtures("sqlite_ledger")
def test_sambus_consent_verify_json_names_the_anchor(cli):
    result = cli.invoke(app, ["consent", "verify", "--officer", "anna", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["anchored_seq"] == 9
