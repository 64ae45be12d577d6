"""Events sent by school and preschool administration systems.

Field names follow SS 12000, the Swedish school data standard, where it has one: a person's
``civicNo`` and a school unit's ``schoolUnitCode``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from sambus.contracts.events._base import EventModel
from sambus.contracts.events._common import (
    Agencies,
    Agency,
    Child,
    Kommunkod,
    ProcessId,
    Reference,
    SchoolUnitCode,
    StaffPerson,
    SuicideRisk,
    TaskState,
)

Invitee = Agency
"""An agency invited to a SIP (the name the first school event used)."""


class SipInitiator(StrEnum):
    """Who at the school initiates a SIP."""

    STUDENT_HEALTH = "student_health"
    PRESCHOOL = "preschool"


class SipReason(StrEnum):
    """Why the SIP (or a referral) is needed, as a category (free text could carry names)."""

    MENTAL_HEALTH = "mental_health"
    PHYSICAL_HEALTH = "physical_health"
    DEVELOPMENT = "development"
    SCHOOL_ATTENDANCE = "school_attendance"
    SOCIAL_SITUATION = "social_situation"
    OTHER = "other"


class Answer(StrEnum):
    """An agency's answer to a SIP invitation."""

    ACCEPTED = "accepted"
    DECLINED = "declined"


class ConcernCategory(StrEnum):
    """What a report of concern (orosanmälan) is about."""

    NEGLECT = "neglect"
    PHYSICAL_ABUSE = "physical_abuse"
    PSYCHOLOGICAL_ABUSE = "psychological_abuse"
    SEXUAL_ABUSE = "sexual_abuse"
    VIOLENCE_AT_HOME = "violence_at_home"
    OWN_BEHAVIOUR = "own_behaviour"
    SUBSTANCE_USE = "substance_use"
    """The child's own use of alcohol, narcotics or other substances."""
    GAMBLING = "gambling"
    """The child's gambling for money."""
    CRIME = "crime"
    """The child's criminal behaviour."""
    SELF_HARM = "self_harm"
    HONOUR_RELATED = "honour_related"
    """Honour-related violence and oppression."""
    SCHOOL_ABSENCE = "school_absence"
    PARENTAL_SUBSTANCE_USE = "parental_substance_use"
    OTHER = "other"


class Concern(EventModel):
    """A report of concern (orosanmälan) to social services where the child lives (no consent needed).

    The reporting duty is personal: ``reporter`` names who reports by role (and HSA-id or user id, no name).
    """

    child: Child
    residence_municipality: Kommunkod = Field(
        alias="residenceMunicipality", description="Kommunkod of the municipality where the child lives."
    )
    category: ConcernCategory = Field(description="What the concern is mainly about.")
    additional_categories: tuple[ConcernCategory, ...] = Field(
        default=(),
        alias="additionalCategories",
        max_length=10,
        description="What else it is about (e.g. substance use and gambling), each once.",
    )
    reporter: StaffPerson | None = Field(default=None, description="Who reports, by role.")

    @model_validator(mode="after")
    def _each_category_once(self) -> Concern:
        if len({self.category, *self.additional_categories}) != 1 + len(self.additional_categories):
            raise ValueError("name each category once (category and additionalCategories)")
        return self


class SipInitiated(EventModel):
    """A school's student-health team (or a preschool) initiates a SIP and names the agencies to invite."""

    child: Child
    school_unit_code: SchoolUnitCode = Field(alias="schoolUnitCode")
    initiated_by: SipInitiator = Field(alias="initiatedBy")
    reason: SipReason
    invite: Agencies


class SipAnswered(EventModel):
    """The school answers a SIP invitation it received, to the agency that invited it."""

    process_id: ProcessId = Field(alias="processId")
    child: Child
    school_unit_code: SchoolUnitCode = Field(alias="schoolUnitCode")
    answer: Answer
    answer_to: Agency = Field(alias="answerTo", description="The agency that sent the invitation.")


class ConcernReported(Concern):
    """A school or preschool reports concern (orosanmälan) to social services where the child lives."""

    school_unit_code: SchoolUnitCode = Field(alias="schoolUnitCode")


class SuicideRiskReported(SuicideRisk):
    """The school (student health) sees acute suicide risk: social services and BUP are alerted at once."""

    school_unit_code: SchoolUnitCode = Field(alias="schoolUnitCode")


class KontaktcenterReferral(EventModel):
    """Student health refers a child to Kontaktcenter (mental ill-health), after guardian consent."""

    child: Child
    school_unit_code: SchoolUnitCode = Field(alias="schoolUnitCode")
    reason: SipReason
    consent_id: Reference = Field(alias="consentId", description="The guardians' recorded consent.")


class NewlyArrivedReferral(EventModel):
    """Student health refers a newly arrived child not health-examined (lag 2008:344) to health care."""

    child: Child
    school_unit_code: SchoolUnitCode = Field(alias="schoolUnitCode")


class TaskStatus(EventModel):
    """The school reports the state of a Task it received (e.g. a placement notice) to its sender."""

    process_id: ProcessId = Field(alias="processId")
    child: Child
    task_id: Reference = Field(alias="taskId", description="The id of the Task answered.")
    status: TaskState
    school_unit_code: SchoolUnitCode = Field(alias="schoolUnitCode")
    answer_to: Agency = Field(alias="answerTo", description="The agency that sent the Task.")
