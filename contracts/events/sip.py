"""SIP lifecycle events, from whichever system holds the SIP meeting (e.g. Cosmic Link)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import AwareDatetime, Field, model_validator

from sambus.contracts.events._base import EventModel
from sambus.contracts.events._common import Agencies, Agency, Child, ProcessId, StaffPerson


class _SipEvent(EventModel):
    process_id: ProcessId = Field(alias="processId")
    child: Child
    organizer: Agency = Field(description="The agency whose system holds the SIP meeting and reports it.")
    participants: Agencies = Field(description="The agencies taking part, each told of the event.")


class MeetingScheduled(_SipEvent):
    """The SIP meeting is set; ``professionalsOnly`` for a cost-responsibility meeting without the family."""

    start: AwareDatetime
    professionals_only: bool = Field(default=False, alias="professionalsOnly")


class MeetingHeld(_SipEvent):
    """The SIP meeting took place: the participants are those who attended."""

    held_at: AwareDatetime = Field(alias="heldAt")
    professionals_only: bool = Field(default=False, alias="professionalsOnly")


class ActionCategory(StrEnum):
    """What kind of action an agency takes on in a SIP."""

    ASSESSMENT = "assessment"
    TREATMENT = "treatment"
    SCHOOL_SUPPORT = "school_support"
    SOCIAL_SUPPORT = "social_support"
    FAMILY_SUPPORT = "family_support"
    DENTAL_CARE = "dental_care"
    OTHER = "other"


class PlanActivity(EventModel):
    """One agency's action in the plan."""

    agency: Agency
    action: ActionCategory


class PlanEstablished(_SipEvent):
    """The SIP plan is established: lead coordinator (huvudansvarig), actions per agency, follow-up."""

    lead_coordinator: Agency = Field(
        alias="leadCoordinator", description="Huvudansvarig: the lead coordinator's agency."
    )
    lead_coordinator_person: StaffPerson | None = Field(
        default=None,
        alias="leadCoordinatorPerson",
        description="The person at that agency who is huvudansvarig, by role (and id if known).",
    )
    activities: tuple[PlanActivity, ...] = Field(min_length=1, max_length=30)
    follow_up: dt.date = Field(alias="followUp")

    @model_validator(mode="after")
    def _everyone_takes_part(self) -> PlanEstablished:
        named = {self.lead_coordinator, *(a.agency for a in self.activities)}
        if not named <= set(self.participants):
            raise ValueError("the lead coordinator and every agency with an action must be participants")
        return self


class LeadCoordinatorChanged(_SipEvent):
    """Another agency or person becomes lead coordinator (huvudansvarig) of the SIP from ``since``.

    Each participant is told; the plan's actions and follow-up stay as they were.
    """

    lead_coordinator: Agency = Field(
        alias="leadCoordinator", description="The new lead coordinator's agency."
    )
    lead_coordinator_person: StaffPerson = Field(
        alias="leadCoordinatorPerson", description="The person at that agency who is now huvudansvarig."
    )
    since: dt.date

    @model_validator(mode="after")
    def _coordinator_takes_part(self) -> LeadCoordinatorChanged:
        if self.lead_coordinator not in self.participants:
            raise ValueError("the lead coordinator must be a participant")
        return self


class FollowUpOutcome(StrEnum):
    """How a SIP follow-up ended."""

    CONTINUE = "continue"
    REVISED = "revised"


class FollowedUp(_SipEvent):
    """The plan was followed up; the next follow-up date if the plan continues."""

    outcome: FollowUpOutcome
    next_follow_up: dt.date | None = Field(default=None, alias="nextFollowUp")


class ClosureReason(StrEnum):
    """Why a SIP closed."""

    GOALS_MET = "goals_met"
    DECLINED = "declined"
    """The child or the guardians declined the SIP offered: no plan was made."""
    WITHDRAWN = "withdrawn"
    RENEWED = "renewed"
    """Closed and replaced by a new SIP."""
    TRANSITION_TO_ADULTHOOD = "transition_to_adulthood"


class Closed(_SipEvent):
    """The SIP is closed."""

    reason: ClosureReason
