"""An index on the deadlines' child: a message that closes a child's deadlines no longer reads them all.

A SIP initiated closes the joint planning of the child's acute placements, a placement ended its reviews and
its examination request, a hand-over meeting the child's transition to adulthood: each looked for them by
child through the whole deadline table (one row per deadline ever opened), once per such message.

Revision ID: 0014
Revises: 0012
Created: 2026-11-30 05:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0012"  # v0013 is the processes helper's; the lead orders them on merge
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The index ``sambus.router.stages.deadlines`` declares on ``deadlines.child``."""
    op.create_index("ix_deadlines_child", "deadlines", ["child"], unique=False)


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
