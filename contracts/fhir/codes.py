"""sambus's own CodeSystems and naming systems, and the codes the messages use."""

from __future__ import annotations

from enum import StrEnum

_BASE = "https://sambus.se/fhir"

EVENT_SYSTEM = f"{_BASE}/CodeSystem/sambus-event"
"""``MessageHeader.eventCoding``: what happened."""

TASK_SYSTEM = f"{_BASE}/CodeSystem/sambus-task"
"""``Task.code``: what the recipient is asked to do."""

PROCESS_STEP_SYSTEM = f"{_BASE}/CodeSystem/sambus-process-step"
"""``Task.businessStatus``: where the process stands."""

SOURCE_EVENT_SYSTEM = f"{_BASE}/NamingSystem/source-event"
"""Identifier of the inbound event a message was made from: ``<source>|<event id>``."""

SOURCE_ENDPOINT_PREFIX = "urn:sambus:source:"
DESTINATION_ENDPOINT_PREFIX = "urn:sambus:recipient:"


class EventCode(StrEnum):
    """Codes of :data:`EVENT_SYSTEM`: every kind of message sambus carries.

    Consent rules (``consent``) and routing (``router``) are written in these codes.
    """

    # SIP, samordnad individuell plan (coordinated individual plan)
    SIP_INITIATED = "sip-initiated"
    SIP_INVITATION_ANSWERED = "sip-invitation-answered"
    SIP_MEETING_SCHEDULED = "sip-meeting-scheduled"
    SIP_PLAN_ESTABLISHED = "sip-plan-established"
    SIP_FOLLOWED_UP = "sip-followed-up"
    SIP_CLOSED = "sip-closed"
    # Placement outside the home (SoL / LVU)
    PLACEMENT_STARTED = "placement-started"
    PLACEMENT_CHANGED = "placement-changed"
    PLACEMENT_ENDED = "placement-ended"
    SUICIDE_RISK_ASSESSMENT_REQUESTED = "suicide-risk-assessment-requested"
    # Hidden residence (LVU 14 §) and what the EHR is told
    HIDDEN_RESIDENCE_DECIDED = "hidden-residence-decided"
    HIDDEN_RESIDENCE_LIFTED = "hidden-residence-lifted"
    GUARDIAN_ACCESS_BLOCKED = "guardian-access-blocked"
    GUARDIAN_ACCESS_RESUMED = "guardian-access-resumed"
    # Health examinations of placed children
    HEALTH_EXAM_REQUESTED = "health-exam-requested"
    """Lag (2017:209): one request to health care and one to dental care."""
    HEALTH_EXAM_COMPLETED = "health-exam-completed"
    LVU32_EXAM_ORDERED = "lvu32-exam-ordered"
    LVU32_EXAM_COMPLETED = "lvu32-exam-completed"
    NEWLY_ARRIVED_HEALTH_REFERRAL = "newly-arrived-health-referral"
    """Student health refers a newly arrived (asylum-seeking) child who was not health-examined."""
    # Information, referrals, reports
    INVESTIGATION_INFO_REQUESTED = "investigation-info-requested"
    KONTAKTCENTER_REFERRAL = "kontaktcenter-referral"
    CONCERN_REPORTED = "concern-reported"
    """Orosanmälan: a report of concern to social services (no consent needed)."""
    # Consent and custody (feed the consent registry)
    CONSENT_RECORDED = "consent-recorded"
    CONSENT_WITHDRAWN = "consent-withdrawn"
    CUSTODY_UPDATED = "custody-updated"
    # Answers
    TASK_STATUS_CHANGED = "task-status-changed"
    # Made by sambus itself
    DELIVERY_DENIED = "delivery-denied"
    PARKED_EXPIRED = "parked-expired"
    DEADLINE_REMINDER = "deadline-reminder"
    DEADLINE_ESCALATION = "deadline-escalation"
    TRANSITION_TO_ADULTHOOD = "transition-to-adulthood"


class TaskCode(StrEnum):
    """Codes of :data:`TASK_SYSTEM`."""

    SIP_INVITATION = "sip-invitation"


class ProcessStep(StrEnum):
    """Codes of :data:`PROCESS_STEP_SYSTEM`."""

    SIP_INVITED = "sip-invited"


SCHOOL_UNIT_SYSTEM = f"{_BASE}/NamingSystem/skolenhetskod"
"""A school unit's code in Skolverket's school unit register (SS 12000 ``schoolUnitCode``)."""

SIP_REASON_SYSTEM = f"{_BASE}/CodeSystem/sambus-sip-reason"
"""``Task.reasonCode``: why a SIP is needed, as a category."""

ROUTING_ADDRESS_SYSTEM = f"{_BASE}/NamingSystem/routing-address"
"""A Task owner the router resolves through its directory, when the sender does not know the organisation.

Values: ``<agency kind>`` (the one organisation of that kind in the directory's region, e.g. ``dental``)
or ``<agency kind>@<kommunkod>`` (e.g. ``social_services@1980``: social services of that municipality).
The router replaces it with the resolved organisation's own identifier before delivery.
"""

AGENCY_KIND_SYSTEM = f"{_BASE}/CodeSystem/sambus-agency-kind"
"""Codes of :class:`contracts.agencies.AgencyKind`, e.g. in ``Task.performerType``."""

DATA_CATEGORY_SYSTEM = f"{_BASE}/CodeSystem/sambus-data-category"
"""``meta.tag`` on a resource that reveals something sensitive; code ``residence`` marks a resource that
reveals where the child lives (placement home, residence municipality, new school unit, nearby care unit).

Residence-revealing data appears only as ``Patient.address`` or in a whole resource tagged this way, so
redaction can remove it by known paths.
"""

RESIDENCE_TAG = "residence"

PURPOSE_SYSTEM = f"{_BASE}/CodeSystem/sambus-purpose"
"""Codes of :class:`contracts.agencies.Purpose`, e.g. in ``Consent.category``."""

PROTECTION_SYSTEM = f"{_BASE}/CodeSystem/sambus-protection"
"""``Flag.code`` for protection decisions: ``hidden-residence`` (LVU 14 §)."""
