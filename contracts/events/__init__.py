"""Inbound agency events: one frozen pydantic model per event type, registered by its versioned type.

Type names are ``se.sambus.<source>.<name>.v<version>``; sources are ``school``, ``social``, ``ehr`` and
``sip`` (SIP lifecycle events, from whichever system holds the SIP meeting).
"""

from __future__ import annotations

from sambus.contracts.events import ehr, school, sip, social
from sambus.contracts.events._base import EventModel
from sambus.contracts.events._common import (
    Agency,
    Child,
    HandoverMeetingCalled,
    Protection,
    Recipient,
    TaskState,
)
from sambus.contracts.events.school import Invitee, SipInitiated, SipInitiator, SipReason

_PREFIX = "se.sambus."

_BY_NAME: dict[str, type[EventModel]] = {
    "school.sip-initiated": school.SipInitiated,
    "school.sip-answered": school.SipAnswered,
    "school.concern-reported": school.ConcernReported,
    "school.kontaktcenter-referral": school.KontaktcenterReferral,
    "school.newly-arrived-referral": school.NewlyArrivedReferral,
    "school.task-status": school.TaskStatus,
    "school.suicide-risk-reported": school.SuicideRiskReported,
    "school.consent-recorded": social.ConsentRecorded,
    "school.consent-withdrawn": social.ConsentWithdrawn,
    "school.child-objected": social.ChildObjected,
    "school.guardian-secrecy-decided": social.GuardianSecrecyDecided,
    "school.guardian-secrecy-lifted": social.GuardianSecrecyLifted,
    "social.sip-initiated": social.SipInitiated,
    "social.placement-started": social.PlacementStarted,
    "social.placement-changed": social.PlacementChanged,
    "social.placement-ended": social.PlacementEnded,
    "social.hidden-residence-decided": social.HiddenResidenceDecided,
    "social.hidden-residence-lifted": social.HiddenResidenceLifted,
    "social.hidden-residence-not-needed": social.HiddenResidenceNotNeeded,
    "social.identity-protection-ended": social.IdentityProtectionEnded,
    "social.residence-released": social.ResidenceReleased,
    "social.health-exam-requested": social.HealthExamRequested,
    "social.equivalent-health-exam-exists": social.EquivalentHealthExamExists,
    "social.lvu32-exam-ordered": social.Lvu32ExamOrdered,
    "social.suicide-risk-assessment-requested": social.SuicideRiskAssessmentRequested,
    "social.investigation-info-requested": social.InvestigationInfoRequested,
    "social.consultation-requested": social.ConsultationRequested,
    "social.kontaktcenter-referral": social.KontaktcenterReferral,
    "social.consent-recorded": social.ConsentRecorded,
    "social.consent-withdrawn": social.ConsentWithdrawn,
    "social.custody-updated": social.CustodyUpdated,
    "social.child-objected": social.ChildObjected,
    "social.guardian-secrecy-decided": social.GuardianSecrecyDecided,
    "social.guardian-secrecy-lifted": social.GuardianSecrecyLifted,
    "social.task-answered": social.TaskAnswered,
    "social.suicide-risk-reported": social.SuicideRiskReported,
    "social.handover-meeting-called": HandoverMeetingCalled,
    "social.concern-reported": social.ConcernReported,
    "ehr.sip-initiated": ehr.SipInitiated,
    "ehr.health-exam-completed": ehr.HealthExamCompleted,
    "ehr.lvu32-exam-completed": ehr.Lvu32ExamCompleted,
    "ehr.task-status": ehr.TaskStatus,
    "ehr.investigation-info-provided": ehr.InvestigationInfoProvided,
    "ehr.consultation-answered": ehr.ConsultationAnswered,
    "ehr.consent-recorded": ehr.ConsentRecorded,
    "ehr.consent-withdrawn": ehr.ConsentWithdrawn,
    "ehr.fhir-consent": ehr.FhirConsent,
    "ehr.child-objected": social.ChildObjected,
    "ehr.guardian-secrecy-decided": social.GuardianSecrecyDecided,
    "ehr.guardian-secrecy-lifted": social.GuardianSecrecyLifted,
    "ehr.concern-reported": ehr.ConcernReported,
    "ehr.care-contact-stated": ehr.CareContactStated,
    "ehr.suicide-risk-reported": ehr.SuicideRiskReported,
    "ehr.handover-meeting-called": HandoverMeetingCalled,
    "sip.meeting-scheduled": sip.MeetingScheduled,
    "sip.meeting-held": sip.MeetingHeld,
    "sip.plan-established": sip.PlanEstablished,
    "sip.lead-coordinator-changed": sip.LeadCoordinatorChanged,
    "sip.followed-up": sip.FollowedUp,
    "sip.closed": sip.Closed,
}

EVENT_TYPES: dict[str, type[EventModel]] = {f"{_PREFIX}{name}.v1": model for name, model in _BY_NAME.items()}
"""Every inbound event type, by the versioned name an envelope declares."""

__all__ = [
    "EVENT_TYPES",
    "Agency",
    "Child",
    "EventModel",
    "HandoverMeetingCalled",
    "Invitee",
    "Protection",
    "Recipient",
    "SipInitiated",
    "SipInitiator",
    "SipReason",
    "TaskState",
    "ehr",
    "school",
    "sip",
    "social",
]
