"""The instance that fires deadline timers, and until when its claim holds (several instances, one owner).

Revision ID: 0007
Revises: 0006
Created: 2026-11-29 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The timer owner's row (see sambus.router.stages.deadlines)."""
    op.create_table(
        "timer_owner",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False, comment="the instance that fires timers"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, comment="its claim lapses then"),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
