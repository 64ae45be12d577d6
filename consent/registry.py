"""The consent registry: guardians' consents, by child pseudonym, purpose and agency kind.

SQLite by default and PostgreSQL in production, through one SQLAlchemy Core code path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from contracts.agencies import AgencyKind, Purpose
from contracts.errors import StoreUnavailableError

metadata = sa.MetaData()

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("consent_id", sa.String(64), primary_key=True),
    sa.Column("child", sa.String(64), nullable=False, index=True, comment="keyed pseudonym of the child"),
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("agency_kind", sa.String(40), nullable=False),
    sa.Column("given_by", sa.String(40), nullable=False, comment="role of who consented, e.g. guardian"),
    sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class ConsentGrant:
    """A consent to share information about a child with agencies of given kinds, for one purpose."""

    consent_id: str
    child: str
    purpose: Purpose
    agency_kinds: frozenset[AgencyKind]
    given_by: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None = None


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return value.astimezone(dt.UTC)


class ConsentRegistry:
    """Records and looks up consents. Create with an engine; call :meth:`create_schema` once."""

    def __init__(self, engine: sa.Engine) -> None:
        """Use ``engine`` for every query."""
        self._engine = engine

    def create_schema(self) -> None:
        """Create the registry's tables when they do not exist."""
        try:
            metadata.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise StoreUnavailableError("cannot create the consent registry's tables") from exc

    def record(self, grant: ConsentGrant, *, now: dt.datetime) -> None:
        """Store a consent (idempotent on its id and agency kind)."""
        rows = [
            {
                "consent_id": f"{grant.consent_id}:{kind}",
                "child": grant.child,
                "purpose": str(grant.purpose),
                "agency_kind": str(kind),
                "given_by": grant.given_by,
                "valid_from": _utc(grant.valid_from),
                "valid_to": _utc(grant.valid_to) if grant.valid_to else None,
                "recorded_at": _utc(now),
            }
            for kind in sorted(grant.agency_kinds)
        ]
        try:
            with self._engine.begin() as conn:
                existing = set(
                    conn.scalars(
                        sa.select(consents.c.consent_id).where(
                            consents.c.consent_id.in_([r["consent_id"] for r in rows])
                        )
                    )
                )
                new_rows = [row for row in rows if row["consent_id"] not in existing]
                if new_rows:
                    conn.execute(consents.insert(), new_rows)
        except SQLAlchemyError as exc:
            raise StoreUnavailableError("cannot record the consent") from exc

    def withdraw(self, consent_id: str, *, at: dt.datetime) -> int:
        """Withdraw a consent from ``at`` on; returns how many agency grants it ended."""
        try:
            with self._engine.begin() as conn:
                result = conn.execute(
                    consents.update()
                    .where(
                        consents.c.consent_id.startswith(f"{consent_id}:", autoescape=True),
                        consents.c.withdrawn_at.is_(None),
                    )
                    .values(withdrawn_at=_utc(at))
                )
                return int(result.rowcount)
        except SQLAlchemyError as exc:
            raise StoreUnavailableError("cannot withdraw the consent") from exc

    def covers(self, *, child: str, purpose: Purpose, agency_kind: AgencyKind, at: dt.datetime) -> str | None:
        """The id of a consent in force at ``at`` covering this purpose and agency kind, or ``None``."""
        when = _utc(at)
        query = (
            sa.select(consents.c.consent_id)
            .where(
                consents.c.child == child,
                consents.c.purpose == str(purpose),
                consents.c.agency_kind == str(agency_kind),
                consents.c.valid_from <= when,
                sa.or_(consents.c.valid_to.is_(None), consents.c.valid_to > when),
                sa.or_(consents.c.withdrawn_at.is_(None), consents.c.withdrawn_at > when),
            )
            .order_by(consents.c.consent_id)
            .limit(1)
        )
        try:
            with self._engine.connect() as conn:
                found = conn.scalar(query)
        except SQLAlchemyError as exc:
            raise StoreUnavailableError("cannot read the consent registry") from exc
        return None if found is None else str(found).rsplit(":", 1)[0]
