"""The child's identifier, sealed, on each deadline: reminders and escalations name the child's Patient.

Deadlines opened before this revision keep none: their reminders go out without the Patient and say so.

Revision ID: 0011
Revises: 0010
Created: 2026-11-30 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Two nullable columns: the key id and the sealed identifier (see sambus.router.stages.deadlines)."""
    op.add_column("deadlines", sa.Column("child_identity_key_id", sa.String(length=40), nullable=True))
    op.add_column(
        "deadlines",
        sa.Column(
            "child_identity",
            sa.String(length=400),
            nullable=True,
            comment="the child's identifier for its reminders: AES-GCM, base64(nonce + ciphertext)",
        ),
    )


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
