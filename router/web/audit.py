"""The audit log of the web surfaces: every compliance search, export and verification is recorded.

The criteria are kept with the child only as its pseudonym, never the personnummer that was typed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from sambus.contracts.errors import map_errors
from sambus.router.web.auth import Principal

metadata = sa.MetaData()

web_audit = sa.Table(
    "web_audit",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("criteria", sa.Text, nullable=False, comment="JSON; the child only as a pseudonym"),
    sa.Column("results", sa.Integer, nullable=False),
)


@dataclass(frozen=True)
class AuditEntry:
    """One audited action."""

    at: dt.datetime
    who: str
    role: str
    action: str
    criteria: Mapping[str, str]
    results: int


class AuditLog:
    """Appends audit entries to the database."""

    def __init__(self, engine: sa.Engine) -> None:
        """Keep the log in ``engine``'s database."""
        self._engine = engine

    def record(
        self,
        principal: Principal,
        action: str,
        criteria: Mapping[str, str],
        *,
        results: int,
        at: dt.datetime | None = None,
    ) -> None:
        """Write one entry; the action is not done (the caller raises) when this fails.

        Raises:
            StoreUnavailableError: the database cannot be written.
        """
        row = {
            "at": at or dt.datetime.now(dt.UTC),
            "who": principal.name,
            "role": str(principal.role),
            "action": action,
            "criteria": json.dumps(dict(criteria), sort_keys=True),
            "results": results,
        }
        with map_errors("write the audit log"), self._engine.begin() as conn:
            conn.execute(web_audit.insert(), [row])

    def entries(self, *, limit: int = 200) -> Sequence[AuditEntry]:
        """The most recent entries, newest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(web_audit).order_by(web_audit.c.seq.desc()).limit(limit)).all()
        return [
            AuditEntry(
                at=r.at, who=r.who, role=r.role, action=r.action, criteria=json.loads(r.criteria),
                results=r.results,
            )
            for r in rows
        ]  # fmt: skip
