"""Events sent by school and preschool administration systems.

Field names follow SS 12000, the Swedish school data standard, where it has one: a person's
``civicNo`` and a school unit's ``schoolUnitCode``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from contracts.events._base import EventModel
from contracts.identifiers import HsaId, OrganisationNumber, Personnummer


def _school_unit_code(value: str) -> str:
    if not (value.isdigit() and len(value) == 8):  # noqa: PLR2004 - SS 12000 school unit codes have 8 digits
        raise ValueError("a school unit code (skolenhetskod) has eight digits")
    return value


SchoolUnitCode = Annotated[str, AfterValidator(_school_unit_code)]


class Child(EventModel):
    """The child the event is about, identified as in SS 12000."""

    civic_no: Personnummer = Field(alias="civicNo", description="The child's personnummer (12 digits).")


class SipInitiator(StrEnum):
    """Who at the school initiates a SIP."""

    STUDENT_HEALTH = "student_health"
    PRESCHOOL = "preschool"


class Invitee(EventModel):
    """An agency invited to a SIP, named by its HSA-id (health and dental care) or organisation number."""

    hsa_id: HsaId | None = Field(default=None, alias="hsaId")
    organisation_number: OrganisationNumber | None = Field(default=None, alias="organisationNumber")

    @model_validator(mode="after")
    def _exactly_one_identifier(self) -> Invitee:
        if (self.hsa_id is None) == (self.organisation_number is None):
            raise ValueError("name the invited agency by exactly one of hsaId or organisationNumber")
        return self


class SipReason(StrEnum):
    """Why the SIP is needed, as a category; free text could carry names and is not accepted."""

    MENTAL_HEALTH = "mental_health"
    PHYSICAL_HEALTH = "physical_health"
    DEVELOPMENT = "development"
    SCHOOL_ATTENDANCE = "school_attendance"
    SOCIAL_SITUATION = "social_situation"
    OTHER = "other"


class SipInitiated(EventModel):
    """A school's student-health team (or a preschool) initiates a SIP and names the agencies to invite."""

    child: Child
    school_unit_code: SchoolUnitCode = Field(alias="schoolUnitCode")
    initiated_by: SipInitiator = Field(alias="initiatedBy")
    reason: SipReason
    invite: tuple[Invitee, ...] = Field(min_length=1, max_length=10)

    @field_validator("invite")
    @classmethod
    def _each_agency_once(cls, invite: tuple[Invitee, ...]) -> tuple[Invitee, ...]:
        if len(set(invite)) != len(invite):
            raise ValueError("each agency may be invited only once")
        return invite
