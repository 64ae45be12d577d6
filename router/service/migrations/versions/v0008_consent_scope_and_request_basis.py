"""Consent scope per organisation and process; the assessment a request rested on, for its answers.

Revision ID: 0008
Revises: 0007
Created: 2026-11-29 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Consents name organisations and a process; a process keeps its request's secrecy assessment."""
    op.add_column(
        "consents",
        sa.Column(
            "organisations",
            sa.String(length=2000),
            nullable=False,
            server_default="",
            comment="system|value of each organisation named; empty: every one of the kinds",
        ),
    )
    op.add_column(
        "consents",
        sa.Column(
            "process_id",
            sa.String(length=200),
            nullable=True,
            comment="the one process the consent is for; null: any process of its purpose",
        ),
    )
    op.add_column(
        "processes",
        sa.Column(
            "request_assessment",
            sa.String(length=60),
            nullable=True,
            comment="the provision a professional assessed for the request (secrecyAssessment), if any",
        ),
    )


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError("sambus migrations go forward only")
