"""Parts shared by the events of every source: the child, the agencies named, municipality codes."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from sambus.contracts.agencies import AgencyKind
from sambus.contracts.events._base import EventModel
from sambus.contracts.identifiers import (
    LMA_NUMBER_SYSTEM,
    NATIONAL_RESERVE_NUMBER_SYSTEM,
    HsaId,
    LmaNumber,
    OrganisationNumber,
    PersonIdentity,
    birth_date,
    child_key,
    parse_reserve_number,
    parse_reserve_number_system,
    person_identity_system,
)


def _kommunkod(value: str) -> str:
    if not (value.isdigit() and len(value) == 4):  # noqa: PLR2004 - SCB municipality codes have 4 digits
        raise ValueError("a municipality code (kommunkod) has four digits, e.g. 1980")
    return value


def _school_unit_code(value: str) -> str:
    if not (value.isdigit() and len(value) == 8):  # noqa: PLR2004 - SS 12000 school unit codes have 8 digits
        raise ValueError("a school unit code (skolenhetskod) has eight digits")
    return value


Kommunkod = Annotated[
    str,
    AfterValidator(_kommunkod),
    WithJsonSchema({"type": "string", "pattern": "^\\d{4}$", "description": "Kommunkod (SCB), four digits."}),
]
"""A Swedish municipality code (SCB kommunkod, four digits)."""

SchoolUnitCode = Annotated[
    str,
    AfterValidator(_school_unit_code),
    WithJsonSchema({"type": "string", "pattern": "^\\d{8}$", "description": "Skolenhetskod, eight digits."}),
]
"""A school unit code (skolenhetskod, eight digits) as in Skolverket's register and SS 12000."""

ProcessId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
"""The process a follow-up event belongs to: the value recipients saw in ``Task.groupIdentifier``."""

Reference = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:|/-]+$")]
"""An id a sending system gives something (a consent, a decision, a Task): no spaces, no personal data."""


class Protection(StrEnum):
    """Protected personal data the child has, if any; sets the message's security labels."""

    NONE = "none"
    SEKRETESSMARKERING = "sekretessmarkering"
    """Sekretessmarkering (OSL 22:1)."""
    SKYDDAD_FOLKBOKFORING = "skyddadFolkbokforing"
    """Skyddad folkbokföring (protected population registration)."""
    FINGERADE_PERSONUPPGIFTER = "fingeradePersonuppgifter"
    """Fingerade personuppgifter: a new identity; the old and the new must never be linked."""


class Gender(StrEnum):
    """A child's administrative gender as a sending system records it (FHIR ``AdministrativeGender``)."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class TaskState(StrEnum):
    """The FHIR Task states a recipient reports."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"


class ReserveNumber(EventModel):
    """A reservnummer: the national one, or one a region issued (its system an ``urn:oid:``)."""

    system: Annotated[str, AfterValidator(parse_reserve_number_system)] = Field(
        default=NATIONAL_RESERVE_NUMBER_SYSTEM,
        max_length=200,
        description=f"{NATIONAL_RESERVE_NUMBER_SYSTEM} (the default), or the issuing region's reservnummer "
        "system as urn:oid:...; a number is only the same child's within the same system.",
    )
    value: Annotated[str, AfterValidator(parse_reserve_number)] = Field(
        max_length=30, description="The reservnummer: 3 to 30 letters, digits or '-'."
    )


class Child(EventModel):
    """The child the event is about, identified as in SS 12000 (``civicNo``) or, lacking one, otherwise.

    Exactly one identifier: a personnummer or samordningsnummer (``civicNo``), or, for a newly arrived or
    asylum-seeking child who has neither, the LMA number (``lmaNumber``) or a reservnummer
    (``reserveNumber``). Different kinds of identifier are never taken for the same child.
    """

    civic_no: PersonIdentity | None = Field(
        default=None,
        alias="civicNo",
        description="The child's personnummer or samordningsnummer (12 digits).",
    )
    lma_number: LmaNumber | None = Field(
        default=None,
        alias="lmaNumber",
        description="An asylum-seeking child's LMA number, when the child has no personnummer or "
        "samordningsnummer.",
    )
    reserve_number: ReserveNumber | None = Field(
        default=None,
        alias="reserveNumber",
        description="A reservnummer, when the child has no personnummer, samordningsnummer or LMA number.",
    )
    birth_date: dt.date | None = Field(
        default=None,
        alias="birthDate",
        description="The birth date (as far as known) of a child named by lmaNumber or reserveNumber: "
        "age-bound steps (the transition to adult care, age bands) need it. A civicNo carries its own.",
    )
    gender: Gender | None = Field(
        default=None,
        description="The gender the sending system records for a child named by lmaNumber or reserveNumber, "
        "if it records one (the follow-up statistics split by it; without it the child is counted under "
        "'sex not stated', never guessed). A civicNo carries its own.",
    )
    protection: Protection = Field(
        default=Protection.NONE,
        description="Protected personal data (Skatteverket's three levels); the messages are labelled "
        "accordingly, and no residence-revealing data reaches anyone unless social services releases it.",
    )

    @model_validator(mode="after")
    def _exactly_one_identifier(self) -> Child:
        named = [x for x in (self.civic_no, self.lma_number, self.reserve_number) if x is not None]
        if len(named) != 1:
            raise ValueError("name the child by exactly one of civicNo, lmaNumber or reserveNumber")
        if self.civic_no is not None and self.birth_date is not None:
            raise ValueError(
                "birthDate goes with lmaNumber or reserveNumber (a civicNo carries the birth date)"
            )
        if self.civic_no is not None and self.gender is not None:
            raise ValueError("gender goes with lmaNumber or reserveNumber (a civicNo carries the sex)")
        return self

    @property
    def identifier(self) -> tuple[str, str]:
        """The FHIR ``(system, value)`` of the child's identifier (HL7 Sweden base systems)."""
        if self.civic_no is not None:
            return person_identity_system(self.civic_no), self.civic_no
        if self.lma_number is not None:
            return LMA_NUMBER_SYSTEM, self.lma_number
        if self.reserve_number is None:  # the validator let no child without an identifier through
            raise ValueError("the child has no identifier")
        return self.reserve_number.system, self.reserve_number.value

    @property
    def key(self) -> str:
        """What sambus knows the child by before pseudonymising it (:func:`child_key`)."""
        return child_key(*self.identifier)


class SecrecyAssessment(EventModel):
    """A professional's assessment that a secrecy-breaking "får"-provision allows this disclosure.

    E.g. OSL 26:9 (social services to health care, needed for the care of someone under 18) or OSL 10:2
    (needed for social services' own task). Without it, the message rests on consent.
    """

    provision: str = Field(
        min_length=3,
        max_length=60,
        pattern=r"^[A-Za-z0-9 :§.()-]+$",
        description="The provision assessed to apply, as the rules name it, e.g. 'OSL 26:9'.",
    )
    assessed_by: Reference = Field(
        alias="assessedBy", description="Who assessed: the user id in the sending system (no name)."
    )


class Agency(EventModel):
    """An agency named by its HSA-id (health and dental care), organisation number or school unit code.

    A school or preschool is named by its school unit code (skolenhetskod, as in SS 12000), so it can be
    invited to a SIP, told of a placement or answered like any other agency.
    """

    hsa_id: HsaId | None = Field(default=None, alias="hsaId")
    organisation_number: OrganisationNumber | None = Field(default=None, alias="organisationNumber")
    school_unit_code: SchoolUnitCode | None = Field(default=None, alias="schoolUnitCode")

    @model_validator(mode="after")
    def _exactly_one_identifier(self) -> Agency:
        named = [x for x in (self.hsa_id, self.organisation_number, self.school_unit_code) if x is not None]
        if len(named) != 1:
            raise ValueError("name the agency by exactly one of hsaId, organisationNumber or schoolUnitCode")
        return self


class Recipient(EventModel):
    """An agency by identifier, or by kind (and municipality) when the sender does not know the unit.

    A kind alone means the one agency of that kind in the region; with ``municipality`` it means that
    municipality's agency of that kind (e.g. social services of 1980).
    """

    hsa_id: HsaId | None = Field(default=None, alias="hsaId")
    organisation_number: OrganisationNumber | None = Field(default=None, alias="organisationNumber")
    school_unit_code: SchoolUnitCode | None = Field(default=None, alias="schoolUnitCode")
    kind: AgencyKind | None = None
    municipality: Kommunkod | None = None

    @model_validator(mode="after")
    def _one_way_to_name_it(self) -> Recipient:
        named = [
            x
            for x in (self.hsa_id, self.organisation_number, self.school_unit_code, self.kind)
            if x is not None
        ]
        if len(named) != 1:
            raise ValueError(
                "name the recipient by exactly one of hsaId, organisationNumber, schoolUnitCode or kind"
            )
        if self.municipality is not None and self.kind is None:
            raise ValueError("municipality goes with kind, not with an identifier")
        return self


class StaffRole(StrEnum):
    """A professional's role: of a SIP's lead coordinator (huvudansvarig) or of who reports concern."""

    SOCIAL_WORKER = "social_worker"
    """Socialsekreterare."""
    SCHOOL_COUNSELLOR = "school_counsellor"
    """Skolkurator."""
    SCHOOL_NURSE = "school_nurse"
    TEACHER = "teacher"
    HEAD_TEACHER = "head_teacher"
    """Rektor."""
    NURSE = "nurse"
    PHYSICIAN = "physician"
    PSYCHOLOGIST = "psychologist"
    PRESCHOOL_TEACHER = "preschool_teacher"
    OTHER = "other"


class StaffPerson(EventModel):
    """A professional (lead coordinator, reporter): a role, and the person by HSA-id or the agency's user id.

    No name: the receiving systems look the person up in their own catalogue (HSA for care staff).
    """

    role: StaffRole
    hsa_id: HsaId | None = Field(
        default=None, alias="hsaId", description="The person's own HSA-id (care staff)."
    )
    user_id: Reference | None = Field(
        default=None, alias="userId", description="The person's user id in the lead agency's system."
    )

    @model_validator(mode="after")
    def _at_most_one_identifier(self) -> StaffPerson:
        if self.hsa_id is not None and self.user_id is not None:
            raise ValueError("name the person by hsaId or userId, not both")
        return self


URGENT_RESPONSE_HOURS = 4
"""Suicide risk: social services and BUP must acknowledge within this many hours, or the reporter is told."""


class SuicideRisk(EventModel):
    """Acute suicide risk seen by any party: an urgent alert to social services where the child lives and BUP.

    Social services receives it under the duty to report concern (a child at risk of harming itself);
    BUP under a "får"-provision a professional assessed (e.g. OSL 25:12 from health care, OSL 26:9 from
    social services), else on consent. Both must acknowledge within :data:`URGENT_RESPONSE_HOURS` hours
    (``Task.restriction.period.end``); past it the reporter is told who has not.
    """

    child: Child
    residence_municipality: Kommunkod = Field(
        alias="residenceMunicipality",
        description="Kommunkod of the municipality where the child lives: its social services is alerted.",
    )
    bup: Agency | None = Field(
        default=None, description="The BUP unit to alert, if known; else the BUP nearest the child's home."
    )
    secrecy_assessment: SecrecyAssessment | None = Field(
        default=None,
        alias="secrecyAssessment",
        description="The professional's assessment that a provision allows alerting BUP; without it the "
        "alert to BUP rests on consent (social services is alerted on the duty to report in any case).",
    )


_T = TypeVar("_T")


def unique(items: tuple[_T, ...]) -> tuple[_T, ...]:
    """Validator body: each item at most once."""
    if len(set(items)) != len(items):
        raise ValueError("each agency may be named only once")
    return items


Agencies = Annotated[tuple[Agency, ...], Field(min_length=1, max_length=10), AfterValidator(unique)]
"""One to ten agencies, each named once."""


ADULT_AGE = 18
"""The age at which a young person leaves child and youth care for adult care."""


def eighteenth_birthday(born: dt.date) -> dt.date:
    """The day a child born on ``born`` turns 18 (28 February for one born on 29 February)."""
    try:
        return born.replace(year=born.year + ADULT_AGE)
    except ValueError:
        return born.replace(year=born.year + ADULT_AGE, day=28)


class HandoverMeetingCalled(EventModel):
    """A joint hand-over meeting before the young person turns 18: the move to adult care.

    Both agreements: when the child turns 18 the young person gets new contacts; the transition is
    secured in a joint meeting with those involved, SIP recommended (Västmanland "Övergång från barn till
    vuxen"; Västerbotten's agreement on the move from child and youth habilitation to adult habilitation).
    Each invited agency (adult psychiatry, the adult unit of social services, adult habilitation, and the
    child's current units) gets a Task due on the meeting day; its answers go back to the caller.
    """

    child: Child
    caller: Agency = Field(description="The unit calling the meeting (e.g. BUP, social services).")
    meeting: AwareDatetime = Field(
        description="When the hand-over meeting is held: before the 18th birthday."
    )
    invite: tuple[Recipient, ...] = Field(
        min_length=1,
        max_length=10,
        description="The agencies invited: the adult units taking over (adult_psychiatry, "
        "adult_social_services, adult_habilitation: by identifier, or by kind and municipality) and the "
        "child's current units.",
    )

    @model_validator(mode="after")
    def _before_eighteen(self) -> HandoverMeetingCalled:
        born = birth_date(self.child.civic_no) if self.child.civic_no is not None else self.child.birth_date
        if born is not None and self.meeting.date() >= eighteenth_birthday(born):
            raise ValueError(
                "the hand-over meeting is held before the young person turns 18 (from 18 adult care "
                "and the young person's own consent decide)"
            )
        unique(self.invite)
        return self
