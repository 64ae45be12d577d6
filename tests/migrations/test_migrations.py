"""The schema under migrations: from an empty database, from the one main (ad1bfd4) made with data in it, and
the refusal to run on a schema that is not current."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from sambus.consent.ledger import GENESIS
from sambus.consent.ledger import head as ledger_head
from sambus.router.cli.db import TABLES
from sambus.router.cli.main import app
from sambus.router.service.schema import (
    SchemaState,
    differences,
    head,
    schema_state,
    upgrade,
)

from .conftest import SNAPSHOT, load_main_schema, table_rows

EVERY_TABLE = sorted(name for metadata in TABLES for name in metadata.tables)


@pytest.fixture
def runner(monkeypatch, tmp_path, database_url) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no .env file is read
    monkeypatch.setenv("COLUMNS", "400")  # rich does not wrap the messages we look for
    monkeypatch.setenv("SAMBUS_DATABASE_URL", database_url)
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", SNAPSHOT["pseudonym_key"])
    monkeypatch.setenv("SAMBUS_LEDGER_SIGNING_KEY", SNAPSHOT["ledger_signing_key"])
    monkeypatch.setenv("SAMBUS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never reached
    monkeypatch.delenv("SAMBUS_LEDGER_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("SAMBUS_WEB_TOKENS", raising=False)
    return CliRunner()


def _ddl_sent(engine: sa.Engine, action) -> list[str]:
    sent: list[str] = []

    def capture(_conn, _cursor, statement, *_args) -> None:
        if (
            statement.lstrip().upper().startswith(("CREATE", "ALTER", "COMMENT"))
            and "alembic_version" not in statement
        ):
            sent.append(statement.strip())

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    return sent


# From an empty database


def test_db_upgrade_makes_every_table_in_an_empty_database(runner, engine):
    result = runner.invoke(app, ["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert f"at revision {head()} (was none)" in result.output
    state = schema_state(engine)
    assert state.current
    assert sorted(state.tables) == EVERY_TABLE
    with engine.connect() as conn:
        assert conn.execute(sa.select(ledger_head.c.seq, ledger_head.c.entry_hash)).one() == (0, GENESIS)


UPGRADE_WHEN_TOLD = """
import sys, time
from pathlib import Path
from sambus.router.service.schema import create_engine, upgrade
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
print(upgrade(create_engine(sys.argv[1])).after)
"""


def test_four_upgrades_at_once_all_succeed_and_leave_one_schema(database_url, engine, tmp_path):
    """Instances that start together (or a migration Job beside an operator) each run the upgrade."""
    go = tmp_path / "go"
    upgrades = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADE_WHEN_TOLD, database_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    time.sleep(3)  # each has imported sambus and waits for the word
    go.touch()
    results = [upgrade.communicate(timeout=120) for upgrade in upgrades]

    assert [(u.returncode, out.strip()) for u, (out, _) in zip(upgrades, results, strict=True)] == [
        (0, head())
    ] * 4, [err[-3000:] for _, err in results]
    assert schema_state(engine).current
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger_head)).scalar_one() == 1


def test_db_upgrade_twice_changes_nothing_the_second_time(runner, engine):
    runner.invoke(app, ["db", "upgrade"])

    again = runner.invoke(app, ["db", "upgrade"])

    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.output
    assert table_rows(engine)["ledger_head"] == 1


def test_the_first_revision_sends_exactly_the_ddl_main_sent(engine):
    sent = _ddl_sent(engine, lambda: upgrade(engine, "0001"))

    assert sorted(sent) == sorted(SNAPSHOT["ddl"][engine.dialect.name])


def test_the_migrations_end_at_exactly_the_tables_the_code_describes(engine):
    upgrade(engine)

    with engine.connect() as conn:
        assert differences(conn, TABLES) == []


def test_the_comparison_sees_a_column_the_migrations_do_not_make(engine):
    upgrade(engine)
    changed = sa.MetaData()
    for metadata in TABLES:
        for table in metadata.tables.values():
            table.to_metadata(changed)
    changed.tables["web_audit"].append_column(sa.Column("extra", sa.String(10)))
    changed.tables["consents"].c.purpose.type = sa.String(41)

    with engine.connect() as conn:
        found = differences(conn, changed)

    assert "add column web_audit.extra" in found
    assert any(line.startswith("consents.purpose: type is") for line in found)


def test_db_check_passes_on_an_upgraded_database(runner):
    runner.invoke(app, ["db", "upgrade"])

    result = runner.invoke(app, ["db", "check"])

    assert result.exit_code == 0, result.output
    assert "matches the code's tables" in result.output


# From the database main (ad1bfd4) made, with data in it


def test_a_database_main_made_is_adopted_its_data_kept_and_its_ledger_still_verifies(runner, engine):
    load_main_schema(engine)
    before = table_rows(engine)
    with engine.connect() as conn:
        entries_before = conn.execute(sa.text("SELECT * FROM ledger_entries ORDER BY seq")).all()

    upgraded = runner.invoke(app, ["db", "upgrade"])

    assert upgraded.exit_code == 0, upgraded.output
    assert "made before schema migrations; its tables match the first schema and were kept" in upgraded.output
    assert schema_state(engine).current
    after = table_rows(engine)
    assert {name: after[name] for name in before} == before
    assert set(after) - set(before) == {
        name for name in EVERY_TABLE if name not in before
    }  # made by later revisions
    made = set(after) - set(before)
    assert not any(after[name] for name in made - {"ledger_search"})
    assert before["ledger_entries"] == 7
    assert before["ledger_checkpoints"] == 2
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT * FROM ledger_entries ORDER BY seq")).all() == entries_before
        # 0012 copied every entry to the compliance projection
        assert conn.execute(
            sa.text("SELECT seq, child, recipient_id, outcome, legal_basis, decided_at FROM ledger_search")
        ).all() == [
            (e.seq, e.child, e.recipient_id, e.outcome, e.legal_basis, e.decided_at) for e in entries_before
        ]
    verified = runner.invoke(app, ["consent", "verify", "--json", "--officer", "test"])
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.output)
    assert report["ok"] is True
    assert report["entries"] == 7
    assert report["checkpoints"] == 2
    assert report["checkpoints_checked"] is True
    checked = runner.invoke(app, ["db", "check"])
    assert checked.exit_code == 0, checked.output


def test_a_database_main_made_without_some_tables_gets_them_when_adopted(runner, engine):
    # `sambus serve` made web_audit and the intake stage made sambus_seen_events: a deployment may lack them.
    ddl = [s for s in SNAPSHOT["ddl"][engine.dialect.name] if "web_audit" not in s and "seen_events" not in s]
    load_main_schema(engine, ddl=ddl, rows=False)

    result = runner.invoke(app, ["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert "created the missing sambus_seen_events, web_audit" in result.output
    with engine.connect() as conn:
        assert differences(conn, TABLES) == []


def test_a_database_whose_tables_differ_from_mains_is_not_adopted_and_not_changed(runner, engine):
    # Before 8a5d187 a consent id was the whole primary key; that code never changed the table it had made.
    ddl = [
        s.replace("PRIMARY KEY (consent_id, child)", "PRIMARY KEY (consent_id)")
        for s in SNAPSHOT["ddl"][engine.dialect.name]
    ]
    load_main_schema(engine, ddl=ddl, rows=False)
    before = sorted(sa.inspect(engine).get_table_names())

    result = runner.invoke(app, ["db", "upgrade"])

    assert result.exit_code == 2
    assert "consents: primary key is (consent_id), expected (child, consent_id)" in result.output
    assert "nothing was changed" in result.output
    assert sorted(sa.inspect(engine).get_table_names()) == before  # no alembic_version either
    assert schema_state(engine).revision is None


def test_a_missing_column_is_named_and_not_adopted(runner, engine):
    ddl = [s.replace("\tescalates BOOLEAN NOT NULL, \n", "") for s in SNAPSHOT["ddl"][engine.dialect.name]]
    load_main_schema(engine, ddl=ddl, rows=False)

    result = runner.invoke(app, ["db", "upgrade"])

    assert result.exit_code == 2
    assert "add column deadlines.escalates" in result.output
    assert schema_state(engine).revision is None


# Refusing a schema that is not current


@pytest.mark.parametrize("command", [["run"], ["run", "--stage", "intake"], ["serve"], ["consent", "verify"]])
def test_commands_refuse_an_empty_database_and_say_to_run_db_upgrade(runner, engine, command):
    result = runner.invoke(app, command)

    assert result.exit_code == 2, result.output
    assert "the database has no sambus tables yet: run `sambus db upgrade`" in result.output
    assert sa.inspect(engine).get_table_names() == []  # nothing is created at start-up


def test_run_refuses_a_database_main_made_until_it_is_upgraded(runner, engine):
    load_main_schema(engine)

    result = runner.invoke(app, ["run"])

    assert result.exit_code == 2, result.output
    assert "made by a sambus without schema migrations" in result.output
    assert "run `sambus db upgrade`" in result.output
    assert schema_state(engine).revision is None


def test_run_refuses_a_schema_newer_than_it_knows(runner, engine):
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))

    result = runner.invoke(app, ["run"])
    upgraded = runner.invoke(app, ["db", "upgrade"])

    assert result.exit_code == 2, result.output
    assert "revision 9999, which this sambus does not know" in result.output
    assert upgraded.exit_code == 2, upgraded.output


def test_an_older_revision_is_named_with_what_to_run():
    state = SchemaState(revision="0001", head="0002", tables=frozenset({"consents"}), known=True)

    assert state.problem() == (
        "the database schema is at revision 0001; this sambus needs 0002: "
        "run `sambus db upgrade` (with the same SAMBUS_DATABASE_URL) first"
    )


def test_db_current_says_where_the_schema_stands(runner):
    empty = runner.invoke(app, ["db", "current"])
    runner.invoke(app, ["db", "upgrade"])
    current = runner.invoke(app, ["db", "current"])

    assert f"revision: none; newest: {head()}" in empty.output
    assert f"revision: {head()}; newest: {head()}" in current.output
    assert "The schema is current." in current.output


def _before_process_ids(statements: list[str]) -> list[str]:
    """The DDL with ``followup_facts`` as sambus made it before it had process ids."""
    return [
        s.replace("\tprocess_id VARCHAR(100), \n", "").replace(", \n\tUNIQUE (process_id)", "")
        for s in statements
        if not s.startswith("COMMENT ON COLUMN followup_facts.process_id")
    ]


def test_a_facts_table_from_before_process_ids_is_given_them_when_adopted(runner, engine):
    load_main_schema(engine, ddl=_before_process_ids(SNAPSHOT["ddl"][engine.dialect.name]), rows=False)
    assert "process_id" not in {c["name"] for c in sa.inspect(engine).get_columns("followup_facts")}

    result = runner.invoke(app, ["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert "process_id" in {c["name"] for c in sa.inspect(engine).get_columns("followup_facts")}
    with engine.begin() as conn:
        conn.execute(sa.text(_FACT.format(id=1, process="p-1")))
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(sa.text(_FACT.format(id=2, process="p-1")))


def test_a_refused_adoption_leaves_even_the_facts_table_as_it_was(runner, engine):
    ddl = [
        s.replace("PRIMARY KEY (consent_id, child)", "PRIMARY KEY (consent_id)")
        for s in SNAPSHOT["ddl"][engine.dialect.name]
    ]
    load_main_schema(engine, ddl=_before_process_ids(ddl), rows=False)

    result = runner.invoke(app, ["db", "upgrade"])

    assert result.exit_code == 2
    assert "consents: primary key" in result.output
    assert "process_id" not in {c["name"] for c in sa.inspect(engine).get_columns("followup_facts")}


_FACT = (
    "INSERT INTO followup_facts (id, process_id, kind, sex, age_band, county_part, started_on) "
    "VALUES ({id}, '{process}', 'sip', 'girl', '13-17', 'Norra', '2026-11-20')"
)
