"""Every table sambus made at start-up before it had migrations, as that code made them.

Revision ID: 0001
Revises:
Created: 2026-11-29
"""

from __future__ import annotations

from alembic import op

from sambus.router.service.migrations import baseline

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the consent registry, the ledger, process state, deadlines, seen events, facts and audit."""
    baseline.create(op.get_bind())


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
