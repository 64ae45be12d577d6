"""Releases of one message's residence data about a child with protected identity, by a named person.

Revision ID: 0003
Revises: 0002
Created: 2026-11-29 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Releases of one message's residence data about a child with protected identity."""
    op.create_table(
        "residence_releases",
        sa.Column("release_id", sa.String(length=200), nullable=False),
        sa.Column("child", sa.String(length=64), nullable=False, comment="keyed pseudonym"),
        sa.Column("message_id", sa.String(length=64), nullable=False, comment="the released sambus message"),
        sa.Column(
            "recipients", sa.String(length=2000), nullable=False, comment="system|value of each recipient"
        ),
        sa.Column("released_by", sa.String(length=200), nullable=False, comment="the case system's user id"),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("release_id", "child"),
    )


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
