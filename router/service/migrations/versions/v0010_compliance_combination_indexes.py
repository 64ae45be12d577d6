"""Indexes for compliance filters offered together: recipient with outcome or basis, basis with outcome.

A compliance officer asks for one recipient's refusals (the page and ``sambus consent query`` offer recipient
and outcome together), for what one recipient got under one legal basis, or for the refusals under one legal
basis. With only the single-filter indexes of 0005 such a query reads every entry of the recipient (or basis)
until it has found enough of the other: at 10 M entries, hundreds of thousands (PostgreSQL: 280 ms for one
recipient and a rare basis). These lead with both filters, in the queries' order (decision time, then seq), so
the query reads only the entries it returns.

Revision ID: 0010
Revises: 0009
Created: 2026-11-29 22:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_ledger_entries_recipient_outcome_decided": ["recipient_id", "outcome", "decided_at", "seq"],
    "ix_ledger_entries_recipient_legal_basis_decided": ["recipient_id", "legal_basis", "decided_at", "seq"],
    "ix_ledger_entries_legal_basis_outcome_decided": ["legal_basis", "outcome", "decided_at", "seq"],
}


def upgrade() -> None:
    """Indexes for recipient with outcome or legal basis, and legal basis with outcome."""
    for name, columns in _INDEXES.items():
        op.create_index(name, "ledger_entries", columns, unique=False)


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
