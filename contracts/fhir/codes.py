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

TASK_ID_SYSTEM = f"{_BASE}/NamingSystem/task-id"
"""``Task.identifier``: the Task's id as sambus made it, kept when a receiver stores the Task under an id
of its own; an answer names the Task it answers in this system."""

MESSAGE_ID_SYSTEM = f"{_BASE}/NamingSystem/message-id"
"""The id of a message sambus made (``Bundle.id``), where a notice cannot name the event it was made from."""

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
    SIP_MEETING_HELD = "sip-meeting-held"
    """The SIP meeting took place (scheduling it is not holding it: the follow-up counts held meetings)."""
    SIP_PLAN_ESTABLISHED = "sip-plan-established"
    SIP_LEAD_COORDINATOR_CHANGED = "sip-lead-coordinator-changed"
    """Another agency or person becomes the SIP's lead coordinator (huvudansvarig)."""
    SIP_FOLLOWED_UP = "sip-followed-up"
    SIP_CLOSED = "sip-closed"
    HANDOVER_MEETING_CALLED = "handover-meeting-called"
    """A joint hand-over meeting before the young person turns 18: the move to adult care."""
    # Placement outside the home (SoL / LVU)
    PLACEMENT_STARTED = "placement-started"
    PLACEMENT_CHANGED = "placement-changed"
    PLACEMENT_ENDED = "placement-ended"
    SUICIDE_RISK_ASSESSMENT_REQUESTED = "suicide-risk-assessment-requested"
    SUICIDE_RISK_REPORTED = "suicide-risk-reported"
    """Acute suicide risk seen by any party: an urgent alert to social services and BUP, answered in hours."""
    # Hidden residence (LVU 14 §) and what the EHR is told
    HIDDEN_RESIDENCE_DECIDED = "hidden-residence-decided"
    HIDDEN_RESIDENCE_LIFTED = "hidden-residence-lifted"
    HIDDEN_RESIDENCE_NOT_NEEDED = "hidden-residence-not-needed"
    """Social services considered hiding a placed child's residence and decided it is not needed."""
    GUARDIAN_ACCESS_BLOCKED = "guardian-access-blocked"
    GUARDIAN_ACCESS_RESUMED = "guardian-access-resumed"
    # Health examinations of placed children
    HEALTH_EXAM_REQUESTED = "health-exam-requested"
    """Lag (2017:209): one request to health care and one to dental care."""
    HEALTH_EXAM_COMPLETED = "health-exam-completed"
    EQUIVALENT_HEALTH_EXAM_EXISTS = "equivalent-health-exam-exists"
    """Social services assessed that an equivalent examination exists: no 2017:209 request is owed."""
    LVU32_EXAM_ORDERED = "lvu32-exam-ordered"
    LVU32_EXAM_COMPLETED = "lvu32-exam-completed"
    NEWLY_ARRIVED_HEALTH_REFERRAL = "newly-arrived-health-referral"
    """Student health refers a newly arrived (asylum-seeking) child who was not health-examined."""
    # Information, referrals, reports
    INVESTIGATION_INFO_REQUESTED = "investigation-info-requested"
    INVESTIGATION_INFO_PROVIDED = "investigation-info-provided"
    """Health or dental care answers a social-services investigation (or consultation) with records."""
    CONSULTATION_REQUESTED = "consultation-requested"
    """Social services consults the child's current care contacts during its investigation: a combined
    assessment of the child's health (Västerbotten's "Konsultation och hälsoundersökningar")."""
    CONSULTATION_ANSWERED = "consultation-answered"
    """A care contact answers a consultation with its combined assessment of the child's health."""
    KONTAKTCENTER_REFERRAL = "kontaktcenter-referral"
    CONCERN_REPORTED = "concern-reported"
    """Orosanmälan: a report of concern to social services (no consent needed)."""
    # Consent and custody (feed the consent registry)
    CONSENT_RECORDED = "consent-recorded"
    CONSENT_WITHDRAWN = "consent-withdrawn"
    CUSTODY_UPDATED = "custody-updated"
    CARE_CONTACT_STATED = "care-contact-stated"
    """A care unit states whether it has an active care contact with the child (BUP, habilitation: SIP)."""
    IDENTITY_PROTECTION_ENDED = "identity-protection-ended"
    """Social services records that the child's protected identity ended: later messages are not redacted."""
    RESIDENCE_RELEASED = "residence-released"
    """Social services releases one message's residence data about a protected child to named recipients."""
    CHILD_OBJECTED = "child-objected"
    """The child objects to sharing (OSL 12:3): no guardian's consent counts for what it covers."""
    GUARDIAN_SECRECY_DECIDED = "guardian-secrecy-decided"
    """Secrecy applies against the child's guardians (OSL 12:3): guardian-facing recipients get no content."""
    GUARDIAN_SECRECY_LIFTED = "guardian-secrecy-lifted"
    """Secrecy against the guardians ended before its ``validTo``: later messages carry their content."""
    # Answers
    TASK_STATUS_CHANGED = "task-status-changed"
    # Made by sambus itself
    DELIVERY_DENIED = "delivery-denied"
    DELIVERY_WAITING = "delivery-waiting"
    """A message for one recipient waits (parked): the initiator is told at once what it waits for."""
    DELIVERY_RELEASED = "delivery-released"
    """A message that waited was released to its recipient (what it waited for came)."""
    PARKED_EXPIRED = "parked-expired"
    DEADLINE_REMINDER = "deadline-reminder"
    DEADLINE_ESCALATION = "deadline-escalation"
    TRANSITION_TO_ADULTHOOD = "transition-to-adulthood"


class TaskCode(StrEnum):
    """Codes of :data:`TASK_SYSTEM`: what the owner of a Task is asked to do.

    Every message sambus delivers focuses on one Task per recipient, owned by that recipient. A recipient has
    one Task per process (:func:`sambus.contracts.fhir.task.task_id_for`): each later message of the process
    carries that same Task, updated (``status``, ``businessStatus``, ``output``), under the same code. A Task
    that only reports something (a placement) asks its owner to take note of it.
    """

    SIP_PARTICIPATION = "sip-participation"
    """Take part in a SIP: answer the invitation, attend the meeting, carry out one's part of the plan (the
    CarePlan, ``Task.focus``), follow it up. One Task per participant from invitation to closure."""
    SIP_CONVENE = "sip-convene"
    """A school without Cosmic Link asks social services (or health care) to convene its SIP; the invitees and
    the school are ``Task.input`` (``sip-invitee``, ``sip-participant``)."""
    SIP_FOLLOW_UP = "sip-follow-up"
    """The SIP plan's follow-up (a ``CarePlan.activity``)."""
    HANDOVER_MEETING = "handover-meeting"
    """Take part in the hand-over meeting to adult care (due on the meeting day); answer to the caller."""
    PLACEMENT_NOTICE = "placement-notice"
    """Take note of a placement outside the home (start, change or end)."""
    SUICIDE_RISK_ASSESSMENT = "suicide-risk-assessment"
    ACT_ON_SUICIDE_RISK = "act-on-suicide-risk"
    """Urgent: act on an acute suicide risk and acknowledge within hours (``Task.priority`` ``stat``)."""
    BLOCK_GUARDIAN_ACCESS = "block-guardian-access"
    """Hidden residence (LVU 14 §): block the guardians' access to the child's record."""
    RESUME_GUARDIAN_ACCESS = "resume-guardian-access"
    HEALTH_EXAMINATION = "health-examination"
    """Lag (2017:209): examine mental and physical health; completed with the statement as output."""
    DENTAL_EXAMINATION = "dental-examination"
    """Lag (2017:209): examine oral health; completed with the statement as output."""
    LVU32_EXAMINATION = "lvu32-examination"
    """LVU § 32: a medical examination; completed with the report as output."""
    NEWLY_ARRIVED_HEALTH_EXAMINATION = "newly-arrived-health-examination"
    PROVIDE_INFORMATION = "provide-information"
    """Answer a social-services investigation with the child's records (completed with them as output)."""
    CONSULTATION = "consultation"
    """Give social services' investigation a combined assessment of the child's health, as a current care
    contact (completed with the assessment as output)."""
    KONTAKTCENTER_REFERRAL = "kontaktcenter-referral"
    ASSESS_CONCERN = "assess-concern"
    """Orosanmälan: assess a report of concern."""


class ProcessStep(StrEnum):
    """Codes of :data:`PROCESS_STEP_SYSTEM`, carried in ``Task.businessStatus``."""

    SIP_INVITED = "sip-invited"
    SIP_ACCEPTED = "sip-accepted"
    SIP_DECLINED = "sip-declined"
    SIP_MEETING_SCHEDULED = "sip-meeting-scheduled"
    SIP_MEETING_HELD = "sip-meeting-held"
    SIP_PLAN_ESTABLISHED = "sip-plan-established"
    SIP_LEAD_COORDINATOR_CHANGED = "sip-lead-coordinator-changed"
    SIP_FOLLOWED_UP = "sip-followed-up"
    SIP_CLOSED = "sip-closed"
    HANDOVER_MEETING_CALLED = "handover-meeting-called"
    PLACEMENT_STARTED = "placement-started"
    PLACEMENT_CHANGED = "placement-changed"
    PLACEMENT_ENDED = "placement-ended"
    ASSESSMENT_REQUESTED = "assessment-requested"
    GUARDIAN_ACCESS_BLOCKED = "guardian-access-blocked"
    GUARDIAN_ACCESS_RESUMED = "guardian-access-resumed"
    EXAM_REQUESTED = "exam-requested"
    EXAM_COMPLETED = "exam-completed"
    INFORMATION_REQUESTED = "information-requested"
    INFORMATION_PROVIDED = "information-provided"
    CONSULTATION_REQUESTED = "consultation-requested"
    CONSULTATION_ANSWERED = "consultation-answered"
    REFERRED = "referred"
    CONCERN_REPORTED = "concern-reported"
    SUICIDE_RISK_REPORTED = "suicide-risk-reported"
    TASK_ACCEPTED = "task-accepted"
    TASK_REJECTED = "task-rejected"
    TASK_IN_PROGRESS = "task-in-progress"
    TASK_COMPLETED = "task-completed"


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
"""Codes of :class:`sambus.contracts.agencies.AgencyKind`, e.g. in ``Task.performerType``."""

DATA_CATEGORY_SYSTEM = f"{_BASE}/CodeSystem/sambus-data-category"
"""``meta.tag`` on a resource that reveals something sensitive; code ``residence`` marks a resource that
reveals where the child lives (placement home, residence municipality, new school unit, nearby care unit).

Residence-revealing data appears only as ``Patient.address`` or in a whole resource tagged this way, so
redaction can remove it by known paths.
"""

RESIDENCE_TAG = "residence"

PURPOSE_SYSTEM = f"{_BASE}/CodeSystem/sambus-purpose"
"""Codes of :class:`sambus.contracts.agencies.Purpose`, e.g. in ``Consent.category``."""

PROTECTION_SYSTEM = f"{_BASE}/CodeSystem/sambus-protection"
"""``Flag.code`` for protection decisions: ``hidden-residence`` (LVU 14 §); in ``meta.security``,
``fingeradePersonuppgifter`` (the third level of protected identity, which HL7 Sweden's labels lack)."""

PROTECTED_IDENTITY = "protected-identity"
"""Code of :data:`PROTECTION_SYSTEM`: ``Flag.code`` of a protected identity (any level) that ended."""

FINGERADE_PERSONUPPGIFTER = "fingeradePersonuppgifter"
"""Code of :data:`PROTECTION_SYSTEM`: the child lives under fictitious personal data (a new identity)."""

ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
"""HL7 v3 ActCode: refrain policies in ``meta.security``."""

NO_DISCLOSURE_TO_GUARDIANS = "NOPAT"
"""v3 ActCode ``NOPAT``: not to be disclosed to the patient, family or caregivers (verify: the label set a
region's EHR maps to its guardian-access block). Carried while a hidden-residence decision is in force."""

NO_RELINKING = "NORELINK"
"""v3 ActCode ``NORELINK``: never link to another identity of the subject (fingerade personuppgifter)."""

PROCESS_ID_SYSTEM = f"{_BASE}/NamingSystem/process-id"
"""``Task.groupIdentifier``: the process instance every message of one process belongs to.

The first message of a process uses its own message id; follow-up events name it as ``processId``.
"""

LEAD_COORDINATOR_EXTENSION = f"{_BASE}/StructureDefinition/sip-lead-coordinator"
"""Extension on ``CarePlan``: the agency that is *huvudansvarig* (lead coordinator) of a SIP."""

LEAD_COORDINATOR_PERSON_EXTENSION = f"{_BASE}/StructureDefinition/sip-lead-coordinator-person"
"""Extension on ``CarePlan``: the person (a ``PractitionerRole``: role, HSA-id or user id, agency) who is
*huvudansvarig*."""

STAFF_ROLE_SYSTEM = f"{_BASE}/CodeSystem/sambus-staff-role"
"""``PractitionerRole.code``: a professional's role (a SIP's lead coordinator, who reports concern)."""

STAFF_USER_ID_SYSTEM = f"{_BASE}/NamingSystem/staff-user-id"
"""A professional's user id in the agency's own system (``<organisation id>|<user id>``), where no HSA-id."""

CUSTODY_EXTENSION = f"{_BASE}/StructureDefinition/custody"
"""Extension on ``Patient`` in a custody-updated message: ``joint`` or ``sole`` custody."""

CONSENT_GIVEN_BY_SYSTEM = f"{_BASE}/CodeSystem/sambus-consent-given-by"
"""``Consent.performer`` role: whether the guardians or the child consented."""

PLACEMENT_SYSTEM = f"{_BASE}/CodeSystem/sambus-placement"
"""Codes for placements: legal basis (``sol``, ``lvu``) and form (``family_home``, ``hvb``, ...)."""

STATEMENT_SYSTEM = f"{_BASE}/CodeSystem/sambus-statement"
"""Kinds of examination statements: ``mental_physical`` (health care) and ``oral`` (dental care)."""

CONCERN_SYSTEM = f"{_BASE}/CodeSystem/sambus-concern"
"""Categories of a report of concern (orosanmälan)."""

CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
"""``meta.security``: ``R`` restricted, ``V`` very restricted."""

SIP_CLOSURE_SYSTEM = f"{_BASE}/CodeSystem/sambus-sip-closure"
"""``Task.reasonCode`` of a SIP closure: why the SIP was closed."""

TASK_INPUT_SYSTEM = f"{_BASE}/CodeSystem/sambus-task-input"
"""``Task.input.type`` the router reads from an inbound message (see :data:`ACTIVE_CARE_CONTACT`)."""

ACTIVE_CARE_CONTACT = "active-care-contact"
"""Code of :data:`TASK_INPUT_SYSTEM`: the care unit the child has an active contact with."""

HIDDEN_RESIDENCE_ANSWER = "hidden-residence-answer"
"""Code of :data:`TASK_INPUT_SYSTEM`: on an LVU placement notice, social services' answer (``valueBoolean``)
to whether the child's residence is hidden from the guardians (LVU 14 § second paragraph point 2)."""

NEW_SCHOOL_UNIT_INPUT = "new-school-unit"
"""``Task.input.type`` code (:data:`TASK_SYSTEM`) of a placed child's new school unit."""

CONCERN_CATEGORY_INPUT = "concern-category"
"""``Task.input.type`` code (:data:`TASK_SYSTEM`): one category (:data:`CONCERN_SYSTEM`) of a report of
concern."""

REPORTER_INPUT = "reporter"
"""``Task.input.type`` code (:data:`TASK_SYSTEM`): who reports concern (a ``PractitionerRole``)."""

SIP_INVITEE_INPUT = "sip-invitee"
"""``Task.input.type`` code (:data:`TASK_SYSTEM`): an agency a SIP relay is asked to invite."""

SIP_PARTICIPANT_INPUT = "sip-participant"
"""``Task.input.type`` code (:data:`TASK_SYSTEM`): the school, taking part in the SIP it initiated."""

SWEDISH_SECURITY_SYSTEM = "http://hl7.se/fhir/ig/base/CodeSystem/SecurityLabel"
"""HL7 Sweden base (basprofiler-r4) ``SecurityLabel``: ``sekretessmarkering`` and ``skyddadFolkbokforing``."""

SECRECY_ASSESSMENT_SYSTEM = f"{_BASE}/CodeSystem/sambus-secrecy-assessment"
"""``Task.input.type`` codes of a professional's assessment that a "får"-provision allows a disclosure:
``provision`` (``valueString``, e.g. ``OSL 26:9``) and ``assessed-by`` (``valueString``, the assessor's user
id in the sending system)."""

EQUIVALENT_EXAMINATION = "equivalent-examination"
"""``Basic.code`` in :data:`STATEMENT_SYSTEM`: social services' assessment that an earlier examination of the
placed child is equivalent to the 2017:209 examination (no request is owed)."""
