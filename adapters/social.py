"""Social services' events, translated into canonical FHIR messages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fhir.resources.R4B.basic import Basic
from fhir.resources.R4B.flag import Flag

from sambus.adapters._build import (
    Draft,
    agency_identifier,
    concern_report,
    hsa,
    kontaktcenter_referral,
    orgnr,
    routing_address,
    sip_invitations,
    suicide_risk_alert,
    task_status_notice,
)
from sambus.contracts.agencies import AgencyKind
from sambus.contracts.envelope import Envelope
from sambus.contracts.events import social
from sambus.contracts.events._common import SecrecyAssessment
from sambus.contracts.fhir import (
    SCHOOL_UNIT_SYSTEM,
    TASK_SYSTEM,
    EventCode,
    ProcessStep,
    TaskCode,
    deterministic_id,
    urn,
)
from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.assessment import SecrecyAssessment as FhirSecrecyAssessment
from sambus.contracts.fhir.assessment import assessment_inputs
from sambus.contracts.fhir.codes import (
    EQUIVALENT_EXAMINATION,
    HIDDEN_RESIDENCE_ANSWER,
    NEW_SCHOOL_UNIT_INPUT,
    PLACEMENT_SYSTEM,
    PROTECTED_IDENTITY,
    PROTECTION_SYSTEM,
    STATEMENT_SYSTEM,
    TASK_INPUT_SYSTEM,
)
from sambus.contracts.fhir.consent import consent, consent_withdrawal
from sambus.contracts.fhir.flag import DECISION_ID_SYSTEM, SECRET_FROM_GUARDIANS, hidden_residence_flag
from sambus.contracts.fhir.organization import residence_organisation
from sambus.contracts.fhir.patient import guardian
from sambus.contracts.fhir.release import CASE_SYSTEM_USER_SYSTEM, residence_release
from sambus.contracts.fhir.security import meta
from sambus.contracts.fhir.task import coding
from sambus.contracts.intent import Intent

ACUTE_PLANNING_DAYS = 14
"""After an acute placement the deciding board invites to joint planning within two weeks."""


def translate_sip_initiated(envelope: Envelope, event: social.SipInitiated) -> list[Intent]:
    """Social services' SIP initiative: a Task inviting each named agency."""
    return sip_invitations(
        envelope, event.child, event.invite, requester=orgnr(event.organisation_number), reason=event.reason
    )


def _assessment(given: SecrecyAssessment | None) -> list[dict[str, Any]]:
    """``Task.input`` entries for a professional's assessment that a provision allows the disclosure."""
    if given is None:
        return []
    return assessment_inputs(FhirSecrecyAssessment(provision=given.provision, assessed_by=given.assessed_by))


_PLACEMENT = {
    social.PlacementStarted: (EventCode.PLACEMENT_STARTED, ProcessStep.PLACEMENT_STARTED),
    social.PlacementChanged: (EventCode.PLACEMENT_CHANGED, ProcessStep.PLACEMENT_CHANGED),
    social.PlacementEnded: (EventCode.PLACEMENT_ENDED, ProcessStep.PLACEMENT_ENDED),
}


def translate_placement(
    envelope: Envelope, event: social.PlacementStarted | social.PlacementChanged | social.PlacementEnded
) -> list[Intent]:
    """A placement notice to each named school, health and dental care unit.

    The residence goes only in ``Patient.address`` and a new school unit only in an Organization tagged
    ``residence``, so redaction can remove both for a recipient who must not learn where the child lives.
    Social services' answer to the hidden-residence question, when the event has it, is a ``Task.input``
    (``hidden-residence-answer``); "hidden" also labels the message R + NOPAT.
    An acute placement's Task is due within two weeks (joint planning).
    """
    event_code, step = _PLACEMENT[type(event)]
    hidden = getattr(event, "hidden_residence", None)
    draft = Draft(envelope, event.child, event_code, hidden_residence=hidden is True)
    due = None
    inputs: list[dict[str, Any]] = _assessment(event.secrecy_assessment)
    if hidden is not None:
        inputs.append({"type": coding(TASK_INPUT_SYSTEM, HIDDEN_RESIDENCE_ANSWER), "valueBoolean": hidden})
    if isinstance(event, social.PlacementStarted | social.PlacementChanged):
        residence = event.residence
        draft.address = {
            "line": list(residence.line),
            "postalCode": residence.postal_code,
            "city": residence.city,
            "district": residence.municipality,
        }
        if event.school_unit_code is not None:
            school_unit_id = draft.id_for("school-unit")
            inputs.append(
                {
                    "type": coding(TASK_SYSTEM, NEW_SCHOOL_UNIT_INPUT),
                    "valueReference": {"reference": urn(school_unit_id)},
                }
            )
            draft.supporting.append(
                residence_organisation(
                    resource_id=school_unit_id,
                    identifier={"system": SCHOOL_UNIT_SYSTEM, "value": event.school_unit_code},
                    security=draft.security,
                )
            )
        if isinstance(event, social.PlacementStarted) and event.acute:
            due = event.start + dt.timedelta(days=ACUTE_PLANNING_DAYS)
    basis = [
        coding(PLACEMENT_SYSTEM, str(event.legal_basis)),
        *(
            [coding(PLACEMENT_SYSTEM, str(event.form))]
            if not isinstance(event, social.PlacementEnded)
            else []
        ),
    ]
    for agency in event.notify:
        draft.add_task(
            code=TaskCode.PLACEMENT_NOTICE,
            step=step,
            owner=agency_identifier(agency),
            requester=routing_address(f"{AgencyKind.SOCIAL_SERVICES}@{event.placing_municipality}"),
            reason={"coding": [c["coding"][0] for c in basis]},
            due=due,
            inputs=inputs,
        )
    return [draft.intent()]


def translate_hidden_residence(
    envelope: Envelope, event: social.HiddenResidenceDecided | social.HiddenResidenceLifted
) -> list[Intent]:
    """LVU 14 §: each named care unit blocks (or, once lifted, resumes) the guardians' record access.

    A Flag on the child carries the decision: ``active`` from ``validFrom``, ``inactive`` once lifted.
    """
    decided = isinstance(event, social.HiddenResidenceDecided)
    draft = Draft(
        envelope,
        event.child,
        EventCode.HIDDEN_RESIDENCE_DECIDED if decided else EventCode.HIDDEN_RESIDENCE_LIFTED,
        hidden_residence=True,
    )
    flag_id = draft.id_for("flag")
    draft.supporting.append(
        hidden_residence_flag(
            decision_id=event.decision_id,
            resource_id=flag_id,
            patient_ref=draft.patient_ref,
            start=event.valid_from,
            end=event.valid_to if isinstance(event, social.HiddenResidenceDecided) else event.at,
            active=decided,
            security=draft.security,
        )
    )
    for agency in event.notify:
        draft.add_task(
            code=TaskCode.BLOCK_GUARDIAN_ACCESS if decided else TaskCode.RESUME_GUARDIAN_ACCESS,
            step=ProcessStep.GUARDIAN_ACCESS_BLOCKED if decided else ProcessStep.GUARDIAN_ACCESS_RESUMED,
            owner=agency_identifier(agency),
            requester=orgnr(event.organisation_number),
            focus=urn(flag_id),
        )
    return [draft.intent()]


def translate_hidden_residence_not_needed(
    envelope: Envelope, event: social.HiddenResidenceNotNeeded
) -> list[Intent]:
    """The answer "not hidden", for the registry (no Task: nothing is delivered).

    An ``inactive`` hidden-residence Flag whose period starts and ends at the decision: never in force.
    """
    draft = Draft(envelope, event.child, EventCode.HIDDEN_RESIDENCE_NOT_NEEDED)
    draft.focus.append(
        hidden_residence_flag(
            decision_id=event.decision_id,
            resource_id=draft.id_for("flag"),
            patient_ref=draft.patient_ref,
            start=event.at,
            end=event.at,
            active=False,
            security=draft.security,
        )
    )
    return [draft.intent()]


def translate_identity_protection_ended(
    envelope: Envelope, event: social.IdentityProtectionEnded
) -> list[Intent]:
    """The end of a protected identity, for the registry (no Task: nothing is delivered).

    An ``inactive`` Flag ``protected-identity`` ending at ``at``; the Patient names only this identity.
    """
    draft = Draft(envelope, event.child, EventCode.IDENTITY_PROTECTION_ENDED)
    draft.focus.append(
        validated(
            Flag,
            {
                "resourceType": "Flag",
                "id": draft.id_for("flag"),
                "identifier": [{"system": DECISION_ID_SYSTEM, "value": event.decision_id}],
                "status": "inactive",
                "code": {
                    "coding": [{"system": PROTECTION_SYSTEM, "code": PROTECTED_IDENTITY}],
                    "text": "Skyddad identitet har upphört",
                },
                "subject": {"reference": draft.patient_ref},
                "period": {"end": event.at.isoformat()},
            },
        )
    )
    return [draft.intent()]


def translate_residence_released(envelope: Envelope, event: social.ResidenceReleased) -> list[Intent]:
    """A release of one message's residence data, for the registry (no Task: nothing is delivered).

    The released message's id is made as the adapters make every message id: from the source system and
    the event id, so the release names exactly the message that event becomes.
    """
    draft = Draft(envelope, event.child, EventCode.RESIDENCE_RELEASED)
    draft.focus.append(
        residence_release(
            resource_id=draft.id_for("release"),
            release_id=event.release_id,
            patient_ref=draft.patient_ref,
            message_id=deterministic_id(envelope.source, event.event_id),
            recipients=[agency_identifier(agency) for agency in event.recipients],
            released_by=event.released_by,
            security=draft.security,
        )
    )
    return [draft.intent()]


def translate_health_exam_requested(envelope: Envelope, event: social.HealthExamRequested) -> list[Intent]:
    """Lag (2017:209): two requests, each a Task + ServiceRequest, to health care and to dental care.

    Both carry the same process id (``Task.groupIdentifier``, ``ServiceRequest.requisition``). A unit not
    named is a routing address near the municipality where the child lives, when the event names it (a
    child placed in another county is examined by that region); the municipality travels nowhere else.
    """
    draft = Draft(envelope, event.child, EventCode.HEALTH_EXAM_REQUESTED)
    near = f"@{event.residence_municipality}" if event.residence_municipality else ""
    health = (
        agency_identifier(event.health_care)
        if event.health_care
        else routing_address(f"{AgencyKind.PRIMARY_CARE}{near}")
    )
    dental = (
        agency_identifier(event.dental_care)
        if event.dental_care
        else routing_address(f"{AgencyKind.DENTAL}{near}")
    )
    for code, owner in ((TaskCode.HEALTH_EXAMINATION, health), (TaskCode.DENTAL_EXAMINATION, dental)):
        draft.add_task(
            code=code,
            step=ProcessStep.EXAM_REQUESTED,
            owner=owner,
            requester=orgnr(event.organisation_number),
            request=True,
        )
    return [draft.intent()]


def translate_equivalent_health_exam_exists(
    envelope: Envelope, event: social.EquivalentHealthExamExists
) -> list[Intent]:
    """Social services' assessment that an equivalent examination exists, for process state and ledger.

    No Task, nothing delivered: a ``Basic`` (``equivalent-examination``) authored by the professional who
    assessed it, sent by the placing social services (``MessageHeader.sender``). The router closes the
    reminder of the child's placement waiting for its 2017:209 request, or refuses the event.
    """
    draft = Draft(
        envelope,
        event.child,
        EventCode.EQUIVALENT_HEALTH_EXAM_EXISTS,
        sender=orgnr(event.organisation_number),
    )
    assessment: dict[str, Any] = {
        "resourceType": "Basic",
        "id": draft.id_for("equivalent-examination"),
        "code": {
            "coding": [{"system": STATEMENT_SYSTEM, "code": EQUIVALENT_EXAMINATION}],
            "text": "Likvärdig hälsoundersökning finns (lag 2017:209)",
        },
        "subject": {"reference": draft.patient_ref},
        "created": event.examined_on.isoformat(),
        "author": {
            "type": "Practitioner",
            "identifier": {"system": CASE_SYSTEM_USER_SYSTEM, "value": event.assessed_by},
        },
    }
    if draft.security:
        assessment["meta"] = meta(security=draft.security)
    draft.focus.append(validated(Basic, assessment))
    return [draft.intent()]


def translate_lvu32_exam_ordered(envelope: Envelope, event: social.Lvu32ExamOrdered) -> list[Intent]:
    """LVU § 32: a medical exam order, due within four weeks (``Task.restriction.period.end``)."""
    draft = Draft(envelope, event.child, EventCode.LVU32_EXAM_ORDERED)
    draft.add_task(
        code=TaskCode.LVU32_EXAMINATION,
        step=ProcessStep.EXAM_REQUESTED,
        owner=agency_identifier(event.performer)
        if event.performer
        else routing_address(AgencyKind.PRIMARY_CARE),
        requester=orgnr(event.organisation_number),
        request=True,
        due=event.due,
    )
    return [draft.intent()]


def translate_suicide_risk_assessment(
    envelope: Envelope, event: social.SuicideRiskAssessmentRequested
) -> list[Intent]:
    """Before a placement: BUP is asked for a suicide-risk assessment."""
    draft = Draft(envelope, event.child, EventCode.SUICIDE_RISK_ASSESSMENT_REQUESTED)
    draft.add_task(
        code=TaskCode.SUICIDE_RISK_ASSESSMENT,
        step=ProcessStep.ASSESSMENT_REQUESTED,
        owner=agency_identifier(event.performer) if event.performer else routing_address(AgencyKind.BUP),
        requester=orgnr(event.organisation_number),
        request=True,
        inputs=_assessment(event.secrecy_assessment),
    )
    return [draft.intent()]


def translate_investigation_info_requested(
    envelope: Envelope, event: social.InvestigationInfoRequested
) -> list[Intent]:
    """An investigation's request for records: one Task per named recipient (no consent needed)."""
    draft = Draft(envelope, event.child, EventCode.INVESTIGATION_INFO_REQUESTED)
    for recipient in event.recipients:
        draft.add_task(
            code=TaskCode.PROVIDE_INFORMATION,
            step=ProcessStep.INFORMATION_REQUESTED,
            owner=agency_identifier(recipient),
            requester=orgnr(event.organisation_number),
            due=event.answer_by,
        )
    return [draft.intent()]


def translate_consultation_requested(envelope: Envelope, event: social.ConsultationRequested) -> list[Intent]:
    """A consultation of the child's current care contacts: one Task per care contact (no consent needed)."""
    draft = Draft(envelope, event.child, EventCode.CONSULTATION_REQUESTED)
    for care_contact in event.care_contacts:
        draft.add_task(
            code=TaskCode.CONSULTATION,
            step=ProcessStep.CONSULTATION_REQUESTED,
            owner=hsa(care_contact),
            requester=orgnr(event.organisation_number),
            due=event.answer_by,
        )
    return [draft.intent()]


def translate_kontaktcenter_referral(envelope: Envelope, event: social.KontaktcenterReferral) -> list[Intent]:
    """Social services' referral to Kontaktcenter, after the guardians' consent."""
    return kontaktcenter_referral(
        envelope,
        event.child,
        requester=orgnr(event.organisation_number),
        reason=event.reason,
        consent_id=event.consent_id,
    )


def translate_consent_recorded(envelope: Envelope, event: social.ConsentRecorded) -> list[Intent]:
    """A consent for the registry: the message focuses on a ``Consent`` (no Task: nothing is delivered)."""
    draft = Draft(envelope, event.child, EventCode.CONSENT_RECORDED)
    draft.focus.append(
        consent(
            consent_id=event.consent_id,
            resource_id=draft.id_for("consent"),
            patient_ref=draft.patient_ref,
            purpose=str(event.purpose),
            agency_kinds=[str(kind) for kind in event.agency_kinds],
            guardians=event.guardians,
            valid_from=event.valid_from,
            valid_to=event.valid_to,
            recorded=envelope.time,
            security=draft.security,
            maturity_assessed_by=event.maturity_assessed_by,
            organisations=[
                (identifier["system"], identifier["value"])
                for identifier in map(agency_identifier, event.organisations)
            ],
            process_id=event.process_id,
        )
    )
    return [draft.intent()]


def translate_child_objected(envelope: Envelope, event: social.ChildObjected) -> list[Intent]:
    """The child's objection for the registry: a ``Consent`` with ``provision.type`` deny, by the child."""
    draft = Draft(envelope, event.child, EventCode.CHILD_OBJECTED)
    draft.focus.append(
        consent(
            consent_id=event.objection_id,
            resource_id=draft.id_for("objection"),
            patient_ref=draft.patient_ref,
            purpose=str(event.purpose),
            agency_kinds=[str(kind) for kind in event.agency_kinds],
            guardians=(),
            valid_from=event.valid_from,
            valid_to=event.valid_to,
            recorded=envelope.time,
            security=draft.security,
            maturity_assessed_by=event.assessed_by,
            objection=True,
        )
    )
    return [draft.intent()]


def translate_guardian_secrecy_decided(
    envelope: Envelope, event: social.GuardianSecrecyDecided
) -> list[Intent]:
    """Secrecy against the guardians, for the registry: a ``Flag`` ``secret-from-guardians`` on the child."""
    draft = Draft(envelope, event.child, EventCode.GUARDIAN_SECRECY_DECIDED)
    draft.focus.append(
        hidden_residence_flag(
            decision_id=event.decision_id,
            resource_id=draft.id_for("flag"),
            patient_ref=draft.patient_ref,
            start=event.valid_from,
            end=event.valid_to,
            active=True,
            security=draft.security,
            code=SECRET_FROM_GUARDIANS,
            text=f"Sekretess mot vårdnadshavarna (OSL 12:3), bedömd av {event.assessed_by}",
        )
    )
    return [draft.intent()]


def translate_guardian_secrecy_lifted(
    envelope: Envelope, event: social.GuardianSecrecyLifted
) -> list[Intent]:
    """The end of secrecy against the guardians, for the registry (no Task: nothing is delivered).

    An ``inactive`` Flag ``secret-from-guardians`` naming the decision, its period ending at ``at``.
    """
    draft = Draft(envelope, event.child, EventCode.GUARDIAN_SECRECY_LIFTED)
    draft.focus.append(
        hidden_residence_flag(
            decision_id=event.decision_id,
            resource_id=draft.id_for("flag"),
            patient_ref=draft.patient_ref,
            start=None,
            end=event.at,
            active=False,
            security=draft.security,
            code=SECRET_FROM_GUARDIANS,
            text=f"Sekretess mot vårdnadshavarna (OSL 12:3) upphävd, bedömd av {event.assessed_by}",
        )
    )
    return [draft.intent()]


def translate_consent_withdrawn(envelope: Envelope, event: social.ConsentWithdrawn) -> list[Intent]:
    """A withdrawal for the registry: an ``inactive`` Consent from ``at`` on."""
    draft = Draft(envelope, event.child, EventCode.CONSENT_WITHDRAWN)
    draft.focus.append(
        consent_withdrawal(
            consent_id=event.consent_id,
            resource_id=draft.id_for("consent"),
            patient_ref=draft.patient_ref,
            at=event.at,
            security=draft.security,
            withdrawn_by=None if event.withdrawn_by is None else event.guardians,
        )
    )
    return [draft.intent()]


def translate_custody_updated(envelope: Envelope, event: social.CustodyUpdated) -> list[Intent]:
    """Custody for the registry: the guardians as ``RelatedPerson``, the custody form on the Patient."""
    draft = Draft(envelope, event.child, EventCode.CUSTODY_UPDATED, custody=str(event.custody))
    for number in event.guardians:
        draft.focus.append(
            guardian(
                person_number=number,
                resource_id=draft.id_for("guardian", number),
                patient_ref=draft.patient_ref,
                since=event.at,
                security=draft.security,
            )
        )
    return [draft.intent()]


def translate_task_answered(envelope: Envelope, event: social.TaskAnswered) -> list[Intent]:
    """Social services' Task status, as a Task for the sending agency to take note of."""
    return task_status_notice(
        envelope,
        event.child,
        process_id=event.process_id,
        task_id=event.task_id,
        status=event.status,
        answer_to=event.answer_to,
        answerer=agency_identifier(event.answerer),
    )


def translate_suicide_risk_reported(envelope: Envelope, event: social.SuicideRiskReported) -> list[Intent]:
    """Acute suicide risk: urgent Tasks to social services where the child lives and to BUP."""
    return suicide_risk_alert(envelope, event, requester=orgnr(event.organisation_number))


def translate_concern_reported(envelope: Envelope, event: social.ConcernReported) -> list[Intent]:
    """Social services' report of concern to social services of the municipality where the child lives."""
    return concern_report(envelope, event, requester=orgnr(event.organisation_number))
