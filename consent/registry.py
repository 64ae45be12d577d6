"""The consent registry: consents, custody and protection decisions, by child pseudonym.

SQLite by default and PostgreSQL in production, through one SQLAlchemy Core code path. The registry never
stores a personnummer: facts arrive with it (see :mod:`sambus.contracts.registry_facts`), and the registry
keeps the
child's keyed pseudonym and birth date (for the 18-year rule) and the guardians' pseudonyms.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa

from sambus.consent.county import ADULT_AGE, VASTMANLAND, CountyPolicy, age_on
from sambus.consent.pseudonym import Pseudonymizer
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.errors import ConfigError, InvalidEventError, map_errors
from sambus.contracts.fhir.message import deterministic_id
from sambus.contracts.identifiers import birth_date, normalise_system
from sambus.contracts.registry_facts import (
    ChildObjected,
    ConsentGiven,
    ConsentWithdrawn,
    Custody,
    CustodyUpdated,
    GivenBy,
    GuardianSecrecyDecided,
    GuardianSecrecyLifted,
    HiddenResidenceDecided,
    HiddenResidenceLifted,
    HiddenResidenceNotNeeded,
    IdentityLevel,
    IdentityProtected,
    IdentityProtectionEnded,
    RegistryFact,
    ResidenceReleased,
)

metadata = sa.MetaData()

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("consent_id", sa.String(200), primary_key=True, comment="<consent id>:<agency kind>"),
    sa.Column(
        "child",
        sa.String(64),
        primary_key=True,
        comment="keyed pseudonym of the child; consent ids are the senders' own, unique per child only",
    ),
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("agency_kind", sa.String(40), nullable=False),
    sa.Column("given_by", sa.String(40), nullable=False, comment="guardian or child"),
    sa.Column("guardians", sa.String(2000), nullable=False, default="", comment="guardian pseudonyms"),
    sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "maturity_assessed_by",
        sa.String(200),
        nullable=True,
        comment="a child's own consent: who assessed the child mature enough (user id)",
    ),
    sa.Column(
        "organisations",
        sa.String(2000),
        nullable=False,
        default="",
        server_default="",
        comment="system|value of each organisation named; empty: every one of the kinds",
    ),
    sa.Column(
        "process_id",
        sa.String(200),
        nullable=True,
        comment="the one process the consent is for; null: any process of its purpose",
    ),
)

children = sa.Table(
    "children",
    metadata,
    sa.Column("child", sa.String(64), primary_key=True, comment="keyed pseudonym"),
    sa.Column("birth_date", sa.Date, nullable=False),
)

custody = sa.Table(
    "custody",
    metadata,
    sa.Column("child", sa.String(64), primary_key=True, comment="keyed pseudonym"),
    sa.Column("custody", sa.String(30), nullable=False),
    sa.Column("guardians", sa.String(2000), nullable=False, comment="guardian pseudonyms"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

releases = sa.Table(
    "residence_releases",
    metadata,
    sa.Column("release_id", sa.String(200), primary_key=True),
    sa.Column("child", sa.String(64), primary_key=True, comment="keyed pseudonym"),
    sa.Column("message_id", sa.String(64), nullable=False, comment="the released sambus message"),
    sa.Column("recipients", sa.String(2000), nullable=False, comment="system|value of each recipient"),
    sa.Column("released_by", sa.String(200), nullable=False, comment="the case system's user id"),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

protections = sa.Table(
    "protections",
    metadata,
    sa.Column("decision_id", sa.String(200), primary_key=True),
    sa.Column("child", sa.String(64), nullable=False, index=True, comment="keyed pseudonym"),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
    sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
)


class Protection(StrEnum):
    """Protection decisions that hide where a child lives."""

    HIDDEN_RESIDENCE = "hidden_residence"
    """LVU 14 § second paragraph point 2: the residence is kept from the parents and guardians."""
    SEKRETESSMARKERING = str(IdentityLevel.SEKRETESSMARKERING)
    """Protected identity, first level: sekretessmarkering (OSL 22:1)."""
    SKYDDAD_FOLKBOKFORING = str(IdentityLevel.SKYDDAD_FOLKBOKFORING)
    """Protected identity, second level: skyddad folkbokföring."""
    FINGERADE_PERSONUPPGIFTER = str(IdentityLevel.FINGERADE_PERSONUPPGIFTER)
    """Protected identity, third level: fingerade personuppgifter (never link old and new identity)."""
    PROTECTED_IDENTITY = "protected_identity"
    """Protected identity of a level not known (e.g. a message labelled only ``V``): handled as protected."""
    SECRET_FROM_GUARDIANS = "secret_from_guardians"  # noqa: S105 - a protection, not a password
    """OSL 12:3: secrecy applies against the guardians; guardian-facing recipients get no content."""

    @property
    def shown(self) -> str:
        """The protection as a decision's reason names it."""
        return _SHOWN[self]


_SHOWN = {
    Protection.HIDDEN_RESIDENCE: "hidden residence (LVU 14 §)",
    Protection.SEKRETESSMARKERING: "sekretessmarkering",
    Protection.SKYDDAD_FOLKBOKFORING: "skyddad folkbokföring",
    Protection.FINGERADE_PERSONUPPGIFTER: "fingerade personuppgifter",
    Protection.PROTECTED_IDENTITY: "protected identity",
    Protection.SECRET_FROM_GUARDIANS: "secret from the guardians (OSL 12:3)",
}

IDENTITY_PROTECTIONS = frozenset(
    {
        Protection.SEKRETESSMARKERING,
        Protection.SKYDDAD_FOLKBOKFORING,
        Protection.FINGERADE_PERSONUPPGIFTER,
        Protection.PROTECTED_IDENTITY,
    }
)
"""Protected identity, at any level: no residence-revealing data reaches anyone unless released."""

EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
"""From when a protected identity learned from a message applies: its start is not known, so always."""


def _protection(kind: object) -> Protection:
    """A stored protection kind; one this version does not know is handled as protected identity."""
    try:
        return Protection(str(kind))
    except ValueError:
        return Protection.PROTECTED_IDENTITY


@dataclass(frozen=True)
class Release:
    """A named person's release of one message's residence data to one recipient."""

    release_id: str
    released_by: str


@dataclass(frozen=True)
class ConsentGrant:
    """A consent to share information about a child with agencies of given kinds, for one purpose.

    Attributes:
        child: the child's keyed pseudonym.
        given_by: ``guardian`` (or any other role) or ``child``; see :class:`GivenBy`.
        guardians: pseudonyms of the guardians who consented.
    """

    consent_id: str
    child: str
    purpose: Purpose
    agency_kinds: frozenset[AgencyKind]
    given_by: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None = None
    guardians: tuple[str, ...] = ()
    maturity_assessed_by: str | None = None
    organisations: tuple[tuple[str, str], ...] = ()
    """``(system, value)`` of the organisations it names; empty: every organisation of ``agency_kinds``."""
    process_id: str | None = None
    """The one process it is for; ``None``: any process of its purpose."""


OBJECTION = "objection"
"""``given_by`` of a child's objection (kept beside the consents, for the same purpose and kinds)."""


@dataclass(frozen=True)
class Scope:
    """Which organisation and process a decision is for: a consent naming others does not count for it.

    Attributes:
        organisations: the recipient's own identifiers as ``system|value`` (systems normalised).
        process_id: the message's process (``Task.groupIdentifier``), when it has one.
    """

    organisations: frozenset[str] = frozenset()
    process_id: str | None = None

    @classmethod
    def of(cls, identifiers: Sequence[tuple[str, str]], process_id: str | None) -> Scope:
        """The scope of a recipient with ``identifiers`` in process ``process_id``."""
        return cls(frozenset(f"{normalise_system(s)}|{v}" for s, v in identifiers), process_id)

    def covers(self, row: ConsentRow) -> bool:
        """Whether a consent (or objection) row's organisations and process include this scope."""
        named = row.organisations
        if named and not (named & self.organisations):
            return False
        return row.process_id is None or row.process_id == self.process_id


@dataclass(frozen=True)
class ConsentAnswer:
    """Whether a consent in force covers a sharing, and why (or why not).

    Attributes:
        withdrawn: no consent counts because one that covered the sharing was withdrawn: the sharing is
            refused, not awaited.
        objected: no guardian's consent counts because the child objected: the sharing is refused.
    """

    consent_id: str | None
    reason: str
    withdrawn: bool = False
    objected: bool = False


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return value.astimezone(dt.UTC)


def _aware_time(value: dt.datetime) -> dt.datetime:
    """SQLite gives back naive times; they were stored as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """:func:`_aware_time` of a time that may be ``None`` (a nullable column)."""
    return None if value is None else _aware_time(value)


def _names(joined: str) -> frozenset[str]:
    return frozenset(name for name in joined.split(",") if name)


@dataclass(frozen=True)
class Assessment:
    """What the registry knows of a child at one moment: age, protections and, when asked, consent.

    Attributes:
        residence_answered: social services answered the hidden-residence question for the child: a
            decision to hide (in force or lifted) or not to hide is recorded.
    """

    age: int | None
    consent: ConsentAnswer | None
    protections: frozenset[Protection]
    residence_answered: bool = False


def _in_force(
    valid_from: dt.datetime, valid_to: dt.datetime | None, ended: dt.datetime | None, when: dt.datetime
) -> bool:
    """Whether a fact valid from ``valid_from`` (until ``valid_to``, unless ``ended``) holds at ``when``.

    The times are timezone-aware (:func:`_aware` made them so when the row was read).
    """
    return valid_from <= when and (valid_to is None or valid_to > when) and (ended is None or ended > when)


@dataclass(frozen=True, slots=True)
class ConsentRow:
    """A consent (or objection) row as read: plain values, times timezone-aware, name lists split.

    Attributes:
        consent_id: ``<consent id>:<agency kind>`` as stored.
        guardians: the signers' pseudonyms (the stored comma-separated list, split).
        organisations: ``system|value`` of each organisation named (split); empty: every one of the kinds.
    """

    consent_id: str
    purpose: str
    agency_kind: str
    given_by: str
    guardians: frozenset[str]
    maturity_assessed_by: str | None
    organisations: frozenset[str]
    process_id: str | None
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    withdrawn_at: dt.datetime | None

    @classmethod
    def of(cls, row: sa.Row[Any]) -> ConsentRow:
        """The row of :data:`_CONSENTS_STATEMENT` as plain values."""
        return cls(
            consent_id=row.consent_id,
            purpose=row.purpose,
            agency_kind=row.agency_kind,
            given_by=row.given_by,
            guardians=_names(row.guardians),
            maturity_assessed_by=row.maturity_assessed_by,
            organisations=_names(row.organisations or ""),
            process_id=row.process_id,
            valid_from=_aware_time(row.valid_from),
            valid_to=_aware(row.valid_to),
            withdrawn_at=_aware(row.withdrawn_at),
        )


@dataclass(frozen=True, slots=True)
class ProtectionRow:
    """A protection decision row as read: its kind as stored and as a :class:`Protection`, times aware."""

    kind: str
    protection: Protection
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    lifted_at: dt.datetime | None

    @classmethod
    def of(cls, row: sa.Row[Any]) -> ProtectionRow:
        """The row of :data:`_PROTECTIONS_STATEMENT` as plain values."""
        return cls(
            kind=row.kind,
            protection=_protection(row.kind),
            valid_from=_aware_time(row.valid_from),
            valid_to=_aware(row.valid_to),
            lifted_at=_aware(row.lifted_at),
        )


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    """A residence release row as read, its recipients split."""

    release_id: str
    message_id: str
    recipients: frozenset[str]
    released_by: str

    @classmethod
    def of(cls, row: sa.Row[Any]) -> ReleaseRow:
        """The row of :data:`_RELEASES_STATEMENT` as plain values."""
        return cls(
            release_id=str(row.release_id),
            message_id=row.message_id,
            recipients=_names(row.recipients),
            released_by=str(row.released_by),
        )


@dataclass(frozen=True)
class ChildFacts:
    """Every registry row about one child, read once: decisions filter them by time in memory.

    Attributes:
        known: ``(birth_date, custody, guardians)`` of the child as one row, ``None`` when the registry knows
            neither its birth date nor its custody.
        consents: every consent row of the child, in the database's ``consent_id`` order.
        protections: every protection row of the child.
        releases: every residence release of the child in ``release_id`` order; ``None`` when not loaded
            (:meth:`ConsentRegistry.release_for` then asks the database).
    """

    known: Known | None = None
    consents: tuple[ConsentRow, ...] = ()
    protections: tuple[ProtectionRow, ...] = ()
    releases: tuple[ReleaseRow, ...] | None = None

    def protections_at(self, when: dt.datetime) -> frozenset[Protection]:
        """The protection decisions in force at ``when``."""
        return frozenset(
            row.protection
            for row in self.protections
            if _in_force(row.valid_from, row.valid_to, row.lifted_at, when)
        )

    def consents_at(self, purpose: Purpose, agency_kind: AgencyKind, when: dt.datetime) -> list[ConsentRow]:
        """The consent rows in force at ``when`` for this purpose and agency kind, in ``consent_id`` order."""
        return [
            row
            for row in self.consents
            if row.purpose == str(purpose)
            and row.agency_kind == str(agency_kind)
            and _in_force(row.valid_from, row.valid_to, row.withdrawn_at, when)
        ]

    def withdrawn_by(self, purpose: Purpose, agency_kind: AgencyKind, when: dt.datetime) -> list[ConsentRow]:
        """Consents (not objections) for this purpose and agency kind withdrawn by ``when``, latest first."""
        withdrawn = [
            row
            for row in self.consents
            if row.purpose == str(purpose)
            and row.agency_kind == str(agency_kind)
            and row.given_by != OBJECTION
            and row.withdrawn_at is not None
            and row.withdrawn_at <= when
        ]
        return sorted(withdrawn, key=lambda row: row.withdrawn_at or when, reverse=True)

    def residence_answered(self, when: dt.datetime) -> bool:
        """Whether a hidden-residence decision (to hide, lifted or not to hide) was made by ``when``."""
        return any(
            row.kind == str(Protection.HIDDEN_RESIDENCE) and row.valid_from <= when
            for row in self.protections
        )


_CHILDREN: sa.BindParameter[Any] = sa.bindparam("children", expanding=True)
_BORN_STATEMENT = sa.select(children.c.child, children.c.birth_date).where(children.c.child.in_(_CHILDREN))
_CUSTODY_STATEMENT = sa.select(custody.c.child, custody.c.custody, custody.c.guardians).where(
    custody.c.child.in_(_CHILDREN)
)
_PROTECTIONS_STATEMENT = sa.select(
    protections.c.child,
    protections.c.kind,
    protections.c.valid_from,
    protections.c.valid_to,
    protections.c.lifted_at,
).where(protections.c.child.in_(_CHILDREN))
_CONSENTS_STATEMENT = (
    sa.select(
        consents.c.child,
        consents.c.consent_id,
        consents.c.purpose,
        consents.c.agency_kind,
        consents.c.given_by,
        consents.c.guardians,
        consents.c.maturity_assessed_by,
        consents.c.organisations,
        consents.c.process_id,
        consents.c.valid_from,
        consents.c.valid_to,
        consents.c.withdrawn_at,
    )
    .where(consents.c.child.in_(_CHILDREN))
    .order_by(consents.c.child, consents.c.consent_id)
)
_RELEASES_STATEMENT = (
    sa.select(
        releases.c.child,
        releases.c.release_id,
        releases.c.message_id,
        releases.c.recipients,
        releases.c.released_by,
    )
    .where(releases.c.child.in_(_CHILDREN))
    .order_by(releases.c.child, releases.c.release_id)
)
"""Built once: SQLAlchemy compiles each of them once (its compiled cache), and each reads one table for all
the children of a batch."""


@dataclass(frozen=True)
class Known:
    """The child's birth date and custody, as far as the registry knows them."""

    birth_date: dt.date | None
    custody: str | None
    guardians: str | None

    @functools.cached_property
    def custodians(self) -> Custodians | None:
        """Who may consent for the child; ``None`` when custody is not known (worked out once)."""
        if self.custody is None:
            return None
        return Custodians(form=Custody(str(self.custody)), guardians=_names(self.guardians or ""))


def _known(born: dt.date | None, custody_form: tuple[str, str] | None) -> Known | None:
    if born is None and custody_form is None:
        return None
    return Known(
        birth_date=born,
        custody=None if custody_form is None else custody_form[0],
        guardians=None if custody_form is None else custody_form[1],
    )


Plain = TypeVar("Plain")


def _by_child(rows: Iterable[Any], plain: Callable[[sa.Row[Any]], Plain]) -> dict[str, list[Plain]]:
    """The rows by child, in the order read, each made plain values by ``plain`` (once, here)."""
    found: dict[str, list[Plain]] = {}
    for row in rows:
        found.setdefault(str(row.child), []).append(plain(row))
    return found


def load_facts(
    conn: sa.Connection, wanted: Iterable[str], *, releases_too: bool = True
) -> dict[str, ChildFacts]:
    """Every registry row about the ``wanted`` children, one query per table (none: empty facts)."""
    names = sorted(set(wanted))
    if not names:
        return {}
    params = {"children": names}
    born = {str(row.child): row.birth_date for row in conn.execute(_BORN_STATEMENT, params)}
    forms = {
        str(row.child): (str(row.custody), str(row.guardians))
        for row in conn.execute(_CUSTODY_STATEMENT, params)
    }
    protected = _by_child(conn.execute(_PROTECTIONS_STATEMENT, params), ProtectionRow.of)
    consented = _by_child(conn.execute(_CONSENTS_STATEMENT, params), ConsentRow.of)
    released = _by_child(conn.execute(_RELEASES_STATEMENT, params), ReleaseRow.of) if releases_too else None
    return {
        child: ChildFacts(
            known=_known(born.get(child), forms.get(child)),
            consents=tuple(consented.get(child, ())),
            protections=tuple(protected.get(child, ())),
            releases=None if released is None else tuple(released.get(child, ())),
        )
        for child in names
    }


@dataclass(frozen=True)
class Custodians:
    """Who may consent for a child: the custody form and the current guardians' pseudonyms.

    ``None`` in place of a :class:`Custodians` means custody is not known: no guardian's consent counts.
    """

    form: Custody
    guardians: frozenset[str]

    def needed(self, county: CountyPolicy) -> int:
        """How many of the guardians must consent: all of two (where the county says so), else one."""
        both = len(self.guardians) > 1 and county.joint_custody_needs_both
        return len(self.guardians) if both else 1


def _guardians_answer(
    rows: Sequence[ConsentRow], custodians: Custodians | None, county: CountyPolicy
) -> ConsentAnswer:
    """Whether the guardians' records in force, together, make a consent; signers must be current guardians.

    Each guardian may sign a record of their own: records combine. A signature by anyone who is not a
    current guardian (a foster parent, a parent without custody) counts for nothing.
    """
    guardian_rows = [row for row in rows if row.given_by != GivenBy.CHILD]
    if custodians is None:
        return ConsentAnswer(
            None,
            "custody is not known: no guardian's consent counts until social services records who has "
            "custody",
        )
    signed: set[str] = set()
    used: list[str] = []
    strangers = False
    for row in guardian_rows:
        signers = row.guardians
        strangers = strangers or bool(signers - custodians.guardians)
        counted = signers & custodians.guardians
        if counted - signed:
            used.append(str(row.consent_id).rsplit(":", 1)[0])
            signed |= counted
    needed = custodians.needed(county)
    if len(signed) >= needed:
        ids = " + ".join(used)
        who = "the guardians'" if needed > 1 else "a guardian's"
        return ConsentAnswer(ids, f"{who} consent {ids} ({custodians.form} custody)")
    why = f"{custodians.form} custody needs the consent of {needed} guardian(s), {len(signed)} gave it"
    if strangers:
        why += "; a consent signed by someone who is not a current guardian counts for nothing"
    return ConsentAnswer(None, why)


def _answer(
    rows: Sequence[ConsentRow], *, age: int | None, custodians: Custodians | None, county: CountyPolicy
) -> ConsentAnswer | None:
    """The consent that counts, or why none does (``None``: there is no consent at all).

    From 18 only the young person's own consent counts. Before 18 the guardians' does, and so does the
    child's own from the county's age when a professional assessed the child mature enough (OSL 12:3). A
    child's objection in force (a row given by :data:`OBJECTION`) makes every guardian's consent count for
    nothing; the child's own consent, where it counts, still does.
    """
    objections = [row for row in rows if row.given_by == OBJECTION]
    rows = [row for row in rows if row.given_by != OBJECTION]
    if not rows and not objections:
        return None
    adult = age is not None and age >= ADULT_AGE
    if not adult and age is not None and age >= county.child_consent_from_age:
        for row in rows:
            if row.given_by == GivenBy.CHILD and row.maturity_assessed_by:
                consent_id = str(row.consent_id).rsplit(":", 1)[0]
                return ConsentAnswer(
                    consent_id,
                    f"the child's own consent {consent_id} (age {age}, maturity assessed by "
                    f"{row.maturity_assessed_by})",
                )
    if adult:
        for row in rows:
            if row.given_by == GivenBy.CHILD:
                consent_id = str(row.consent_id).rsplit(":", 1)[0]
                return ConsentAnswer(consent_id, f"the young person's own consent {consent_id}")
        return ConsentAnswer(None, "from 18 only the young person's own consent counts")
    if objections:
        objection = objections[0]
        objection_id = str(objection.consent_id).rsplit(":", 1)[0]
        return ConsentAnswer(
            None,
            f"objected: the child objected ({objection_id}, heard by {objection.maturity_assessed_by}); "
            "no guardian's consent counts against the child's objection (OSL 12:3)",
            objected=True,
        )
    return _guardians_answer(rows, custodians, county)


_CHILDS_VOICE = (ConsentGiven, ChildObjected, GuardianSecrecyDecided, GuardianSecrecyLifted)
"""Facts about the child's own voice: consents, objections, secrecy against the guardians."""


def guardian_secrecy_id(child: str, decision_id: str) -> str:
    """The registry's id of a guardian-secrecy decision (decision ids are the senders' own, per child)."""
    return f"guardian-secrecy:{child}:{decision_id}"


class ConsentRegistry:
    """Records and looks up consents, custody and protections (tables made by ``sambus db upgrade``)."""

    def __init__(
        self,
        engine: sa.Engine,
        pseudonymizer: Pseudonymizer | None = None,
        *,
        county: CountyPolicy = VASTMANLAND,
    ) -> None:
        """Use ``engine`` for every query; ``pseudonymizer`` is needed to :meth:`apply` facts."""
        self._engine = engine
        self._pseudonymizer = pseudonymizer
        self.county = county
        self._batch: contextvars.ContextVar[dict[str, ChildFacts] | None] = contextvars.ContextVar(
            f"registry-batch-{id(self)}", default=None
        )

    # Batches

    def load_batch(self, wanted: Iterable[str]) -> None:
        """Read every fact about the ``wanted`` children (one query per table) for the decisions that follow.

        Until :meth:`end_batch`, questions about these children are answered from memory, in this asyncio
        task (or thread) only: other stages sharing the registry keep asking the database. A fact
        :meth:`apply` records for a child meanwhile reads that child's facts again, so a later message of
        the batch sees it.
        """
        self.hold_batch(self.read_batch(wanted))

    def read_batch(self, wanted: Iterable[str]) -> dict[str, ChildFacts]:
        """Every fact about the ``wanted`` children, one query per table (blocking: any thread may call it).

        Raises:
            StoreUnavailableError: the registry cannot be read (retriable).
        """
        with map_errors("read the consent registry"), self._engine.connect() as conn:
            return load_facts(conn, wanted)

    def hold_batch(self, facts: dict[str, ChildFacts]) -> None:
        """Answer questions about the children in ``facts`` (read by :meth:`read_batch`) from them."""
        self._batch.set(facts)

    def end_batch(self) -> None:
        """Forget the facts :meth:`load_batch` read: questions go to the database again."""
        self._batch.set(None)

    def _refresh(self, child: str) -> None:
        """After a write about ``child``: read its facts again if a batch holds them."""
        batch = self._batch.get()
        if batch is not None and child in batch:
            with map_errors("read the consent registry"), self._engine.connect() as conn:
                batch.update(load_facts(conn, [child]))

    def _facts(self, child: str) -> ChildFacts:
        """The child's facts: from the batch in hand, else read now."""
        batch = self._batch.get()
        if batch is not None and child in batch:
            return batch[child]
        with map_errors("read the consent registry"), self._engine.connect() as conn:
            return load_facts(conn, [child], releases_too=False)[child]

    # Facts

    def apply(self, facts: Sequence[RegistryFact]) -> None:
        """Record facts read from messages, in order.

        Raises:
            ConfigError: the registry has no pseudonymizer.
            InvalidEventError: a child under the county's age for own consent is said to have consented.
        """
        if self._pseudonymizer is None:
            raise ConfigError("the consent registry needs the pseudonym key to record facts")
        of = self._pseudonymizer.of
        for fact in facts:
            child = of(fact.child)
            try:
                self._apply_one(fact, child, of)
            finally:  # also after a fact refused half-way (its child's birth date may be in)
                self._refresh(child)

    def _apply_one(self, fact: RegistryFact, child: str, of: Callable[[str], str]) -> None:
        if isinstance(fact, _CHILDS_VOICE):
            self._apply_childs_voice(fact, child)
        elif isinstance(fact, ConsentWithdrawn):
            self.withdraw(fact.consent_id, at=fact.at, child=child)
        elif isinstance(fact, CustodyUpdated):
            self._record_born(child, fact)
            self.set_custody(child, fact.custody, tuple(of(g) for g in fact.guardians), at=fact.at)
        elif isinstance(fact, HiddenResidenceDecided | HiddenResidenceLifted | HiddenResidenceNotNeeded):
            self._apply_hidden_residence(fact, child)
        elif isinstance(fact, IdentityProtected):
            self._protect_identity(child, Protection(str(fact.level)))
        elif isinstance(fact, IdentityProtectionEnded):
            self.end_identity_protection(child, at=fact.at)
        elif isinstance(fact, ResidenceReleased):
            self.record_release(fact, child=child)

    def _apply_childs_voice(
        self,
        fact: ConsentGiven | ChildObjected | GuardianSecrecyDecided | GuardianSecrecyLifted,
        child: str,
    ) -> None:
        """Record a consent, a child's objection (beside the consents) or secrecy against the guardians.

        Secrecy against the guardians lifted early ends at the lift; a lift read before its decision ends
        nothing, and the decision then holds to its ``valid_to`` (fails closed).
        """
        if isinstance(fact, ConsentGiven):
            self._apply_consent(fact, child)
            return
        if isinstance(fact, GuardianSecrecyLifted):
            self.lift(guardian_secrecy_id(child, fact.decision_id), at=fact.at)
            return
        if isinstance(fact, GuardianSecrecyDecided):
            self.protect(
                guardian_secrecy_id(child, fact.decision_id),
                child=child,
                kind=Protection.SECRET_FROM_GUARDIANS,
                valid_from=fact.valid_from,
                valid_to=fact.valid_to,
            )
            return
        self._record_born(child, fact)
        self.record(
            ConsentGrant(
                consent_id=fact.objection_id,
                child=child,
                purpose=fact.purpose,
                agency_kinds=fact.agency_kinds,
                given_by=OBJECTION,
                valid_from=fact.valid_from,
                valid_to=fact.valid_to,
                maturity_assessed_by=fact.assessed_by,
            ),
            now=fact.recorded_at,
        )

    def _protect_identity(self, child: str, level: Protection) -> None:
        """Keep a protected identity learned from a message's label (once while it is in force).

        The first is in force always (its start is not known); one labelled again after an end is in force
        from that end on, as a decision of its own, so the end stays in the registry's history.
        """
        with map_errors("record the protection decision"), self._engine.begin() as conn:
            rows = conn.execute(
                sa.select(protections.c.decision_id, protections.c.lifted_at).where(
                    protections.c.child == child, protections.c.kind == str(level)
                )
            ).all()
            if any(row.lifted_at is None for row in rows):
                return
            ended = max(
                (lifted for row in rows if (lifted := _aware(row.lifted_at)) is not None), default=None
            )
            conn.execute(
                protections.insert().values(
                    decision_id=f"identity:{child}:{level}" + (f":{len(rows)}" if rows else ""),
                    child=child,
                    kind=str(level),
                    valid_from=ended or EARLIEST,
                )
            )

    def end_identity_protection(self, child: str, *, at: dt.datetime) -> int:
        """End every protected-identity level held for ``child`` (pseudonym) from ``at``; how many ended."""
        return self._write(
            "end the protected identity",
            protections.update()
            .where(
                protections.c.child == child,
                protections.c.kind.in_([str(p) for p in IDENTITY_PROTECTIONS]),
                protections.c.lifted_at.is_(None),
            )
            .values(lifted_at=_utc(at)),
        )

    def _apply_hidden_residence(
        self, fact: HiddenResidenceDecided | HiddenResidenceLifted | HiddenResidenceNotNeeded, child: str
    ) -> None:
        if isinstance(fact, HiddenResidenceLifted):
            self.lift(fact.decision_id, at=fact.at)
            return
        # a decision not to hide is kept as a hidden-residence decision whose period is empty: never in
        # force, but it answers the question (see Assessment.residence_answered)
        start, end = (
            (fact.valid_from, fact.valid_to)
            if isinstance(fact, HiddenResidenceDecided)
            else (fact.at, fact.at)
        )
        self.protect(
            fact.decision_id, child=child, kind=Protection.HIDDEN_RESIDENCE, valid_from=start, valid_to=end
        )

    def _apply_consent(self, fact: ConsentGiven, child: str) -> None:
        if self._pseudonymizer is None:  # pragma: no cover - apply checks it first
            raise ConfigError("the consent registry needs the pseudonym key to record facts")
        of = self._pseudonymizer.of
        born = self._record_born(child, fact)
        if fact.given_by is GivenBy.CHILD and born is None:
            raise InvalidEventError(
                "a child's own consent needs the child's age: send birthDate with a child named by "
                "lmaNumber or reserveNumber",
                field="child.birthDate",
            )
        if fact.given_by is GivenBy.CHILD and (
            born is not None and age_on(born, fact.valid_from.date()) < self.county.child_consent_from_age
        ):
            raise InvalidEventError(
                f"in {self.county.county} a child's own consent is recorded from age "
                f"{self.county.child_consent_from_age}",
                field="given_by",
            )
        grant = ConsentGrant(
            consent_id=fact.consent_id,
            child=child,
            purpose=fact.purpose,
            agency_kinds=fact.agency_kinds,
            given_by=str(fact.given_by),
            valid_from=fact.valid_from,
            valid_to=fact.valid_to,
            guardians=tuple(of(g) for g in fact.guardians),
            maturity_assessed_by=fact.maturity_assessed_by,
            organisations=fact.organisations,
            process_id=fact.process_id,
        )
        self.record(grant, now=fact.recorded_at)

    def _write(self, what: str, statement: sa.Executable, rows: list[dict[str, object]] | None = None) -> int:
        with map_errors(f"{what}"), self._engine.begin() as conn:
            result = conn.execute(statement, rows) if rows is not None else conn.execute(statement)
            return int(result.rowcount)

    def _record_born(self, child: str, fact: ConsentGiven | ChildObjected | CustodyUpdated) -> dt.date | None:
        """Keep the child's birth date: from its personnummer or samordningsnummer, else as sent (if sent).

        A child known by LMA number or reservnummer without a birth date has no age in the registry, which
        fails closed: only its guardians' consent counts, never its own.
        """
        born = fact.born
        if born is None and fact.child.isdigit():
            born = birth_date(fact.child)
        if born is not None:
            self.record_child(child, born)
        return born

    def record_child(self, child: str, born: dt.date) -> None:
        """Keep the child's birth date (for the 18-year rule) under its pseudonym."""
        with map_errors("record the child"), self._engine.begin() as conn:
            if conn.scalar(sa.select(children.c.child).where(children.c.child == child)) is None:
                conn.execute(children.insert().values(child=child, birth_date=born))

    def set_custody(self, child: str, kind: Custody, guardians: tuple[str, ...], *, at: dt.datetime) -> None:
        """Replace who the child's guardians are (pseudonyms), unless a later update is already there."""
        when = _utc(at)
        values = {"custody": str(kind), "guardians": ",".join(sorted(guardians)), "updated_at": when}
        with map_errors("record custody"), self._engine.begin() as conn:
            current = conn.execute(
                sa.select(custody.c.updated_at).where(custody.c.child == child)
            ).one_or_none()
            if current is None:
                conn.execute(custody.insert().values(child=child, **values))
            elif (_aware(current.updated_at) or when) <= when:
                conn.execute(custody.update().where(custody.c.child == child).values(**values))

    def protect(
        self,
        decision_id: str,
        *,
        child: str,
        kind: Protection,
        valid_from: dt.datetime,
        valid_to: dt.datetime | None = None,
    ) -> None:
        """Record a protection decision (idempotent on its id)."""
        with map_errors("record the protection decision"), self._engine.begin() as conn:
            found = conn.scalar(
                sa.select(protections.c.decision_id).where(protections.c.decision_id == decision_id)
            )
            if found is None:
                conn.execute(
                    protections.insert().values(
                        decision_id=decision_id,
                        child=child,
                        kind=str(kind),
                        valid_from=_utc(valid_from),
                        valid_to=_utc(valid_to) if valid_to else None,
                    )
                )

    def record_release(self, fact: ResidenceReleased, *, child: str) -> None:
        """Keep a release of one message's residence data (idempotent on its id and the child)."""
        recipients = ",".join(sorted(f"{normalise_system(s)}|{v}" for s, v in fact.recipients))
        with map_errors("record the residence release"), self._engine.begin() as conn:
            found = conn.scalar(
                sa.select(releases.c.release_id).where(
                    releases.c.release_id == fact.release_id, releases.c.child == child
                )
            )
            if found is None:
                conn.execute(
                    releases.insert().values(
                        release_id=fact.release_id,
                        child=child,
                        message_id=fact.message_id,
                        recipients=recipients,
                        released_by=fact.released_by,
                        recorded_at=dt.datetime.now(dt.UTC),
                    )
                )

    def release_for(
        self, *, child: str, message_id: str, recipient_id: str, identifiers: Sequence[tuple[str, str]]
    ) -> Release | None:
        """A release of this message's residence data to this recipient, if social services made one.

        ``message_id`` is the message as the recipient gets it (the router's per-recipient id, made from
        the released message's id and ``recipient_id``); ``identifiers`` are the recipient's own.
        """
        wanted = {f"{normalise_system(s)}|{v}" for s, v in identifiers}
        batch = self._batch.get()
        cached = batch.get(child) if batch is not None else None
        rows = cached.releases if cached is not None else None
        if rows is None:
            with map_errors("read the consent registry"), self._engine.connect() as conn:
                read = conn.execute(_RELEASES_STATEMENT, {"children": [child]})
                rows = tuple(_by_child(read, ReleaseRow.of).get(child, ()))
        for row in rows:
            same_message = message_id in {row.message_id, deterministic_id(row.message_id, recipient_id)}
            if same_message and wanted & row.recipients:
                return Release(release_id=row.release_id, released_by=row.released_by)
        return None

    def lift(self, decision_id: str, *, at: dt.datetime) -> int:
        """End a protection decision from ``at`` on; returns 1 if it was there and not yet lifted."""
        return self._write(
            "lift the protection decision",
            protections.update()
            .where(protections.c.decision_id == decision_id, protections.c.lifted_at.is_(None))
            .values(lifted_at=_utc(at)),
        )

    def record(self, grant: ConsentGrant, *, now: dt.datetime) -> None:
        """Store a consent (idempotent on its id and agency kind)."""
        rows = [
            {
                "consent_id": f"{grant.consent_id}:{kind}",
                "child": grant.child,
                "purpose": str(grant.purpose),
                "agency_kind": str(kind),
                "given_by": grant.given_by,
                "guardians": ",".join(sorted(grant.guardians)),
                "valid_from": _utc(grant.valid_from),
                "valid_to": _utc(grant.valid_to) if grant.valid_to else None,
                "recorded_at": _utc(now),
                "maturity_assessed_by": grant.maturity_assessed_by,
                "organisations": ",".join(
                    sorted(f"{normalise_system(s)}|{v}" for s, v in grant.organisations)
                ),
                "process_id": grant.process_id,
            }
            for kind in sorted(grant.agency_kinds)
        ]
        with map_errors("record the consent"), self._engine.begin() as conn:
            existing = set(
                conn.scalars(
                    sa.select(consents.c.consent_id).where(
                        consents.c.child == grant.child,
                        consents.c.consent_id.in_([r["consent_id"] for r in rows]),
                    )
                )
            )
            new_rows = [row for row in rows if row["consent_id"] not in existing]
            if new_rows:
                conn.execute(consents.insert(), new_rows)

    def withdraw(self, consent_id: str, *, at: dt.datetime, child: str | None = None) -> int:
        """Withdraw a consent from ``at`` on; returns how many agency grants it ended.

        ``child`` (the pseudonym) narrows it to that child's consent: sending systems number their consents
        themselves, so two children's consents may carry the same id.
        """
        return self._write(
            "withdraw the consent",
            consents.update()
            .where(
                consents.c.consent_id.startswith(f"{consent_id}:", autoescape=True),
                consents.c.withdrawn_at.is_(None),
                *([consents.c.child == child] if child is not None else []),
            )
            .values(withdrawn_at=_utc(at)),
        )

    # Questions

    def age(self, child: str, at: dt.datetime) -> int | None:
        """The child's age at ``at``, or ``None`` when the registry has no birth date for it."""
        known = self._facts(child).known
        born = None if known is None else known.birth_date
        return None if born is None else age_on(born, _utc(at).date())

    def protections_at(self, child: str, at: dt.datetime) -> frozenset[Protection]:
        """The protection decisions in force for the child at ``at``."""
        return self._facts(child).protections_at(_utc(at))

    def assess(
        self,
        *,
        child: str,
        at: dt.datetime,
        purpose: Purpose | None = None,
        agency_kind: AgencyKind | None = None,
        scope: Scope | None = None,
    ) -> Assessment:
        """All one decision needs to know of the child at ``at``: from the batch in hand, else read now.

        The consent answer is there when ``purpose`` and ``agency_kind`` are given. With ``scope``, a consent
        (or objection) that names other organisations, or another process, does not count.
        """
        when = _utc(at)
        facts = self._facts(child)
        known = facts.known
        protected = facts.protections_at(when)
        answered = facts.residence_answered(when)
        rows = None
        withdrawn_rows: list[ConsentRow] = []
        if purpose is not None and agency_kind is not None:
            rows = facts.consents_at(purpose, agency_kind, when)
            withdrawn_rows = facts.withdrawn_by(purpose, agency_kind, when)
        born = None if known is None else known.birth_date
        age = None if born is None else age_on(born, when.date())
        custodians = known.custodians if known is not None else None
        answer = None
        if scope is not None and rows is not None:
            rows = [row for row in rows if scope.covers(row)]
        withdrawn = next((row for row in withdrawn_rows if scope is None or scope.covers(row)), None)
        if rows is not None:
            answer = _answer(rows, age=age, custodians=custodians, county=self.county)
            if answer is None:
                answer = ConsentAnswer(None, f"no consent in force for {purpose} covering {agency_kind}")
            if answer.consent_id is None and withdrawn is not None and not answer.objected:
                consent_id = str(withdrawn.consent_id).rsplit(":", 1)[0]
                answer = ConsentAnswer(
                    None,
                    f"withdrawn: consent {consent_id} for {purpose} covering {agency_kind} was withdrawn "
                    f"({answer.reason})",
                    withdrawn=True,
                )
        return Assessment(age=age, consent=answer, protections=protected, residence_answered=answered)

    def consent_in_force(
        self, *, child: str, purpose: Purpose, agency_kind: AgencyKind, at: dt.datetime
    ) -> ConsentAnswer:
        """The consent in force at ``at`` covering this purpose and agency kind, with the reason.

        Under 18 the guardians consent (all current guardians under joint custody, when the county policy
        says so); from 18 only the young person's own consent counts.
        """
        answer = self.assess(child=child, at=at, purpose=purpose, agency_kind=agency_kind).consent
        if answer is None:  # pragma: no cover - assess answers whenever purpose and kind are given
            raise AssertionError("the registry gave no consent answer")
        return answer

    def covers(self, *, child: str, purpose: Purpose, agency_kind: AgencyKind, at: dt.datetime) -> str | None:
        """The id of a consent in force at ``at`` covering this purpose and agency kind, or ``None``."""
        return self.consent_in_force(child=child, purpose=purpose, agency_kind=agency_kind, at=at).consent_id
