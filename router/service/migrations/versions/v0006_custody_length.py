"""Custody values up to 30 characters (specially_appointed did not fit in 10).

Revision ID: 0006
Revises: 0005
Created: 2026-11-29 17:30:10.104765
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Custody values up to 30 characters (specially_appointed did not fit in 10)."""
    with op.batch_alter_table("custody", schema=None) as batch_op:
        batch_op.alter_column(
            "custody",
            existing_type=sa.VARCHAR(length=10),
            type_=sa.String(length=30),
            existing_nullable=False,
        )


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
