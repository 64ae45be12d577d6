"""Compliance queries over the decision ledger, exports (FHIR AuditEvent after IHE BALP, CSV), and their log.

Every query, export and verification is itself written to ``ledger_queries``: who asked, when, with which
filters (the child only as its pseudonym) and how many entries it returned.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import sqlalchemy as sa

from sambus.consent.ledger import LedgerDecision, entries, iso, metadata, search
from sambus.contracts.errors import map_errors
from sambus.contracts.fhir.codes import EVENT_SYSTEM

queries = sa.Table(
    "ledger_queries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("asked_at", sa.String(40), nullable=False),
    sa.Column("officer", sa.String(100), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("filters", sa.String(2000), nullable=False, comment="JSON; the child only as a pseudonym"),
    sa.Column("results", sa.Integer, nullable=False),
)

BALP_PROFILE = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.AuthZconsent"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUTHZ_SUBTYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType"
PSEUDONYM_SYSTEM = "https://sambus.se/fhir/NamingSystem/child-pseudonym"
RECIPIENT_SYSTEM = "https://sambus.se/fhir/NamingSystem/recipient"
MESSAGE_SYSTEM = "https://sambus.se/fhir/NamingSystem/message-id"
_OUTCOME_CODE = {
    "permit": "0",
    "permit_redacted": "0",
    "await_consent": "4",
    "await_answer": "4",
    "deny": "8",
}


@dataclass(frozen=True)
class LedgerQuery:
    """Filters of a compliance query; ``None`` means any.

    Attributes:
        child: the child's keyed pseudonym (the CLI computes it from a personnummer).
        since: decisions at or after this time.
        until: decisions before this time.
        legal_basis: the legal basis exactly as the ledger keeps it (the rule catalogue's provision, and for a
            provision that breaks secrecy, ``; breaks`` and the secrecy), so an index finds it.
    """

    child: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    recipient_id: str | None = None
    outcome: str | None = None
    legal_basis: str | None = None
    limit: int = 1000

    def filters(self) -> dict[str, Any]:
        """The filters set, as logged."""
        shown = {k: (iso(v) if isinstance(v, dt.datetime) else v) for k, v in asdict(self).items()}
        return {k: v for k, v in shown.items() if v is not None}


@dataclass(frozen=True, kw_only=True)
class LedgerEntry(LedgerDecision):
    """One ledger entry as it is read back: ``sambus consent query``/``export`` and the compliance page alike.

    The child is only its pseudonym, never an identity (the ledger's encrypted ``identity`` is not read).
    """

    seq: int
    entry_hash: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; ``decided_at`` as the ledger stores (and hashes) it."""
        return {**asdict(self), "decided_at": iso(self.decided_at), "removed": list(self.removed)}


_FILTERS = {
    "child": "child",
    "recipient_id": "recipient_id",
    "outcome": "outcome",
    "legal_basis": "legal_basis",
}
"""The equality filters of a :class:`LedgerQuery`: attribute, column."""
_SEEK_ORDER = (
    ("child",),
    ("recipient_id", "legal_basis"),
    ("recipient_id", "outcome"),
    ("legal_basis", "outcome"),
    ("legal_basis",),
    ("recipient_id",),
    ("outcome",),
)
"""The equality filters that lead an index (see :data:`sambus.consent.ledger.search`), most narrowing first:
a child has few decisions; what one recipient got under one legal basis, a recipient's refusals or one legal
basis's refusals few more; a legal basis from the rule catalogue is one of dozens, a recipient one of
hundreds but each with many; an outcome one of five."""


_NAMES = (
    "seq",
    "message_id",
    "recipient_id",
    "child",
    "event",
    "outcome",
    "rule_id",
    "rule_version",
    "legal_basis",
    "reason",
    "removed",
    "decided_at",
    "entry_hash",
)
"""The columns a :class:`LedgerEntry` is made of, in :meth:`Compliance.select`'s order (not the encrypted
identity): all in the compliance projection."""
_READ = tuple(search.c[name] for name in _NAMES)
_READ_TAIL = tuple(entries.c[name] for name in _NAMES)
_PROJECTED_UP_TO = sa.select(sa.func.max(search.c.seq))
_DECIDED = _NAMES.index("decided_at")


_NO_REMOVED = frozenset({"[]", "", None})


def _entry(row: Sequence[Any]) -> LedgerEntry:
    """The entry a row of :data:`_READ` holds."""
    (
        seq,
        message_id,
        recipient_id,
        child,
        event,
        outcome,
        rule_id,
        rule_version,
        legal_basis,
        reason,
        removed,
        decided_at,
        entry_hash,
    ) = row
    return LedgerEntry(
        seq=int(seq),
        message_id=message_id,
        recipient_id=recipient_id,
        child=child,
        event=event,
        outcome=outcome,
        rule_id=rule_id,
        rule_version=int(rule_version),
        legal_basis=legal_basis,
        reason=reason,
        removed=() if removed in _NO_REMOVED else tuple(json.loads(removed)),
        decided_at=dt.datetime.fromisoformat(decided_at).astimezone(dt.UTC),
        entry_hash=entry_hash,
    )


def _oldest_first(row: Sequence[Any]) -> tuple[str, int]:
    return row[_DECIDED], int(row[0])


def seek_columns(query: LedgerQuery) -> tuple[str, ...]:
    """The columns of the index a query seeks its entries in, before decision time (none: the period's)."""
    given = {name for name in _FILTERS if getattr(query, name) is not None}
    return next((columns for columns in _SEEK_ORDER if given.issuperset(columns)), ())


class Compliance:
    """Answers compliance officers' questions about the ledger, and logs each question."""

    def __init__(self, engine: sa.Engine) -> None:
        """Query the ledger in ``engine``'s database."""
        self._engine = engine

    @property
    def engine(self) -> sa.Engine:
        """The database the ledger is in."""
        return self._engine

    def log(self, *, officer: str, action: str, filters: dict[str, Any], results: int) -> None:
        """Write one line to the query log."""
        with map_errors("write the query log"), self._engine.begin() as conn:
            conn.execute(
                queries.insert().values(
                    asked_at=iso(dt.datetime.now(dt.UTC)),
                    officer=officer,
                    action=action,
                    filters=json.dumps(filters, sort_keys=True, ensure_ascii=False),
                    results=results,
                )
            )

    def find(self, query: LedgerQuery, *, officer: str, action: str = "query") -> list[LedgerEntry]:
        """The entries matching ``query``, oldest first; the question is logged under ``officer``."""
        found = self.select(query)
        self.log(officer=officer, action=action, filters=query.filters(), results=len(found))
        return found

    @staticmethod
    def statement(query: LedgerQuery, dialect: str | None = None) -> sa.Select[Any]:
        """The SELECT that :meth:`select` runs in the compliance projection for ``query`` (on ``dialect``).

        It seeks the entries in the projection's indexes (:data:`sambus.consent.ledger.search`), which holds
        all a :class:`LedgerEntry` is made of. On SQLite, which keeps no statistics (sambus does not
        ANALYZE), the index is chosen here: the one led by the filters most likely to narrow the ledger
        (:func:`seek_columns`); the other filters are written so that no index can serve them
        (``column || ''``), and SQLite cannot pick an index that would have it sift, say, every permit for
        one child's entries. PostgreSQL's planner has statistics and chooses.
        """
        seek = set(seek_columns(query)) if dialect == "sqlite" else set(_FILTERS)

        def column(name: str) -> sa.ColumnElement[Any]:
            return search.c[name] if name in seek else search.c[name].concat("")

        statement = sa.select(*_READ).order_by(search.c.decided_at, search.c.seq).limit(query.limit)
        for name in _FILTERS:
            if (value := getattr(query, name)) is not None:
                statement = statement.where(column(name) == value)
        if query.since is not None:
            statement = statement.where(search.c.decided_at >= iso(query.since))
        if query.until is not None:
            statement = statement.where(search.c.decided_at < iso(query.until))
        return statement

    @staticmethod
    def tail_statement(query: LedgerQuery, after: int, *, up_to: str | None = None) -> sa.Select[Any]:
        """The SELECT of the entries after ``seq`` ``after`` (not yet in the projection) matching ``query``.

        It reads them by their key (``seq > after``): as many as the projection is behind. With ``up_to``
        (the decision time of the last entry of a full page the projection gave), only those decided at
        or before it: a later one cannot displace any entry of that page.
        """
        statement = (
            sa.select(*_READ_TAIL)
            .where(entries.c.seq > after)
            .order_by(entries.c.decided_at, entries.c.seq)
            .limit(query.limit)
        )
        if up_to is not None:
            statement = statement.where(entries.c.decided_at <= up_to)
        for name in _FILTERS:
            if (value := getattr(query, name)) is not None:
                statement = statement.where(entries.c[name] == value)
        if query.since is not None:
            statement = statement.where(entries.c.decided_at >= iso(query.since))
        if query.until is not None:
            statement = statement.where(entries.c.decided_at < iso(query.until))
        return statement

    def select(self, query: LedgerQuery) -> list[LedgerEntry]:
        """The entries matching ``query``, oldest first, unlogged: for callers that audit themselves.

        Oldest by decision time, then by ledger order. The entries the compliance projection holds (those up
        to its highest ``seq``) are sought in its indexes, each in that order, so the query reads only the
        entries it returns, there; those appended since and not yet copied there are read from the ledger by
        their key (when the projection gave a full page, only those decided by its last entry's time). The
        answer is the same either way: complete however far behind the projection is.
        """
        statement = self.statement(query, self._engine.dialect.name)
        with map_errors("read the decision ledger"), self._engine.connect() as conn:
            projected = int(conn.scalar(_PROJECTED_UP_TO) or 0)
            rows = conn.execute(statement).all()
            # a full page: the not-yet-copied entries decided after its last cannot be in the answer, so
            # they are not sent (as many as ``limit`` of them otherwise, only to be sorted out here)
            full = bool(rows) and len(rows) >= query.limit
            up_to = rows[-1][_DECIDED] if full else None
            tail = conn.execute(self.tail_statement(query, projected, up_to=up_to)).all()
        if tail:  # the projection is behind (or was passed while this was read): merge, once per entry
            rows = sorted({row[0]: row for row in (*rows, *tail)}.values(), key=_oldest_first)[: query.limit]
        return [_entry(row) for row in rows]

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest lines of the query log, newest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(queries).order_by(queries.c.id.desc()).limit(limit)).mappings()
            return [dict(row) for row in rows]


def audit_event(entry: LedgerEntry) -> dict[str, Any]:
    """A FHIR R4 ``AuditEvent`` for one decision, shaped after IHE BALP's ``AuthZconsent`` profile."""
    outcome_desc = f"{entry.outcome}: {entry.reason} [{entry.legal_basis}]"
    return {
        "resourceType": "AuditEvent",
        "id": f"sambus-ledger-{entry.seq}",
        "meta": {"profile": [BALP_PROFILE]},
        "type": {"system": DCM, "code": "110113", "display": "Security Alert"},
        "subtype": [
            {
                "system": AUTHZ_SUBTYPE,
                "code": "AuthZ-Consent",
                "display": "Authorization Decision using Consent",
            },
            {"system": EVENT_SYSTEM, "code": entry.event},
        ],
        "action": "E",
        "recorded": iso(entry.decided_at),
        "outcome": _OUTCOME_CODE.get(entry.outcome, "4"),
        "outcomeDesc": outcome_desc,
        "agent": [
            {
                "type": {
                    "coding": [
                        {"system": DCM, "code": "110150", "display": "Application"},
                    ]
                },
                "who": {"display": "sambus consent decision service"},
                "requestor": False,
            },
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                            "display": "information recipient",
                        }
                    ]
                },
                "who": {"identifier": {"system": RECIPIENT_SYSTEM, "value": entry.recipient_id}},
                "requestor": False,
            },
        ],
        "source": {
            "observer": {"display": "sambus"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "6",
                    "display": "Security Server",
                }
            ],
        },
        "entity": [
            {
                "what": {"identifier": {"system": PSEUDONYM_SYSTEM, "value": entry.child}},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                    "display": "Person",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient",
                },
            },
            {
                "what": {
                    "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{entry.message_id}"}
                },
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                    "display": "System Object",
                },
                "detail": [
                    {"type": "rule", "valueString": f"{entry.rule_id}@{entry.rule_version}"},
                    {"type": "legal-basis", "valueString": entry.legal_basis},
                    *([{"type": "removed", "valueString": ",".join(entry.removed)}] if entry.removed else []),
                    {"type": "ledger-hash", "valueString": entry.entry_hash},
                ],
            },
        ],
    }


CSV_COLUMNS = (
    "seq",
    "decided_at",
    *(f.name for f in fields(LedgerDecision) if f.name != "decided_at"),
    "entry_hash",
)
"""The columns of a CSV export: the entry's number and time first, then its fields, then its hash."""


def csv_text(found: Sequence[LedgerEntry]) -> str:
    """The entries as CSV with a header row (the child as its pseudonym)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in found:
        values = entry.to_json()
        values["removed"] = ";".join(entry.removed)
        writer.writerow([values[column] for column in CSV_COLUMNS])
    return out.getvalue()
