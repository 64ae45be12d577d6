"""Events sent by social services' case systems (individ- och familjeomsorg)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, ValidationInfo, field_validator, model_validator

from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.events._base import EventModel
from sambus.contracts.events._common import (
    Agencies,
    Agency,
    Child,
    Kommunkod,
    ProcessId,
    Protection,
    Recipient,
    Reference,
    SchoolUnitCode,
    SecrecyAssessment,
    SuicideRisk,
    TaskState,
    unique,
)
from sambus.contracts.events.school import Concern, SipReason
from sambus.contracts.identifiers import HsaId, OrganisationNumber, Personnummer
from sambus.contracts.registry_facts import Custody, GivenBy

LVU32_MAX_DAYS = 28
"""LVU § 32: health care must carry out the medical exam within four weeks at the latest."""


class SipInitiated(EventModel):
    """Social services initiates a SIP and names the agencies to invite."""

    child: Child
    organisation_number: OrganisationNumber = Field(
        alias="organisationNumber", description="The initiating social services (the municipality)."
    )
    reason: SipReason
    invite: Agencies


class LegalBasis(StrEnum):
    """The law a placement rests on."""

    SOL = "sol"
    LVU = "lvu"


class PlacementForm(StrEnum):
    """Where the child is placed."""

    FAMILY_HOME = "family_home"
    HVB = "hvb"
    """Hem för vård eller boende (residential care home)."""
    SUPPORTED_HOUSING = "supported_housing"


class Residence(EventModel):
    """Where the child now lives: sensitive, sent only as ``Patient.address`` and removed where needed."""

    line: tuple[str, ...] = Field(min_length=1, max_length=3)
    postal_code: str = Field(alias="postalCode", pattern=r"^\d{3} ?\d{2}$")
    city: str = Field(min_length=1, max_length=100)
    municipality: Kommunkod


def _after_valid_from(valid_to: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
    valid_from = info.data.get("valid_from")
    if valid_to is not None and valid_from is not None and valid_to <= valid_from:
        raise ValueError("must be after validFrom")
    return valid_to


class _Placement(EventModel):
    child: Child
    placing_municipality: Kommunkod = Field(
        alias="placingMunicipality", description="The municipality responsible for the placement."
    )
    legal_basis: LegalBasis = Field(alias="legalBasis")
    notify: Agencies = Field(description="School, health care and dental care units to inform.")
    secrecy_assessment: SecrecyAssessment | None = Field(
        default=None,
        alias="secrecyAssessment",
        description="For an LVU placement: the professional's assessment that a provision (e.g. OSL 26:9, "
        "OSL 10:2) allows telling these units; without it the notice rests on consent.",
    )


HIDDEN_RESIDENCE_DESCRIPTION = (
    "Social services' answer to whether the child's residence is kept from the guardians (LVU 14 § "
    "second paragraph point 2), when it is decided already: true labels the notices R + NOPAT and no "
    "guardian-facing recipient gets the residence. An LVU placement's notices without it wait until the "
    "question is answered (hidden-residence-decided or hidden-residence-not-needed)."
)


class PlacementStarted(_Placement):
    """A child is placed outside the home (SoL or LVU); an acute one calls for joint planning in 2 weeks."""

    hidden_residence: bool | None = Field(
        default=None, alias="hiddenResidence", description=HIDDEN_RESIDENCE_DESCRIPTION
    )
    form: PlacementForm
    acute: bool = False
    start: dt.date
    residence: Residence
    school_unit_code: SchoolUnitCode | None = Field(default=None, alias="schoolUnitCode")


class PlacementChanged(_Placement):
    """A placed child moves (re-placement): a new placement form, residence and maybe school unit."""

    hidden_residence: bool | None = Field(
        default=None, alias="hiddenResidence", description=HIDDEN_RESIDENCE_DESCRIPTION
    )
    form: PlacementForm
    start: dt.date
    residence: Residence
    school_unit_code: SchoolUnitCode | None = Field(default=None, alias="schoolUnitCode")


class PlacementEnded(_Placement):
    """A placement ends."""

    end: dt.date


class HiddenResidenceDecided(EventModel):
    """LVU 14 §: the child's residence is kept from the guardians; the region blocks their record access."""

    child: Child
    organisation_number: OrganisationNumber = Field(
        alias="organisationNumber", description="The social services that decided."
    )
    decision_id: Reference = Field(alias="decisionId")
    valid_from: AwareDatetime = Field(alias="validFrom")
    valid_to: AwareDatetime | None = Field(default=None, alias="validTo")
    notify: Agencies

    @field_validator("valid_to")
    @classmethod
    def _period_in_order(cls, valid_to: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        return _after_valid_from(valid_to, info)


class HiddenResidenceLifted(EventModel):
    """The hidden-residence decision ``decisionId`` ended."""

    child: Child
    organisation_number: OrganisationNumber = Field(alias="organisationNumber")
    decision_id: Reference = Field(alias="decisionId")
    at: AwareDatetime
    valid_from: AwareDatetime | None = Field(
        default=None,
        alias="validFrom",
        description="When the decision took effect, if the sender has it: the Flag keeps its start.",
    )
    notify: Agencies

    @field_validator("valid_from")
    @classmethod
    def _before_the_lift(cls, valid_from: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        at = info.data.get("at")
        if valid_from is not None and at is not None and valid_from >= at:
            raise ValueError("must be before at (the lift)")
        return valid_from


class HiddenResidenceNotNeeded(EventModel):
    """Social services considered keeping a placed child's residence from the guardians and decided not to.

    The answer to the hidden-residence question (LVU 14 § second paragraph point 2): an LVU placement's
    notices that waited for it go out as the rules allow. Nothing is delivered for this event itself.
    """

    child: Child
    organisation_number: OrganisationNumber = Field(
        alias="organisationNumber", description="The social services that decided."
    )
    decision_id: Reference = Field(alias="decisionId", description="The id of the decision not to hide.")
    at: AwareDatetime = Field(description="When it was decided.")


class IdentityProtectionEnded(EventModel):
    """The child's protected identity ended (Skatteverket's decision, as social services records it).

    Every level the registry holds for this identity ends at ``at``: later messages about the child are no
    longer redacted for it (a message that is still labelled protected protects again). For fingerade
    personuppgifter the event names only the identity whose protection ended: nothing here, and nothing
    sambus records, links it to another identity of the same person.
    """

    child: Child
    organisation_number: OrganisationNumber = Field(
        alias="organisationNumber", description="The social services that records it."
    )
    decision_id: Reference = Field(alias="decisionId", description="The id of the decision that ended it.")
    at: AwareDatetime = Field(description="From when the identity is no longer protected.")

    @field_validator("child")
    @classmethod
    def _sent_unlabelled(cls, child: Child) -> Child:
        if child.protection is not Protection.NONE:
            raise ValueError("the protection has ended: send the child with protection none")
        return child


class ResidenceReleased(EventModel):
    """A named person at social services releases one message's residence data about a protected child.

    While the child's identity is protected no residence-revealing data (address, municipality, placement
    home, new school unit) reaches anyone; this release lets the named recipients have it in the message
    made from the event ``eventId`` of the same source system. Send it before that event, with the same key.
    """

    child: Child
    organisation_number: OrganisationNumber = Field(
        alias="organisationNumber", description="The social services that decided."
    )
    release_id: Reference = Field(alias="releaseId", description="The id of the release decision.")
    released_by: Reference = Field(
        alias="releasedBy", description="The person who decided: the case system's user id (no name)."
    )
    event_id: Reference = Field(alias="eventId", description="The id of the event whose message is released.")
    recipients: Agencies = Field(description="The organisations that may have the residence data.")


class HealthExamRequested(EventModel):
    """Lag (2017:209): social services asks the region to examine a placed child's health and oral health.

    Becomes two requests, one to health care and one to dental care; name the units if known. A child placed
    in another municipality (another county, even) is examined by the region where it lives now: name
    ``residenceMunicipality`` and the units nearest it are asked, while the placing municipality
    (``organisationNumber``) stays the requester and receives both statements.
    """

    child: Child
    organisation_number: OrganisationNumber = Field(
        alias="organisationNumber", description="The placing municipality's social services: the requester."
    )
    residence_municipality: Kommunkod | None = Field(
        default=None,
        alias="residenceMunicipality",
        description="Kommunkod of the municipality where the placed child lives now: health care and dental "
        "care near it are asked (units not named otherwise). It travels only in the routing address.",
    )
    health_care: Agency | None = Field(default=None, alias="healthCare")
    dental_care: Agency | None = Field(default=None, alias="dentalCare")


class EquivalentHealthExamExists(EventModel):
    """Lag (2017:209): the placing social services assessed that an equivalent examination already exists.

    The agreement (Västmanland, "Hälsoundersökning enligt lag 2017:209", Kommunernas ansvar): social
    services finds out whether a health examination has already been done and assesses whether it is
    equivalent ("likvärdig") to the examination meant for placed children and young people; only then does
    it notify the region. This event is that assessment: it closes the reminder of the child's open
    placement that waits for its request, and the ledger records it as the reason. Nothing is delivered.
    An event for a child with no placement waiting for its request (none started, it ended, or its request
    was already sent) is refused, and the sender is told why.
    """

    child: Child
    organisation_number: OrganisationNumber = Field(
        alias="organisationNumber", description="The placing municipality's social services, which assessed."
    )
    assessed_by: Reference = Field(
        alias="assessedBy",
        description="The professional who assessed it (user id in the case system, no name).",
    )
    examined_on: dt.date = Field(alias="examinedOn", description="When the earlier examination was done.")


class Lvu32ExamOrdered(EventModel):
    """LVU § 32: the social board orders a medical exam, due within four weeks (no consent needed)."""

    child: Child
    organisation_number: OrganisationNumber = Field(alias="organisationNumber")
    ordered_on: dt.date = Field(alias="orderedOn")
    due: dt.date
    performer: Agency | None = None

    @field_validator("due")
    @classmethod
    def _due_within_four_weeks(cls, due: dt.date, info: ValidationInfo) -> dt.date:
        ordered_on = info.data.get("ordered_on")
        if ordered_on is not None and not ordered_on <= due <= ordered_on + dt.timedelta(days=LVU32_MAX_DAYS):
            raise ValueError("must fall within four weeks (28 days) of orderedOn")
        return due


class SuicideRiskAssessmentRequested(EventModel):
    """Before a placement, social services asks BUP for a suicide-risk assessment."""

    child: Child
    organisation_number: OrganisationNumber = Field(alias="organisationNumber")
    performer: Agency | None = None
    secrecy_assessment: SecrecyAssessment | None = Field(
        default=None,
        alias="secrecyAssessment",
        description="The professional's assessment that a provision (e.g. OSL 26:9) allows the request; "
        "without it the request rests on consent.",
    )


class SuicideRiskReported(SuicideRisk):
    """Social services sees acute suicide risk: its colleagues where the child lives and BUP are alerted."""

    organisation_number: OrganisationNumber = Field(
        alias="organisationNumber", description="The social services that saw the risk."
    )


class ConcernReported(Concern):
    """Social services reports concern to social services of another municipality, where the child lives."""

    organisation_number: OrganisationNumber = Field(
        alias="organisationNumber", description="The reporting social services."
    )


class InvestigationInfoRequested(EventModel):
    """Social services asks health or dental care for records during an investigation (no consent needed)."""

    child: Child
    organisation_number: OrganisationNumber = Field(alias="organisationNumber")
    recipients: tuple[Recipient, ...] = Field(min_length=1, max_length=10)
    answer_by: dt.date | None = Field(default=None, alias="answerBy")


class ConsultationRequested(EventModel):
    """Social services consults the child's current care contacts during its investigation (barnutredning).

    Västerbotten's "Konsultation och hälsoundersökningar på begäran av socialtjänsten": the consultation is
    held with the child's current care contacts (health care and dental care) and gives a combined assessment
    of the child's health. Each care contact named gets a Task; one that has stated no active care contact
    with the child (``ehr.care-contact-stated``) is refused. No consent is needed (the duty to provide
    information to the social board's investigation).
    """

    child: Child
    organisation_number: OrganisationNumber = Field(
        alias="organisationNumber", description="The social services whose investigation consults."
    )
    care_contacts: Annotated[tuple[HsaId, ...], AfterValidator(unique)] = Field(
        alias="careContacts",
        min_length=1,
        max_length=10,
        description="The child's current care contacts consulted, by HSA-id (health care and dental care).",
    )
    answer_by: dt.date | None = Field(default=None, alias="answerBy")


class KontaktcenterReferral(EventModel):
    """Social services refers a child to Kontaktcenter (mental ill-health), after guardian consent."""

    child: Child
    organisation_number: OrganisationNumber = Field(alias="organisationNumber")
    reason: SipReason
    consent_id: Reference = Field(alias="consentId")


class ConsentRecorded(EventModel):
    """A consent to share information about the child, for one purpose, with agencies of given kinds."""

    child: Child
    consent_id: Reference = Field(alias="consentId")
    purpose: Purpose
    agency_kinds: tuple[AgencyKind, ...] = Field(alias="agencyKinds", min_length=1)
    given_by: GivenBy = Field(alias="givenBy")
    guardians: tuple[Personnummer, ...] = Field(default=(), max_length=2)
    valid_from: AwareDatetime = Field(alias="validFrom")
    valid_to: AwareDatetime | None = Field(default=None, alias="validTo")
    maturity_assessed_by: Reference | None = Field(
        default=None,
        alias="maturityAssessedBy",
        description="For a child's own consent before 18: the professional who assessed the child mature "
        "enough to consent (user id, no name); from the county's age such a consent counts.",
    )
    organisations: tuple[Agency, ...] = Field(
        default=(),
        max_length=10,
        description="The organisations the consent names (HSA-id, organisation number, school unit code): "
        "when given, it releases information only to these, not to other organisations of the same kinds.",
    )
    process_id: ProcessId | None = Field(
        default=None,
        alias="processId",
        description="The one process (Task.groupIdentifier) the consent is for, with its purpose; when "
        "given, the consent covers no other process.",
    )

    @field_validator("organisations")
    @classmethod
    def _organisations_once(cls, organisations: tuple[Agency, ...]) -> tuple[Agency, ...]:
        return unique(organisations)

    @model_validator(mode="after")
    def _guardians_match_giver(self) -> ConsentRecorded:
        if self.given_by is GivenBy.GUARDIAN and not self.guardians:
            raise ValueError("a guardian's consent names the guardians who gave it")
        if self.given_by is GivenBy.CHILD and self.guardians:
            raise ValueError("a child's own consent names no guardians")
        if self.given_by is GivenBy.GUARDIAN and self.maturity_assessed_by is not None:
            raise ValueError("only a child's own consent names who assessed the child's maturity")
        return self

    @field_validator("valid_to")
    @classmethod
    def _period_in_order(cls, valid_to: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        return _after_valid_from(valid_to, info)


class ChildObjected(EventModel):
    """The child objects to sharing, for one purpose, with agencies of the given kinds (OSL 12:3, FB 6:11).

    A professional heard the child and assessed the child mature enough for the objection to weigh
    (``assessedBy``): while it is in force no guardian's consent counts for what it covers; only the child's
    own consent (from the county's age, maturity assessed) or a provision that needs no consent does. A
    consent-withdrawn event naming ``objectionId`` ends it.
    """

    child: Child
    objection_id: Reference = Field(alias="objectionId")
    purpose: Purpose
    agency_kinds: tuple[AgencyKind, ...] = Field(alias="agencyKinds", min_length=1)
    assessed_by: Reference = Field(
        alias="assessedBy",
        description="The professional who heard the child and assessed its maturity (user id, no name).",
    )
    valid_from: AwareDatetime = Field(alias="validFrom")
    valid_to: AwareDatetime | None = Field(default=None, alias="validTo")

    @field_validator("valid_to")
    @classmethod
    def _period_in_order(cls, valid_to: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        return _after_valid_from(valid_to, info)


class GuardianSecrecyDecided(EventModel):
    """Secrecy applies against the child's guardians (OSL 12:3): the guardians must not learn the content.

    A professional assessed that the child's own secrecy holds against the guardians. While it is in force,
    every recipient that faces the guardians (a school, preschool or BVC, whose portals the guardians read)
    gets a message without its content, and the ledger says why.
    """

    child: Child
    decision_id: Reference = Field(alias="decisionId")
    assessed_by: Reference = Field(
        alias="assessedBy", description="The professional who assessed it (user id, no name)."
    )
    valid_from: AwareDatetime = Field(alias="validFrom")
    valid_to: AwareDatetime | None = Field(default=None, alias="validTo")

    @field_validator("valid_to")
    @classmethod
    def _period_in_order(cls, valid_to: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        return _after_valid_from(valid_to, info)


class GuardianSecrecyLifted(EventModel):
    """Secrecy against the guardians (decision ``decisionId``) no longer applies from ``at``.

    A professional assessed that the child's secrecy no longer holds against the guardians (the child is
    no longer at risk, or the child now agrees): it ends before its ``validTo``. Later messages reach
    guardian-facing recipients with their content; nothing already delivered is sent again, and nothing is
    delivered for this event itself (telling a guardian-facing recipient that secrecy was lifted would tell
    the guardians that there was any).
    """

    child: Child
    decision_id: Reference = Field(alias="decisionId", description="The guardian-secrecy decision that ends.")
    assessed_by: Reference = Field(
        alias="assessedBy", description="The professional who assessed that it ends (user id, no name)."
    )
    at: AwareDatetime = Field(description="From when secrecy no longer applies against the guardians.")


class ConsentWithdrawn(EventModel):
    """The consent ``consentId`` is withdrawn from ``at`` on, by the guardians named or by the child."""

    child: Child
    consent_id: Reference = Field(alias="consentId")
    at: AwareDatetime
    withdrawn_by: GivenBy | None = Field(
        default=None, alias="withdrawnBy", description="Who withdrew it: a guardian, or the child."
    )
    guardians: tuple[Personnummer, ...] = Field(
        default=(), max_length=2, description="The guardians who withdrew it (with withdrawnBy guardian)."
    )

    @model_validator(mode="after")
    def _guardians_match_withdrawer(self) -> ConsentWithdrawn:
        if self.withdrawn_by is GivenBy.GUARDIAN and not self.guardians:
            raise ValueError("a guardian's withdrawal names the guardians who withdrew it")
        if self.withdrawn_by is not GivenBy.GUARDIAN and self.guardians:
            raise ValueError("guardians are named only with withdrawnBy guardian")
        return self


class CustodyUpdated(EventModel):
    """Who has custody of the child now, and so who may consent for it.

    Joint (two guardians), sole (one), one or two specially appointed guardians (särskilt förordnad
    vårdnadshavare) or, for an unaccompanied minor, a god man. Only the people named here consent for the
    child; a consent signed by anyone else counts for nothing.
    """

    child: Child
    guardians: tuple[Personnummer, ...] = Field(min_length=1, max_length=2)
    custody: Custody
    at: AwareDatetime

    @model_validator(mode="after")
    def _count_matches_custody(self) -> CustodyUpdated:
        sizes = self.custody.sizes
        if len(self.guardians) not in sizes or len(set(self.guardians)) != len(self.guardians):
            expected = " or ".join(str(n) for n in sizes)
            raise ValueError(f"{self.custody.value} custody names {expected} different guardian(s)")
        return self


class TaskAnswered(EventModel):
    """Social services reports the state of a Task it received, to the agency that sent it.

    The answering unit is named like any agency: by organisation number (the municipality's social
    services), or by HSA-id for a unit of its own, such as the adult unit (vuxenenhet) invited to a
    hand-over meeting. The answer goes to the requester of the Task that unit was given, as the process
    state recorded it; ``answerTo`` must be that party, or the answer is refused.
    """

    process_id: ProcessId = Field(alias="processId")
    child: Child
    task_id: Reference = Field(alias="taskId", description="The id of the Task answered.")
    status: TaskState
    organisation_number: OrganisationNumber | None = Field(
        default=None,
        alias="organisationNumber",
        description="The answering social services by organisation number (give this or hsaId).",
    )
    hsa_id: HsaId | None = Field(
        default=None,
        alias="hsaId",
        description="The answering unit by HSA-id, e.g. the adult unit of social services (vuxenenhet) "
        "(give this or organisationNumber).",
    )
    answer_to: Agency = Field(alias="answerTo")

    @model_validator(mode="after")
    def _one_answering_unit(self) -> TaskAnswered:
        if (self.organisation_number is None) == (self.hsa_id is None):
            raise ValueError("name the answering unit by exactly one of organisationNumber or hsaId")
        return self

    @property
    def answerer(self) -> Agency:
        """The answering unit as an agency."""
        named = {"organisationNumber": self.organisation_number, "hsaId": self.hsa_id}
        return Agency.model_validate({k: v for k, v in named.items() if v is not None})
