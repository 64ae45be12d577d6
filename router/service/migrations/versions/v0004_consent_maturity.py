"""Who assessed a child mature enough to consent, on the child's own consent.

Revision ID: 0004
Revises: 0003
Created: 2026-11-29 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Who assessed a child mature enough to consent, on the child's own consent."""
    op.add_column(
        "consents",
        sa.Column(
            "maturity_assessed_by",
            sa.String(length=200),
            nullable=True,
            comment="a child's own consent: who assessed the child mature enough (user id)",
        ),
    )


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
