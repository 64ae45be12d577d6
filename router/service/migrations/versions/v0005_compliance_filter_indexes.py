"""Indexes for every compliance filter, in the compliance queries' order (decision time, then seq).

The child, recipient, outcome and legal basis each lead an index on (filter, decided_at, seq), and the period
one on (decided_at, seq), so a query reads only the entries it returns and stops at its limit instead of
scanning the ledger. The single-column child and decided_at indexes are replaced by the ones they lead.

Revision ID: 0005
Revises: 0004
Created: 2026-11-29 17:02:33
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_ledger_entries_decided": ["decided_at", "seq"],
    "ix_ledger_entries_child_decided": ["child", "decided_at", "seq"],
    "ix_ledger_entries_recipient_decided": ["recipient_id", "decided_at", "seq"],
    "ix_ledger_entries_outcome_decided": ["outcome", "decided_at", "seq"],
    "ix_ledger_entries_legal_basis_decided": ["legal_basis", "decided_at", "seq"],
}


def upgrade() -> None:
    """Indexes for every compliance filter, in the compliance queries' order (decision time, then seq)."""
    for name, columns in _INDEXES.items():
        op.create_index(name, "ledger_entries", columns, unique=False)
    op.drop_index("ix_ledger_entries_child", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_decided_at", table_name="ledger_entries")


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
