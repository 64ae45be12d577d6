"""The decision ledger: one entry per (message, recipient), append-only.

This first version stores decisions idempotently; the hash chain, signed checkpoints and
encrypted identities are added on the same API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from contracts.errors import StoreUnavailableError

metadata = sa.MetaData()

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(64), nullable=False),
    sa.Column("recipient_id", sa.String(100), nullable=False),
    sa.Column("child", sa.String(64), nullable=False, index=True, comment="keyed pseudonym"),
    sa.Column("event", sa.String(60), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("rule_id", sa.String(60), nullable=False),
    sa.Column("rule_version", sa.Integer, nullable=False),
    sa.Column("legal_basis", sa.String(200), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("removed", sa.String(1000), nullable=False, default=""),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("message_id", "recipient_id", name="uq_decision_message_recipient"),
)


@dataclass(frozen=True)
class LedgerRecord:
    """One decision, as the ledger keeps it (the child only as a pseudonym)."""

    message_id: str
    recipient_id: str
    child: str
    event: str
    outcome: str
    rule_id: str
    rule_version: int
    legal_basis: str
    reason: str
    decided_at: dt.datetime
    removed: tuple[str, ...] = ()


class DecisionLedger:
    """Appends decisions in batches; a (message, recipient) already there is not written again."""

    def __init__(self, engine: sa.Engine) -> None:
        """Keep the ledger in ``engine``'s database."""
        self._engine = engine

    def create_schema(self) -> None:
        """Create the ledger's tables when they do not exist."""
        try:
            metadata.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise StoreUnavailableError("cannot create the ledger's tables") from exc

    def append(self, records: Sequence[LedgerRecord]) -> int:
        """Append the records not yet in the ledger, in order, in one transaction; returns the number new."""
        if not records:
            return 0
        keys = {(r.message_id, r.recipient_id) for r in records}
        try:
            with self._engine.begin() as conn:
                existing = set(
                    conn.execute(
                        sa.select(decisions.c.message_id, decisions.c.recipient_id).where(
                            decisions.c.message_id.in_({m for m, _ in keys})
                        )
                    ).tuples()
                )
                rows = []
                for r in records:
                    key = (r.message_id, r.recipient_id)
                    if key in existing:
                        continue
                    existing.add(key)
                    rows.append(
                        {
                            "message_id": r.message_id,
                            "recipient_id": r.recipient_id,
                            "child": r.child,
                            "event": r.event,
                            "outcome": r.outcome,
                            "rule_id": r.rule_id,
                            "rule_version": r.rule_version,
                            "legal_basis": r.legal_basis,
                            "reason": r.reason,
                            "removed": ",".join(r.removed),
                            "decided_at": r.decided_at,
                        }
                    )
                if rows:
                    conn.execute(decisions.insert(), rows)
        except SQLAlchemyError as exc:
            raise StoreUnavailableError("cannot append to the decision ledger") from exc
        return len(rows)

    def count(self) -> int:
        """How many decisions the ledger holds."""
        with self._engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(decisions)) or 0)
