"""Process tasks (who asked whom) and care contacts stated by the care side.

Revision ID: 0002
Revises: 0001
Created: 2026-11-29 16:18:11.494976
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Process tasks (who asked whom) and care contacts stated by the care side."""
    op.create_table(
        "care_contacts",
        sa.Column("child", sa.String(length=64), nullable=False, comment="keyed pseudonym"),
        sa.Column("unit", sa.String(length=100), nullable=False, comment="directory id of the care unit"),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False, comment="when it began or ended"),
        sa.PrimaryKeyConstraint("child", "unit"),
    )
    op.create_table(
        "process_tasks",
        sa.Column("process_id", sa.String(length=100), nullable=False),
        sa.Column("task_id", sa.String(length=100), nullable=False),
        sa.Column(
            "owner", sa.String(length=100), nullable=False, comment="directory id of the organisation asked"
        ),
        sa.Column(
            "requester", sa.String(length=100), nullable=False, comment="directory id of the one that asked"
        ),
        sa.PrimaryKeyConstraint("process_id", "task_id", "owner"),
    )


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
