"""Events sent by school and preschool administration systems.

Field names follow SS 12000, the Swedish school data standard, where it has one: a person's
``civicNo`` and a school unit's ``schoolUnitCode``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from sambus.contracts.events._base import EventModel
from sambus.contracts.events._common import (
    Agencies,
    Agency,
    Child,
    Kommunkod,
    ProcessId,
    Reference,
    SchoolUnitCode,
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
    OTHER = "other"


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


class ConcernReported(EventModel):
    """A report of concern (orosanmälan) to social services where the child lives (no consent needed)."""

    child: Child
    school_unit_code: SchoolUnitCode = Field(alias="schoolUnitCode")
    residence_municipality: Kommunkod = Field(
        alias="residenceMunicipality", description="Kommunkod of the municipality where the child lives."
    )
    category: ConcernCategory


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
