"""The schema sambus made with ``create_all`` at start-up before it had migrations (main at ad1bfd4), frozen.

Revision ``0001`` creates exactly these tables, and ``sambus db upgrade`` compares a database made by that
code (it has the tables but no ``alembic_version``) with them before it adopts it. Never change this module:
later changes are later revisions.
"""

from __future__ import annotations

import sqlalchemy as sa

GENESIS = "0" * 64
"""The ledger head's hash before the first entry."""

metadata = sa.MetaData()
_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")

sa.Table(
    "consents",
    metadata,
    sa.Column("consent_id", sa.String(200), primary_key=True, comment="<consent id>:<agency kind>"),
    sa.Column(
        "child",
        sa.String(64),
        primary_key=True,
        comment="keyed pseudonym of the child; consent ids are the senders' own, unique per child only",
    ),
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("agency_kind", sa.String(40), nullable=False),
    sa.Column("given_by", sa.String(40), nullable=False, comment="guardian or child"),
    sa.Column("guardians", sa.String(2000), nullable=False, comment="guardian pseudonyms"),
    sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "children",
    metadata,
    sa.Column("child", sa.String(64), primary_key=True, comment="keyed pseudonym"),
    sa.Column("birth_date", sa.Date, nullable=False),
)
sa.Table(
    "custody",
    metadata,
    sa.Column("child", sa.String(64), primary_key=True, comment="keyed pseudonym"),
    sa.Column("custody", sa.String(10), nullable=False),
    sa.Column("guardians", sa.String(2000), nullable=False, comment="guardian pseudonyms"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "protections",
    metadata,
    sa.Column("decision_id", sa.String(200), primary_key=True),
    sa.Column("child", sa.String(64), nullable=False, index=True, comment="keyed pseudonym"),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
    sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
)
sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
    sa.Column("message_id", sa.String(64), nullable=False),
    sa.Column("recipient_id", sa.String(100), nullable=False),
    sa.Column("child", sa.String(64), nullable=False, index=True, comment="keyed pseudonym"),
    sa.Column("identity_key_id", sa.String(40), nullable=True),
    sa.Column("identity", sa.String(200), nullable=True, comment="AES-GCM, base64(nonce + ciphertext)"),
    sa.Column("event", sa.String(60), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("rule_id", sa.String(60), nullable=False),
    sa.Column("rule_version", sa.Integer, nullable=False),
    sa.Column("legal_basis", sa.String(200), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("removed", sa.String(2000), nullable=False),
    sa.Column("decided_at", sa.String(40), nullable=False, index=True, comment="ISO 8601, UTC"),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("message_id", "recipient_id", name="uq_ledger_message_recipient"),
)
sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Column("signed_at", sa.String(40), nullable=False),
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
)
ledger_head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", _SEQ, nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
)
sa.Table(
    "ledger_queries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("asked_at", sa.String(40), nullable=False),
    sa.Column("officer", sa.String(100), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("filters", sa.String(2000), nullable=False, comment="JSON; the child only as a pseudonym"),
    sa.Column("results", sa.Integer, nullable=False),
)
sa.Table(
    "processes",
    metadata,
    sa.Column("process_id", sa.String(100), primary_key=True, comment="the correlation id"),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("child", sa.String(64), nullable=False, index=True, comment="keyed pseudonym"),
    sa.Column("state", sa.String(40), nullable=False),
    sa.Column("initiator", sa.String(100), nullable=True, comment="directory id of the requester"),
    sa.Column("parties", sa.Text, nullable=False, comment="JSON: recipient id -> its answer"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "process_messages",
    metadata,
    sa.Column("message_id", sa.String(100), primary_key=True),
    sa.Column("process_id", sa.String(100), nullable=False, index=True),
)
sa.Table(
    "followup_facts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("process_id", sa.String(100), unique=True, nullable=True, comment="a UUID, not personal"),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("sex", sa.String(10), nullable=False),
    sa.Column("age_band", sa.String(10), nullable=False),
    sa.Column("county_part", sa.String(60), nullable=False),
    sa.Column("started_on", sa.Date, nullable=False, index=True),
    sa.Column("held_on", sa.Date),
    sa.Column("plan_on", sa.Date),
    sa.Column("completed_on", sa.Date),
    comment="anonymous: no identity, no pseudonym",
)
sa.Table(
    "deadlines",
    metadata,
    sa.Column("deadline_id", sa.String(200), primary_key=True, comment="<process id>:<name>"),
    sa.Column("process_id", sa.String(100), nullable=False, index=True),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("child", sa.String(64), nullable=False, comment="keyed pseudonym"),
    sa.Column("responsible", sa.String(100), nullable=True),
    sa.Column("escalate_to", sa.String(100), nullable=True),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("remind_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reminder_event", sa.String(40), nullable=False),
    sa.Column("escalates", sa.Boolean, nullable=False),
    sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
)
sa.Table(
    "sambus_seen_events",
    metadata,
    sa.Column("message_id", sa.String(64), primary_key=True),
    sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "web_audit",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("criteria", sa.Text, nullable=False, comment="JSON; the child only as a pseudonym"),
    sa.Column("results", sa.Integer, nullable=False),
)


def create(connection: sa.Connection) -> list[str]:
    """Create the tables of this schema the database does not have; returns their names.

    A new ``ledger_head`` gets its one row, the head of an empty chain.
    """
    missing = [t for t in metadata.sorted_tables if not sa.inspect(connection).has_table(t.name)]
    metadata.create_all(connection, tables=missing)
    if ledger_head in missing:
        connection.execute(ledger_head.insert().values(id=1, seq=0, entry_hash=GENESIS))
    return [t.name for t in missing]
