"""The compliance filters' indexes move from the ledger to a projection of it, written after each append.

``ledger_entries`` had eight compliance indexes besides its key and its (message, recipient)
constraint, so every append wrote ten B-trees: an append ran at 0.22 to 0.35 times a plain batched insert on
SQLite. The indexes now live on ``ledger_search`` (each entry as compliance queries read it: all but the
encrypted identity and the previous hash), which a ledger fills after its append has committed
(``sambus.consent.ledger.project``); a compliance query reads it and, for entries not yet copied, the ledger
itself. This revision copies every entry there is, then drops the ledger's eight indexes.

Revision ID: 0012
Revises: 0011
Created: 2026-11-30 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite needs INTEGER for its rowid key

_COMMENT = "what compliance queries read of ledger_entries, with their indexes (a copy; verify checks it)"
_COPIED = (
    "seq, message_id, recipient_id, child, event, outcome, rule_id, rule_version, legal_basis, reason,"
    " removed, decided_at, entry_hash"
)
_INDEXES = {
    "decided": ["decided_at", "seq"],
    "child_decided": ["child", "decided_at", "seq"],
    "recipient_decided": ["recipient_id", "decided_at", "seq"],
    "outcome_decided": ["outcome", "decided_at", "seq"],
    "legal_basis_decided": ["legal_basis", "decided_at", "seq"],
    "recipient_outcome_decided": ["recipient_id", "outcome", "decided_at", "seq"],
    "recipient_legal_basis_decided": ["recipient_id", "legal_basis", "decided_at", "seq"],
    "legal_basis_outcome_decided": ["legal_basis", "outcome", "decided_at", "seq"],
}


def upgrade() -> None:
    """Make ``ledger_search`` with the compliance indexes, copy every entry, drop the ledger's indexes."""
    op.create_table(
        "ledger_search",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("recipient_id", sa.String(100), nullable=False),
        sa.Column("child", sa.String(64), nullable=False, comment="keyed pseudonym"),
        sa.Column("event", sa.String(60), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("rule_id", sa.String(60), nullable=False),
        sa.Column("rule_version", sa.Integer, nullable=False),
        sa.Column("legal_basis", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("removed", sa.String(2000), nullable=False),
        sa.Column("decided_at", sa.String(40), nullable=False, comment="ISO 8601, UTC"),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        comment=_COMMENT,
    )
    op.execute(f"INSERT INTO ledger_search ({_COPIED}) SELECT {_COPIED} FROM ledger_entries")  # noqa: S608
    for name, columns in _INDEXES.items():
        op.create_index(f"ix_ledger_search_{name}", "ledger_search", columns, unique=False)
    for name in _INDEXES:
        op.drop_index(f"ix_ledger_entries_{name}", table_name="ledger_entries")


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
