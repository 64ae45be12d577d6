"""The catalogue: every inbound event type, its model and its translation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sambus.adapters import ehr, school, sip, social
from sambus.adapters.handover import translate_handover_meeting_called
from sambus.contracts.envelope import Envelope, open_envelope, parse_event
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.events import EVENT_TYPES, EventModel
from sambus.contracts.fhir.message import Clock, assembled_at, utc_now
from sambus.contracts.intent import Intent
from sambus.contracts.topics import KafkaHeaders

Translator = Callable[[Envelope, Any], list[Intent]]


@dataclass(frozen=True)
class CatalogueEntry:
    """One inbound event type: the model its ``data`` must match and its translation into FHIR messages."""

    event_type: str
    model: type[EventModel]
    translator: Translator


_TRANSLATORS: dict[str, Translator] = {
    "school.sip-initiated": school.translate_sip_initiated,
    "school.sip-answered": school.translate_sip_answered,
    "school.concern-reported": school.translate_concern_reported,
    "school.kontaktcenter-referral": school.translate_kontaktcenter_referral,
    "school.newly-arrived-referral": school.translate_newly_arrived_referral,
    "school.task-status": school.translate_task_status,
    "school.suicide-risk-reported": school.translate_suicide_risk_reported,
    "school.consent-recorded": social.translate_consent_recorded,
    "school.consent-withdrawn": social.translate_consent_withdrawn,
    "school.child-objected": social.translate_child_objected,
    "school.guardian-secrecy-decided": social.translate_guardian_secrecy_decided,
    "school.guardian-secrecy-lifted": social.translate_guardian_secrecy_lifted,
    "social.sip-initiated": social.translate_sip_initiated,
    "social.placement-started": social.translate_placement,
    "social.placement-changed": social.translate_placement,
    "social.placement-ended": social.translate_placement,
    "social.hidden-residence-decided": social.translate_hidden_residence,
    "social.hidden-residence-lifted": social.translate_hidden_residence,
    "social.hidden-residence-not-needed": social.translate_hidden_residence_not_needed,
    "social.identity-protection-ended": social.translate_identity_protection_ended,
    "social.residence-released": social.translate_residence_released,
    "social.health-exam-requested": social.translate_health_exam_requested,
    "social.equivalent-health-exam-exists": social.translate_equivalent_health_exam_exists,
    "social.lvu32-exam-ordered": social.translate_lvu32_exam_ordered,
    "social.suicide-risk-assessment-requested": social.translate_suicide_risk_assessment,
    "social.investigation-info-requested": social.translate_investigation_info_requested,
    "social.consultation-requested": social.translate_consultation_requested,
    "social.kontaktcenter-referral": social.translate_kontaktcenter_referral,
    "social.consent-recorded": social.translate_consent_recorded,
    "social.consent-withdrawn": social.translate_consent_withdrawn,
    "social.child-objected": social.translate_child_objected,
    "social.guardian-secrecy-decided": social.translate_guardian_secrecy_decided,
    "social.guardian-secrecy-lifted": social.translate_guardian_secrecy_lifted,
    "social.custody-updated": social.translate_custody_updated,
    "social.task-answered": social.translate_task_answered,
    "social.suicide-risk-reported": social.translate_suicide_risk_reported,
    "social.handover-meeting-called": translate_handover_meeting_called,
    "social.concern-reported": social.translate_concern_reported,
    "ehr.sip-initiated": ehr.translate_sip_initiated,
    "ehr.health-exam-completed": ehr.translate_health_exam_completed,
    "ehr.lvu32-exam-completed": ehr.translate_lvu32_exam_completed,
    "ehr.task-status": ehr.translate_task_status,
    "ehr.investigation-info-provided": ehr.translate_investigation_info_provided,
    "ehr.consultation-answered": ehr.translate_consultation_answered,
    "ehr.consent-recorded": social.translate_consent_recorded,
    "ehr.consent-withdrawn": social.translate_consent_withdrawn,
    "ehr.child-objected": social.translate_child_objected,
    "ehr.guardian-secrecy-decided": social.translate_guardian_secrecy_decided,
    "ehr.guardian-secrecy-lifted": social.translate_guardian_secrecy_lifted,
    "ehr.fhir-consent": ehr.translate_fhir_consent,
    "ehr.concern-reported": ehr.translate_concern_reported,
    "ehr.care-contact-stated": ehr.translate_care_contact_stated,
    "ehr.suicide-risk-reported": ehr.translate_suicide_risk_reported,
    "ehr.handover-meeting-called": translate_handover_meeting_called,
    "sip.meeting-scheduled": sip.translate_meeting_scheduled,
    "sip.meeting-held": sip.translate_meeting_held,
    "sip.plan-established": sip.translate_plan_established,
    "sip.lead-coordinator-changed": sip.translate_lead_coordinator_changed,
    "sip.followed-up": sip.translate_followed_up,
    "sip.closed": sip.translate_closed,
}

CATALOGUE: dict[str, CatalogueEntry] = {
    event_type: CatalogueEntry(
        event_type, model, _TRANSLATORS[event_type.removeprefix("se.sambus.").rsplit(".v", 1)[0]]
    )
    for event_type, model in EVENT_TYPES.items()
}
"""Every inbound event type (``se.sambus.<source>.<name>.v1``) with its model and translator."""


def translate(envelope: Envelope, *, clock: Clock = utc_now) -> list[Intent]:
    """Validate the envelope's event and translate it into canonical FHIR messages.

    Every message gets ``clock()`` (read once) as its ``Bundle.timestamp``: when it was assembled.

    Raises:
        InvalidEventError: the event is not valid; the error names the field and the problem.
    """
    event = parse_event(envelope)
    entry = CATALOGUE.get(envelope.type)
    if entry is None:  # pragma: no cover - parse_event rejects unknown types first
        raise InvalidEventError(f"no translation for {envelope.type!r}", field="type")
    with assembled_at(clock()):
        return entry.translator(envelope, event)


def translate_message(
    value: bytes | None, headers: KafkaHeaders = (), *, clock: Clock = utc_now
) -> list[Intent]:
    """Translate an inbound Kafka message (plain JSON or CloudEvents binary binding); see :func:`translate`.

    Raises:
        InvalidEventError: the bytes, the envelope or the event are not valid.
    """
    return translate(open_envelope(value, headers), clock=clock)
