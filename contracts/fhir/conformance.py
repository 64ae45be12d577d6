"""sambus's FHIR conformance resources, made from the code's own enums and constants so they cannot drift.

CodeSystems and their ValueSets, NamingSystems, every extension sambus emits, profiles of the focal resources
and one MessageDefinition per event code. :func:`resources` renders them; ``sambus contracts export`` writes
them under ``contracts/schemas/fhir/`` beside the JSON Schemas and ``--check`` fails when a checked-in copy
drifts. The FHIR validation tests check every golden and every delivered Bundle against them (and HL7
Sweden's base profiles, vendored in ``contracts/fhir/vendor/``) with HAPI FHIR's validator.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.events._common import StaffRole
from sambus.contracts.events.ehr import StatementKind
from sambus.contracts.events.school import ConcernCategory, SipReason
from sambus.contracts.events.sip import ActionCategory, ClosureReason
from sambus.contracts.events.social import LegalBasis, PlacementForm
from sambus.contracts.fhir.assessment import ASSESSED_BY, PROVISION
from sambus.contracts.fhir.careplan import ACTION_SYSTEM
from sambus.contracts.fhir.codes import (
    ACTIVE_CARE_CONTACT,
    AGENCY_KIND_SYSTEM,
    CONCERN_CATEGORY_INPUT,
    CONCERN_SYSTEM,
    CONSENT_GIVEN_BY_SYSTEM,
    CUSTODY_EXTENSION,
    DATA_CATEGORY_SYSTEM,
    EQUIVALENT_EXAMINATION,
    EVENT_SYSTEM,
    FINGERADE_PERSONUPPGIFTER,
    HIDDEN_RESIDENCE_ANSWER,
    LEAD_COORDINATOR_EXTENSION,
    LEAD_COORDINATOR_PERSON_EXTENSION,
    MESSAGE_ID_SYSTEM,
    NEW_SCHOOL_UNIT_INPUT,
    PLACEMENT_SYSTEM,
    PROCESS_ID_SYSTEM,
    PROCESS_STEP_SYSTEM,
    PROTECTED_IDENTITY,
    PROTECTION_SYSTEM,
    PURPOSE_SYSTEM,
    REPORTER_INPUT,
    RESIDENCE_TAG,
    ROUTING_ADDRESS_SYSTEM,
    SCHOOL_UNIT_SYSTEM,
    SECRECY_ASSESSMENT_SYSTEM,
    SIP_CLOSURE_SYSTEM,
    SIP_INVITEE_INPUT,
    SIP_PARTICIPANT_INPUT,
    SIP_REASON_SYSTEM,
    SOURCE_EVENT_SYSTEM,
    STAFF_ROLE_SYSTEM,
    STAFF_USER_ID_SYSTEM,
    STATEMENT_SYSTEM,
    TASK_ID_SYSTEM,
    TASK_INPUT_SYSTEM,
    TASK_SYSTEM,
    EventCode,
    ProcessStep,
    TaskCode,
)
from sambus.contracts.fhir.consent import CONSENT_ID_SYSTEM, CONSENT_PROCESS_EXTENSION, MATURITY_EXTENSION
from sambus.contracts.fhir.flag import DECISION_ID_SYSTEM, HIDDEN_RESIDENCE, SECRET_FROM_GUARDIANS
from sambus.contracts.fhir.release import (
    RELEASED_MESSAGE_EXTENSION,
    RELEASED_TO_EXTENSION,
    RESIDENCE_RELEASE,
)
from sambus.contracts.fhir.task import CONSENT_INPUT
from sambus.contracts.registry_facts import Custody, GivenBy

BASE = "https://sambus.se/fhir"
VERSION = "1.0.0"
DATE = "2026-11-29"
"""The date every resource states; bump it with :data:`VERSION` when the contract changes."""

SE_BASE = "http://hl7.se/fhir/ig/base/StructureDefinition"
CUSTODY_SYSTEM = f"{BASE}/CodeSystem/sambus-custody"

_PUBLISHER = {
    "publisher": "sambus",
    "contact": [{"telecom": [{"system": "url", "value": "https://sambus.se"}]}],
}


def _codes(*enums: type[StrEnum] | Iterable[str]) -> list[str]:
    return [str(member) for enum in enums for member in enum]


@dataclass(frozen=True)
class Codes:
    """One of sambus's own CodeSystems (and the ValueSet of all its codes)."""

    url: str
    title: str
    description: str
    codes: Sequence[str]

    @property
    def id(self) -> str:
        """The resource id: the last path segment of the URL."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def value_set(self) -> str:
        """The canonical URL of the ValueSet of all codes."""
        return f"{BASE}/ValueSet/{self.id}"


CODE_SYSTEMS = (
    Codes(EVENT_SYSTEM, "sambus events", "What happened: MessageHeader.eventCoding.", _codes(EventCode)),
    Codes(
        TASK_SYSTEM,
        "sambus tasks",
        "What a Task's owner is asked to do (Task.code, ServiceRequest.code); also the SIP CarePlan category "
        "(`sip`) and Task input types (`consent`, `new-school-unit`, `sip-invitee`, `sip-participant`, "
        "`concern-category`, `reporter`).",
        [
            *_codes(TaskCode),
            "sip",
            CONSENT_INPUT,
            CONCERN_CATEGORY_INPUT,
            REPORTER_INPUT,
            NEW_SCHOOL_UNIT_INPUT,
            SIP_INVITEE_INPUT,
            SIP_PARTICIPANT_INPUT,
        ],
    ),
    Codes(
        PROCESS_STEP_SYSTEM,
        "sambus process steps",
        "Where a process stands: Task.businessStatus.",
        _codes(ProcessStep),
    ),
    Codes(AGENCY_KIND_SYSTEM, "sambus agency kinds", "What kind of agency a party is.", _codes(AgencyKind)),
    Codes(PURPOSE_SYSTEM, "sambus purposes", "What a consent covers: the purpose of use.", _codes(Purpose)),
    Codes(
        DATA_CATEGORY_SYSTEM,
        "sambus data categories",
        "meta.tag of a resource that reveals where the child lives.",
        [RESIDENCE_TAG],
    ),
    Codes(
        PROTECTION_SYSTEM,
        "sambus protection decisions",
        "Flag.code of a protection decision (LVU 14 §) or of a protected identity that ended; Basic.code "
        "of a named release of residence data; meta.security fingeradePersonuppgifter.",
        [
            HIDDEN_RESIDENCE,
            SECRET_FROM_GUARDIANS,
            RESIDENCE_RELEASE,
            PROTECTED_IDENTITY,
            FINGERADE_PERSONUPPGIFTER,
        ],
    ),
    Codes(
        CONSENT_GIVEN_BY_SYSTEM,
        "sambus consent givers",
        "Whether the guardians or the child consented.",
        _codes(GivenBy),
    ),
    Codes(
        CUSTODY_SYSTEM, "sambus custody", "Joint or sole custody (the custody extension).", _codes(Custody)
    ),
    Codes(
        PLACEMENT_SYSTEM,
        "sambus placements",
        "A placement's legal basis (SoL, LVU) and form.",
        _codes(LegalBasis, PlacementForm),
    ),
    Codes(
        STATEMENT_SYSTEM,
        "sambus examination statements",
        "Kinds of statements: examination statements, the LVU § 32 result, records for an investigation, a "
        "consultation's combined assessment of the child's health, social services' assessment that an "
        "earlier examination is equivalent to the 2017:209 examination.",
        [*_codes(StatementKind), "lvu32", "records", "combined-assessment", EQUIVALENT_EXAMINATION],
    ),
    Codes(
        CONCERN_SYSTEM,
        "sambus concern categories",
        "Categories of a report of concern (orosanmälan).",
        _codes(ConcernCategory),
    ),
    Codes(SIP_REASON_SYSTEM, "sambus SIP reasons", "Why a SIP is needed.", _codes(SipReason)),
    Codes(
        ACTION_SYSTEM,
        "sambus SIP actions",
        "The kind of action an agency takes on in a SIP.",
        _codes(ActionCategory),
    ),
    Codes(SIP_CLOSURE_SYSTEM, "sambus SIP closure reasons", "Why a SIP was closed.", _codes(ClosureReason)),
    Codes(
        STAFF_ROLE_SYSTEM,
        "sambus staff roles",
        "A professional's role (a SIP's lead coordinator, who reports concern): PractitionerRole.code.",
        _codes(StaffRole),
    ),
    Codes(
        SECRECY_ASSESSMENT_SYSTEM,
        "sambus secrecy assessments",
        "Task.input types of a professional's assessment that a provision allows a disclosure.",
        [PROVISION, ASSESSED_BY],
    ),
    Codes(
        TASK_INPUT_SYSTEM,
        "sambus Task inputs",
        "Task.input types the router reads.",
        [ACTIVE_CARE_CONTACT, HIDDEN_RESIDENCE_ANSWER],
    ),
)

NAMING_SYSTEMS = (
    (TASK_ID_SYSTEM, "task-id", "A Task's id as sambus made it; an answer names the Task it answers by it."),
    (MESSAGE_ID_SYSTEM, "message-id", "The id of a message sambus made (its Bundle.id)."),
    (
        SOURCE_EVENT_SYSTEM,
        "source-event",
        "The inbound event a message was made from: `<source>|<event id>`.",
    ),
    (PROCESS_ID_SYSTEM, "process-id", "The process instance every message of one process belongs to."),
    (
        ROUTING_ADDRESS_SYSTEM,
        "routing-address",
        "A recipient the router resolves in its directory: `<agency kind>` or `<agency kind>@<kommunkod>`.",
    ),
    (SCHOOL_UNIT_SYSTEM, "skolenhetskod", "A school unit's code in Skolverket's school unit register."),
    (CONSENT_ID_SYSTEM, "consent-id", "The sender's id of a consent: `<source system>|<consent id>`."),
    (DECISION_ID_SYSTEM, "protection-decision", "The id of a protection decision: `<source system>|<id>`."),
    (
        STAFF_USER_ID_SYSTEM,
        "staff-user-id",
        "A professional's user id in the agency's own system: `<organisation id>|<user id>`.",
    ),
)


def _meta(resource_type: str, resource_id: str, name: str, title: str, description: str) -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "id": resource_id,
        "url": f"{BASE}/{resource_type}/{resource_id}",
        "version": VERSION,
        "name": name,
        "title": title,
        "status": "active",
        "date": DATE,
        **_PUBLISHER,
        "description": description,
    }


def _name(resource_id: str) -> str:
    return "".join(part.capitalize() for part in resource_id.replace("_", "-").split("-"))


def code_system(codes: Codes) -> dict[str, Any]:
    """The CodeSystem: every code, content ``complete`` so that an unknown code is an error."""
    return {
        **_meta("CodeSystem", codes.id, _name(codes.id), codes.title, codes.description),
        "caseSensitive": True,
        "valueSet": codes.value_set,
        "content": "complete",
        "count": len(codes.codes),
        "concept": [{"code": code} for code in codes.codes],
    }


def value_set(codes: Codes) -> dict[str, Any]:
    """The ValueSet of all codes of one CodeSystem."""
    return {
        **_meta("ValueSet", codes.id, _name(codes.id), codes.title, f"All codes of {codes.url}."),
        "compose": {"include": [{"system": codes.url}]},
    }


def naming_system(url: str, resource_id: str, description: str) -> dict[str, Any]:
    """A NamingSystem of identifiers (R4 has no ``url``: the unique id is the system's URI)."""
    return {
        "resourceType": "NamingSystem",
        "id": resource_id,
        "name": _name(resource_id),
        "status": "active",
        "kind": "identifier",
        "date": DATE,
        **_PUBLISHER,
        "description": description,
        "uniqueId": [{"type": "uri", "value": url, "preferred": True}],
    }


def _element(path: str, **rules: Any) -> dict[str, Any]:  # noqa: ANN401 - FHIR element rules
    return {"id": path, "path": path, **rules}


def _required(value_set_url: str) -> dict[str, Any]:
    return {"binding": {"strength": "required", "valueSet": value_set_url}}


def _structure(
    *,
    resource_id: str,
    title: str,
    description: str,
    type_: str,
    base: str,
    elements: Sequence[dict[str, Any]],
    extension_context: str | None = None,
) -> dict[str, Any]:
    data = {
        **_meta("StructureDefinition", resource_id, _name(resource_id), title, description),
        "fhirVersion": "4.0.1",
        "kind": "complex-type" if type_ == "Extension" else "resource",
        "abstract": False,
        "type": type_,
        "baseDefinition": base,
        "derivation": "constraint",
        "differential": {"element": list(elements)},
    }
    if extension_context is not None:
        data["context"] = [{"type": "element", "expression": extension_context}]
    return data


def _extension(url: str, title: str, description: str, context: str, value: dict[str, Any]) -> dict[str, Any]:
    resource_id = url.rsplit("/", 1)[-1]
    return _structure(
        resource_id=resource_id,
        title=title,
        description=description,
        type_="Extension",
        base="http://hl7.org/fhir/StructureDefinition/Extension",
        extension_context=context,
        elements=[
            _element("Extension", short=title, definition=description),
            _element("Extension.extension", max="0"),
            _element("Extension.url", fixedUri=url),
            _element("Extension.value[x]", min=1, **value),
        ],
    )


def extensions() -> list[dict[str, Any]]:
    """Every extension sambus emits, so a validator checks each one's place and value type.

    Custody on Patient; a SIP lead coordinator (agency, person) on CarePlan; who assessed a child's maturity
    and the one process a consent is for, on Consent; the released message and its recipients on a
    residence release (Basic). ``tests/contract/test_fhir_validation.py`` checks that every extension URL in
    the golden Bundles and the walks' deliveries is declared here.
    """
    custody = next(c for c in CODE_SYSTEMS if c.url == CUSTODY_SYSTEM)
    return [
        _extension(
            CUSTODY_EXTENSION,
            "Custody",
            "Joint or sole custody of the child, in a custody-updated message.",
            "Patient",
            {"type": [{"code": "code"}], **_required(custody.value_set)},
        ),
        _extension(
            LEAD_COORDINATOR_EXTENSION,
            "SIP lead coordinator",
            "The agency that is huvudansvarig (lead coordinator) of a SIP.",
            "CarePlan",
            {
                "type": [
                    {
                        "code": "Reference",
                        "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Organization"],
                    }
                ]
            },
        ),
        _extension(
            LEAD_COORDINATOR_PERSON_EXTENSION,
            "SIP lead coordinator person",
            "The person who is huvudansvarig (lead coordinator) of a SIP: role, id and agency.",
            "CarePlan",
            {
                "type": [
                    {
                        "code": "Reference",
                        "targetProfile": ["http://hl7.org/fhir/StructureDefinition/PractitionerRole"],
                    }
                ]
            },
        ),
        _extension(
            MATURITY_EXTENSION,
            "Maturity assessed by",
            "On a child's own consent or objection: the professional who heard the child and assessed it "
            "mature enough (OSL 12:3, FB 6:11), as the case system's user id (no name).",
            "Consent",
            {"type": [{"code": "string"}]},
        ),
        _extension(
            CONSENT_PROCESS_EXTENSION,
            "Consent process",
            "The one process (Task.groupIdentifier) a consent is for; without it the consent covers every "
            "process of its purpose.",
            "Consent",
            {"type": [{"code": "Identifier"}]},
        ),
        _extension(
            RELEASED_MESSAGE_EXTENSION,
            "Released message",
            "On a residence release: the id of the one sambus message whose residence data is released.",
            "Basic",
            {"type": [{"code": "string"}]},
        ),
        _extension(
            RELEASED_TO_EXTENSION,
            "Released to",
            "On a residence release, once per recipient: an organisation that may have the residence data.",
            "Basic",
            {"type": [{"code": "Identifier"}]},
        ),
    ]


def _value_set_of(system: str) -> str:
    return next(c.value_set for c in CODE_SYSTEMS if c.url == system)


PROFILE_TASK = f"{BASE}/StructureDefinition/sambus-task"
PROFILE_SERVICE_REQUEST = f"{BASE}/StructureDefinition/sambus-service-request"
PROFILE_CONSENT = f"{BASE}/StructureDefinition/sambus-consent"
PROFILE_FLAG = f"{BASE}/StructureDefinition/sambus-hidden-residence-flag"
PROFILE_CAREPLAN = f"{BASE}/StructureDefinition/sambus-sip-careplan"
PROFILE_PATIENT = f"{BASE}/StructureDefinition/sambus-patient"
PROFILE_HEADER = f"{BASE}/StructureDefinition/sambus-message-header"


def profiles() -> list[dict[str, Any]]:
    """Profiles of the focal resources (and of the child and the header), as differentials."""
    core = "http://hl7.org/fhir/StructureDefinition"
    task_codes = _value_set_of(TASK_SYSTEM)
    return [
        _structure(
            resource_id="sambus-task",
            title="sambus Task",
            description="One recipient's Task in a process (the same id and identifier in every message of "
            "the process; a status update from a system that does not know what the Task asked carries no "
            "code; authoredOn only in the message that asks): what it is asked to do, the process it belongs "
            "to, where the process stands, the child, who asks and who owns it.",
            type_="Task",
            base=f"{core}/Task",
            elements=[
                _element("Task.identifier", min=1),
                _element("Task.identifier.system", min=1, fixedUri=TASK_ID_SYSTEM),
                _element("Task.identifier.value", min=1),
                _element("Task.groupIdentifier", min=1),
                _element("Task.groupIdentifier.system", min=1, fixedUri=PROCESS_ID_SYSTEM),
                _element("Task.groupIdentifier.value", min=1),
                _element("Task.businessStatus", min=1, **_required(_value_set_of(PROCESS_STEP_SYSTEM))),
                _element("Task.code", **_required(task_codes)),
                _element("Task.for", min=1),
                _element("Task.lastModified", min=1),
                _element("Task.requester", min=1),
                _element("Task.owner", min=1),
            ],
        ),
        _structure(
            resource_id="sambus-service-request",
            title="sambus ServiceRequest",
            description="The request behind an examination or referral Task.",
            type_="ServiceRequest",
            base=f"{core}/ServiceRequest",
            elements=[
                _element("ServiceRequest.requisition", min=1),
                _element("ServiceRequest.requisition.system", min=1, fixedUri=PROCESS_ID_SYSTEM),
                _element("ServiceRequest.code", min=1, **_required(task_codes)),
                _element("ServiceRequest.requester", min=1),
                _element("ServiceRequest.performer", min=1),
            ],
        ),
        _structure(
            resource_id="sambus-consent",
            title="sambus Consent",
            description="A guardian's or child's consent (OSL 12:2) to share information for a purpose.",
            type_="Consent",
            base=f"{core}/Consent",
            elements=[
                _element("Consent.identifier", min=1),
                _element("Consent.dateTime", min=1),
            ],
        ),
        _structure(
            resource_id="sambus-hidden-residence-flag",
            title="sambus hidden-residence Flag",
            description="A hidden-residence decision (LVU 14 §) on the child.",
            type_="Flag",
            base=f"{core}/Flag",
            elements=[
                _element("Flag.identifier", min=1),
                _element("Flag.code", **_required(_value_set_of(PROTECTION_SYSTEM))),
                _element("Flag.period", min=1),
            ],
        ),
        _structure(
            resource_id="sambus-sip-careplan",
            title="sambus SIP CarePlan",
            description="An established SIP: lead coordinator, each agency's actions, the follow-up.",
            type_="CarePlan",
            base=f"{core}/CarePlan",
            elements=[
                _element("CarePlan.identifier", min=1),
                _element("CarePlan.author", min=1),
            ],
        ),
        _structure(
            resource_id="sambus-patient",
            title="sambus Patient",
            description="The child, named by personnummer or samordningsnummer, else by LMA number or "
            "reservnummer (HL7 Sweden base patient and identifier systems).",
            type_="Patient",
            base=f"{SE_BASE}/SEBasePatient",
            elements=[_element("Patient.identifier", min=1)],
        ),
        _structure(
            resource_id="sambus-message-header",
            title="sambus MessageHeader",
            description="The header of every message sambus sends: the event from sambus's event codes.",
            type_="MessageHeader",
            base=f"{core}/MessageHeader",
            elements=[
                _element("MessageHeader.eventCoding", **_required(_value_set_of(EVENT_SYSTEM))),
                _element("MessageHeader.focus", min=1),
            ],
        ),
    ]


@dataclass(frozen=True)
class Focus:
    """A kind of focal resource of a message: its type, how many, and its profile."""

    resource_type: str
    min: int = 1
    max: str = "*"
    profile: str | None = None


_TASKS = (Focus("Task", profile=PROFILE_TASK),)
_CONSENT = (Focus("Consent", max="1", profile=PROFILE_CONSENT),)
_FLAG = (Focus("Flag", max="1", profile=PROFILE_FLAG),)
_NOTICE = (Focus("Communication", max="1"),)
FOCUS: dict[EventCode, tuple[Focus, ...]] = {
    **dict.fromkeys(EventCode, _TASKS),
    EventCode.CONSENT_RECORDED: _CONSENT,
    EventCode.CONSENT_WITHDRAWN: _CONSENT,
    EventCode.CHILD_OBJECTED: _CONSENT,
    EventCode.GUARDIAN_SECRECY_DECIDED: _FLAG,
    EventCode.GUARDIAN_SECRECY_LIFTED: _FLAG,
    EventCode.CUSTODY_UPDATED: (Focus("RelatedPerson", min=0),),
    EventCode.CARE_CONTACT_STATED: (Focus("EpisodeOfCare", max="1"),),
    EventCode.RESIDENCE_RELEASED: (Focus("Basic", max="1"),),
    EventCode.EQUIVALENT_HEALTH_EXAM_EXISTS: (Focus("Basic", max="1"),),
    EventCode.IDENTITY_PROTECTION_ENDED: (Focus("Flag", max="1"),),
    EventCode.HIDDEN_RESIDENCE_NOT_NEEDED: _FLAG,
    EventCode.GUARDIAN_ACCESS_BLOCKED: _FLAG,
    EventCode.GUARDIAN_ACCESS_RESUMED: _FLAG,
    EventCode.DELIVERY_DENIED: _NOTICE,
    EventCode.DELIVERY_WAITING: _NOTICE,
    EventCode.DELIVERY_RELEASED: _NOTICE,
    EventCode.PARKED_EXPIRED: _NOTICE,
    EventCode.DEADLINE_REMINDER: _NOTICE,
    EventCode.DEADLINE_ESCALATION: _NOTICE,
    EventCode.TRANSITION_TO_ADULTHOOD: _NOTICE,
}
"""The focal resources of each event's messages."""


def message_definition(event: EventCode) -> dict[str, Any]:
    """The MessageDefinition of one event: its code and its focal resources."""
    resource_id = f"sambus-{event}"
    focus = []
    for item in FOCUS[event]:
        entry: dict[str, Any] = {"code": item.resource_type, "min": item.min, "max": item.max}
        if item.profile is not None:
            entry["profile"] = item.profile
        focus.append(entry)
    return {
        **_meta(
            "MessageDefinition",
            resource_id,
            _name(resource_id),
            f"sambus {event}",
            f"A message about the event {event}.",
        ),
        "eventCoding": {"system": EVENT_SYSTEM, "code": str(event)},
        "category": "notification",
        "focus": focus,
    }


def resources() -> dict[str, dict[str, Any]]:
    """Every conformance resource, by file name (``<resourceType>-<id>.json``)."""
    items = [
        *(code_system(c) for c in CODE_SYSTEMS),
        *(value_set(c) for c in CODE_SYSTEMS),
        *(naming_system(*n) for n in NAMING_SYSTEMS),
        *extensions(),
        *profiles(),
        *(message_definition(e) for e in EventCode),
    ]
    return {f"{r['resourceType']}-{r['id']}.json": r for r in items}
