"""Follow-up outcomes: when each 2017:209 statement came (medical, oral), and how a SIP closed.

Revision ID: 0009
Revises: 0008
Created: 2026-11-29 22:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The anonymous facts date the two 2017:209 statements apart and keep a SIP's closure reason."""
    op.add_column(
        "followup_facts",
        sa.Column("medical_on", sa.Date, comment="2017:209: the mental and physical health statement came"),
    )
    op.add_column(
        "followup_facts", sa.Column("oral_on", sa.Date, comment="2017:209: the oral health statement came")
    )
    op.add_column("followup_facts", sa.Column("closed_on", sa.Date, comment="SIP closed"))
    op.add_column(
        "followup_facts", sa.Column("closure_reason", sa.String(length=40), comment="why the SIP closed")
    )


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
