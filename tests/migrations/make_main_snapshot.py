"""Make ``main_ad1bfd4.json``: the database that sambus made before its schema was under migrations.

Run it against the code of that commit, not this one (it calls the ``create_schema`` methods that made
the tables at start-up then)::

    git archive ad1bfd4 | tar -x -C /tmp/main-ad1bfd4
    SAMBUS_POSTGRES_PORT=55447 bash deploy/postgres/with-postgres.sh \\
        env PYTHONPATH=/tmp/main-ad1bfd4/src .venv/bin/python tests/migrations/make_main_snapshot.py \\
        tests/migrations/main_ad1bfd4.json

It records the exact DDL statements that code sent to SQLite and to PostgreSQL (every table, as ``sambus run``
and ``sambus serve`` made them), and the rows it wrote into an SQLite file through its own API: a signed,
hash-chained ledger, consents, custody, a protection, processes, deadlines, seen events, follow-up facts and
audit lines. The tests load it into an empty database and upgrade it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import sqlalchemy as sa

import sambus
from sambus.consent import CheckpointSigner, ConsentGrant, ConsentRegistry, DecisionLedger, Pseudonymizer
from sambus.consent.compliance import Compliance
from sambus.consent.keys import FieldCipher
from sambus.consent.ledger import LedgerRecord
from sambus.consent.registry import Custody, Protection
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.router.stages.deadlines import Deadlines, deadlines
from sambus.router.stages.processes import ProcessStore, applied, processes
from sambus.router.stages.seen_events import SeenEvents, seen_events
from sambus.router.stats.indicators import followup_facts
from sambus.router.web.audit import AuditLog, web_audit

COMMIT = "ad1bfd4"
PSEUDONYM_KEY = "m" * 40
SIGNING_SEED = "11" * 32
ENCRYPTION_KEYS = "k1:" + "22" * 32
T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
CHILD = "201203150006"


def _create_everything(engine: sa.Engine) -> list[str]:
    """Create every table as that code did at start-up; return the DDL it sent."""
    sent: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("CREATE", "ALTER", "COMMENT")):
            sent.append(statement.strip())

    ConsentRegistry(engine).create_schema()
    DecisionLedger(engine).create_schema()
    Compliance(engine).create_schema()
    ProcessStore(engine).create_schema()  # with followup_facts
    Deadlines(engine).create_schema()
    SeenEvents(engine).create_schema()
    AuditLog(engine).create_schema()
    sa.event.remove(engine, "before_cursor_execute", capture)
    return sent


def _fill(engine: sa.Engine) -> None:
    """Write rows through that code's own API (the ledger signed and chained as the service does)."""
    pseudonyms = Pseudonymizer(PSEUDONYM_KEY.encode())
    child = pseudonyms.of(CHILD)
    registry = ConsentRegistry(engine, pseudonyms)
    registry.record_child(child, dt.date(2012, 3, 15))
    registry.record(
        ConsentGrant(
            consent_id="c-1",
            child=child,
            purpose=Purpose.SIP,
            agency_kinds=frozenset({AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN}),
            given_by="guardian",
            valid_from=T0 - dt.timedelta(days=1),
            guardians=(pseudonyms.of("198001019802"),),
        ),
        now=T0,
    )
    registry.set_custody(child, Custody.SOLE, (pseudonyms.of("198001019802"),), at=T0)
    registry.protect("lvu14-1", child=child, kind=Protection.HIDDEN_RESIDENCE, valid_from=T0)

    ledger = DecisionLedger(
        engine,
        signer=CheckpointSigner.from_hex(SIGNING_SEED),
        cipher=FieldCipher.from_spec(ENCRYPTION_KEYS),
        checkpoint_every=3,
    )
    records = [
        LedgerRecord(
            message_id=f"m{n}",
            recipient_id="vasteras-socialtjanst" if n % 2 else "vastmanland-folktandvarden",
            child=child,
            event="sip-initiated",
            outcome="permit" if n % 2 else "await_consent",
            rule_id="sip-consent",
            rule_version=1,
            legal_basis="OSL 12:2 (samtycke)",
            reason=f"the guardians' consent c-{n}",
            decided_at=T0 + dt.timedelta(minutes=n),
            removed=("entry[1].resource.address",) if n == 4 else (),
            identity=CHILD if n == 5 else None,
        )
        for n in range(1, 8)
    ]
    for start in range(0, len(records), 2):  # in batches, as the delivery stage appends
        ledger.append(records[start : start + 2])
    Compliance(engine).log(officer="anna", action="query", filters={"child": child}, results=7)
    with engine.begin() as conn:
        conn.execute(
            processes.insert().values(
                process_id="9a1c0f3e-0000-4000-8000-000000000001",
                kind="sip",
                child=child,
                state="open",
                initiator="skola-19800001",
                parties=json.dumps({"vasteras-socialtjanst": "accepted"}),
                updated_at=T0,
            )
        )
        conn.execute(
            applied.insert().values(message_id="m1", process_id="9a1c0f3e-0000-4000-8000-000000000001")
        )
        conn.execute(
            deadlines.insert().values(
                deadline_id="9a1c0f3e-0000-4000-8000-000000000001:sip-meeting",
                process_id="9a1c0f3e-0000-4000-8000-000000000001",
                name="sip-meeting",
                child=child,
                responsible="vasteras-socialtjanst",
                escalate_to=None,
                due_at=T0 + dt.timedelta(days=28),
                remind_at=T0 + dt.timedelta(days=21),
                reminder_event="sip-meeting-due",
                escalates=True,
                reminded_at=None,
                escalated_at=None,
                closed_at=None,
            )
        )
        conn.execute(seen_events.insert().values(message_id="e-1", committed_at=T0))
        conn.execute(
            followup_facts.insert().values(
                process_id="9a1c0f3e-0000-4000-8000-000000000001",
                kind="sip",
                sex="female",
                age_band="13-15",
                county_part="vasteras",
                started_on=T0.date(),
            )
        )
        conn.execute(
            web_audit.insert().values(
                at=T0, who="anna", role="compliance", action="search", criteria="{}", results=7
            )
        )


def _tagged(value: object) -> object:
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    return value


def _rows(engine: sa.Engine) -> dict[str, list[dict[str, object]]]:
    found = sa.MetaData()
    found.reflect(engine)
    with engine.connect() as conn:
        return {
            name: [
                {key: _tagged(value) for key, value in row._mapping.items()}  # noqa: SLF001
                for row in conn.execute(sa.select(table))
            ]
            for name, table in sorted(found.tables.items())
        }


def main() -> None:
    """Write the snapshot to the path given."""
    out = Path(sys.argv[1])
    url = os.environ.get("SAMBUS_TEST_POSTGRES_URL")
    if not url:
        sys.exit("needs SAMBUS_TEST_POSTGRES_URL (run it under deploy/postgres/with-postgres.sh)")
    with TemporaryDirectory() as work:
        sqlite = sa.create_engine(f"sqlite:///{work}/main.db")
        sqlite_ddl = _create_everything(sqlite)
        _fill(sqlite)
        rows = _rows(sqlite)
        sqlite.dispose()
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA snapshot"))
    postgres = sa.create_engine(url, connect_args={"options": "-csearch_path=snapshot"})
    try:
        postgres_ddl = _create_everything(postgres)
    finally:
        postgres.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA snapshot CASCADE"))
        admin.dispose()
    snapshot = {
        "made_by": f"tests/migrations/make_main_snapshot.py on sambus {COMMIT} ({sambus.__file__})",
        "pseudonym_key": PSEUDONYM_KEY,
        "ledger_signing_key": SIGNING_SEED,
        "ledger_encryption_keys": ENCRYPTION_KEYS,
        "ddl": {"sqlite": sqlite_ddl, "postgresql": postgres_ddl},
        "rows": rows,
    }
    out.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
