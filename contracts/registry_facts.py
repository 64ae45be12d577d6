"""Facts the consent registry learns from messages: consents, custody and protection decisions.

Adapters turn inbound events into FHIR messages; :mod:`sambus.contracts.fhir` reads those messages back into
these
facts (``registry_facts``), and :mod:`consent` records them. The facts carry the child's personnummer in
clear, because the registry derives both its keyed pseudonym and the child's age from it; they are never
logged and never leave the process.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sambus.contracts.agencies import AgencyKind, Purpose


class GivenBy(StrEnum):
    """Who gave a consent: the guardians, or the child or young person themselves."""

    GUARDIAN = "guardian"
    CHILD = "child"


class Custody(StrEnum):
    """Who has custody of the child, and so who may consent for it (FB 6 kap.; verify with a lawyer).

    Only these people consent for a child: never a foster parent, HVB staff or a parent without custody.
    """

    JOINT = "joint"
    """Joint custody: two guardians, both must consent (where the county's policy says so)."""
    SOLE = "sole"
    """Sole custody: one guardian."""
    SPECIALLY_APPOINTED = "specially_appointed"
    """Särskilt förordnad vårdnadshavare (FB 6:8-10 a): one or two appointed guardians replace the parents."""
    GOD_MAN = "god_man"
    """God man for an unaccompanied minor (lag 2005:429): acts in the guardian's place."""

    @property
    def sizes(self) -> tuple[int, ...]:
        """How many people the custody form names."""
        return {"joint": (2,), "sole": (1,), "specially_appointed": (1, 2), "god_man": (1,)}[self.value]


@dataclass(frozen=True)
class ConsentGiven:
    """A consent, for one purpose, to share information about a child with agencies of the given kinds.

    Attributes:
        consent_id: the id the sending system gave the consent; a withdrawal names it.
        guardians: personnummer of each guardian who consented (empty when the child consented).
    """

    consent_id: str
    child: str
    purpose: Purpose
    agency_kinds: frozenset[AgencyKind]
    given_by: GivenBy
    guardians: tuple[str, ...]
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    recorded_at: dt.datetime
    maturity_assessed_by: str | None = None
    """For a child's own consent: who assessed the child mature enough to consent (a user id)."""
    organisations: tuple[tuple[str, str], ...] = ()
    """``(system, value)`` of each organisation the consent names; empty: every organisation of the kinds."""
    process_id: str | None = None
    """The one process the consent is for; ``None``: any process of its purpose."""
    born: dt.date | None = None
    """A child without personnummer or samordningsnummer: its birth date as sent (``Patient.birthDate``)."""


@dataclass(frozen=True)
class ChildObjected:
    """The child objects to sharing for ``purpose`` with agencies of the given kinds (OSL 12:3).

    While in force no guardian's consent counts for what it covers. A withdrawal naming ``objection_id``
    ends it.
    """

    objection_id: str
    child: str
    purpose: Purpose
    agency_kinds: frozenset[AgencyKind]
    assessed_by: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    recorded_at: dt.datetime
    born: dt.date | None = None
    """A child without personnummer or samordningsnummer: its birth date as sent (``Patient.birthDate``)."""


@dataclass(frozen=True)
class GuardianSecrecyDecided:
    """Secrecy applies against the child's guardians (OSL 12:3) from ``valid_from`` (to ``valid_to``)."""

    decision_id: str
    child: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None


@dataclass(frozen=True)
class GuardianSecrecyLifted:
    """Secrecy against the guardians (decision ``decision_id``) ended at ``at``, before its ``valid_to``."""

    decision_id: str
    child: str
    at: dt.datetime


@dataclass(frozen=True)
class ConsentWithdrawn:
    """A consent withdrawn from ``at`` on: no delivery resting on it happens after that."""

    consent_id: str
    child: str
    at: dt.datetime


@dataclass(frozen=True)
class CustodyUpdated:
    """Who the child's guardians are now."""

    child: str
    guardians: tuple[str, ...]
    custody: Custody
    at: dt.datetime
    born: dt.date | None = None
    """A child without personnummer or samordningsnummer: its birth date as sent (``Patient.birthDate``)."""


@dataclass(frozen=True)
class HiddenResidenceDecided:
    """Social services decided that the child's residence is hidden from the guardians (LVU 14 §)."""

    decision_id: str
    child: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None


@dataclass(frozen=True)
class HiddenResidenceLifted:
    """The hidden-residence decision ``decision_id`` ended at ``at``."""

    decision_id: str
    child: str
    at: dt.datetime


@dataclass(frozen=True)
class HiddenResidenceNotNeeded:
    """Social services decided at ``at`` not to hide the child's residence (decision ``decision_id``)."""

    decision_id: str
    child: str
    at: dt.datetime


class IdentityLevel(StrEnum):
    """Skatteverket's three levels of protected identity, mildest first."""

    SEKRETESSMARKERING = "sekretessmarkering"
    """Sekretessmarkering (OSL 22:1): a marking that the person's data may be secret."""
    SKYDDAD_FOLKBOKFORING = "skyddadFolkbokforing"
    """Skyddad folkbokföring: registered at another municipality than where the person lives."""
    FINGERADE_PERSONUPPGIFTER = "fingeradePersonuppgifter"
    """Fingerade personuppgifter: a new identity; the old and the new are never linked."""


@dataclass(frozen=True)
class IdentityProtected:
    """A message labelled the child's identity as protected: the registry keeps it for every later message.

    Protected identity has no end date sambus could know; it stays until social services lifts it.
    """

    child: str
    level: IdentityLevel


@dataclass(frozen=True)
class IdentityProtectionEnded:
    """The child's protected identity (every level held for this identity) ended at ``at``."""

    decision_id: str
    child: str
    at: dt.datetime


@dataclass(frozen=True)
class ResidenceReleased:
    """A named person at social services released one message's residence data to named recipients.

    Attributes:
        release_id: social services' id of the release decision.
        message_id: the id of the sambus message released (made from the source event it names).
        recipients: ``(system, value)`` identifiers of the organisations that may have the residence.
        released_by: the person who decided, as the case system's user id (no name, no personnummer).
    """

    release_id: str
    child: str
    message_id: str
    recipients: tuple[tuple[str, str], ...]
    released_by: str


RegistryFact = (
    ConsentGiven
    | ChildObjected
    | GuardianSecrecyDecided
    | GuardianSecrecyLifted
    | ConsentWithdrawn
    | CustodyUpdated
    | HiddenResidenceDecided
    | HiddenResidenceLifted
    | HiddenResidenceNotNeeded
    | IdentityProtected
    | IdentityProtectionEnded
    | ResidenceReleased
)
"""Anything the consent registry records."""
