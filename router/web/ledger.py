"""Reading the decision ledger for compliance: search and verify, behind a Protocol.

:class:`SqlLedgerReader` reads the ``decisions`` table of ``consent.ledger`` as it is. A ledger with a
hash chain and signed checkpoints provides its own ``verify``; this one can only check that no entry
is missing from the sequence, and says so in its result.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from consent.ledger import decisions
from contracts.errors import StoreUnavailableError


@dataclass(frozen=True)
class LedgerQuery:
    """What a compliance officer searches for; every field narrows the search."""

    child: str | None = None
    """The child's pseudonym (the personnummer is pseudonymised before it gets here)."""
    since: dt.date | None = None
    until: dt.date | None = None
    """Inclusive."""
    recipient: str | None = None
    outcome: str | None = None
    limit: int = 500


@dataclass(frozen=True)
class LedgerRow:
    """One decision as the compliance page shows it: the child only as its pseudonym, never an identity."""

    seq: int
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


@dataclass(frozen=True)
class ChainVerification:
    """The result of verifying the ledger."""

    intact: bool
    checked: int
    detail: str


class LedgerReader(Protocol):
    """The decision ledger, read-only."""

    def search(self, query: LedgerQuery) -> Sequence[LedgerRow]:
        """The decisions matching ``query``, oldest first."""
        ...

    def verify(self) -> ChainVerification:
        """Check the ledger has not been tampered with."""
        ...


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes; the ledger writes UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


class SqlLedgerReader:
    """Reads ``consent.ledger``'s ``decisions`` table."""

    def __init__(self, engine: sa.Engine) -> None:
        """Read the ledger in ``engine``'s database."""
        self._engine = engine

    def search(self, query: LedgerQuery) -> Sequence[LedgerRow]:
        """The decisions matching ``query``, oldest first.

        Raises:
            StoreUnavailableError: the database cannot be read.
        """
        c = decisions.c
        stmt = sa.select(decisions).order_by(c.seq).limit(query.limit)
        if query.child:
            stmt = stmt.where(c.child == query.child)
        if query.since:
            stmt = stmt.where(c.decided_at >= _day_start(query.since))
        if query.until:
            stmt = stmt.where(c.decided_at < _day_start(query.until + dt.timedelta(days=1)))
        if query.recipient:
            stmt = stmt.where(c.recipient_id == query.recipient)
        if query.outcome:
            stmt = stmt.where(c.outcome == query.outcome)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(stmt).all()
        except SQLAlchemyError as exc:
            raise StoreUnavailableError("cannot read the decision ledger") from exc
        return [
            LedgerRow(
                seq=r.seq, message_id=r.message_id, recipient_id=r.recipient_id, child=r.child, event=r.event,
                outcome=r.outcome, rule_id=r.rule_id, rule_version=r.rule_version,
                legal_basis=r.legal_basis, reason=r.reason, decided_at=_utc(r.decided_at),
                removed=tuple(x for x in r.removed.split(",") if x),
            )
            for r in rows
        ]  # fmt: skip

    def verify(self) -> ChainVerification:
        """Check that the sequence numbers have no gap (this ledger has no hash chain to check).

        Raises:
            StoreUnavailableError: the database cannot be read.
        """
        try:
            with self._engine.connect() as conn:
                seqs = list(conn.scalars(sa.select(decisions.c.seq).order_by(decisions.c.seq)))
        except SQLAlchemyError as exc:
            raise StoreUnavailableError("cannot read the decision ledger") from exc
        gaps = [b for a, b in itertools.pairwise(seqs) if b != a + 1]
        if seqs and seqs[0] != 1:
            gaps.insert(0, seqs[0])
        if gaps:
            return ChainVerification(
                intact=False,
                checked=len(seqs),
                detail=f"entries are missing before sequence number {gaps[0]}",
            )
        return ChainVerification(
            intact=True,
            checked=len(seqs),
            detail="no entry is missing; this ledger version has no hash chain to verify",
        )
