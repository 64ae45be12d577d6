"""Reading the facts the consent registry records back out of a message Bundle.

The router calls :func:`registry_facts` on every message on ``sambus.intents``; consent, custody and
hidden-residence messages (as the adapters build them) yield their facts, every other message none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.errors import InvalidIntentError
from sambus.contracts.fhir.codes import (
    CUSTODY_EXTENSION,
    EVENT_SYSTEM,
    FINGERADE_PERSONUPPGIFTER,
    PROTECTION_SYSTEM,
    SWEDISH_SECURITY_SYSTEM,
    EventCode,
)
from sambus.contracts.fhir.consent import CONSENT_ID_SYSTEM, ORGANISATION_SYSTEMS, consent_fields
from sambus.contracts.fhir.flag import DECISION_ID_SYSTEM, SECRET_FROM_GUARDIANS
from sambus.contracts.fhir.release import (
    CASE_SYSTEM_USER_SYSTEM,
    RELEASE_ID_SYSTEM,
    RELEASED_MESSAGE_EXTENSION,
    RELEASED_TO_EXTENSION,
)
from sambus.contracts.identifiers import PERSONNUMMER_SYSTEM, child_key
from sambus.contracts.registry_facts import (
    ChildObjected,
    ConsentGiven,
    ConsentWithdrawn,
    Custody,
    CustodyUpdated,
    GivenBy,
    GuardianSecrecyDecided,
    GuardianSecrecyLifted,
    HiddenResidenceDecided,
    HiddenResidenceLifted,
    HiddenResidenceNotNeeded,
    IdentityLevel,
    IdentityProtected,
    IdentityProtectionEnded,
    RegistryFact,
    ResidenceReleased,
)

_Resources = dict[str, list[dict[str, Any]]]


def _time(value: Any, what: str) -> dt.datetime:  # noqa: ANN401 - JSON data
    try:
        parsed = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise InvalidIntentError(f"{what} is not a date and time") from exc
    if parsed.tzinfo is None:
        raise InvalidIntentError(f"{what} has no UTC offset")
    return parsed


def _optional_time(value: Any, what: str) -> dt.datetime | None:  # noqa: ANN401 - JSON data
    return None if value is None else _time(value, what)


def _one(resources: _Resources, kind: str) -> dict[str, Any]:
    found = resources.get(kind, [])
    if len(found) != 1:
        raise InvalidIntentError(f"a registry message needs exactly one {kind}, found {len(found)}")
    return found[0]


def _child(resources: _Resources) -> str:
    """What the registry knows the child by: ``child_key`` of the Patient's identifier, kind and all."""
    identifiers = _one(resources, "Patient").get("identifier") or [{}]
    value = identifiers[0].get("value")
    if not isinstance(value, str) or not value:
        raise InvalidIntentError("the Patient has no identifier value")
    try:
        return child_key(str(identifiers[0].get("system", "")), value)
    except ValueError as exc:  # child_key's messages name the problem, never the value
        raise InvalidIntentError(f"the Patient's identifier: {exc}") from exc


def _born(resources: _Resources) -> dt.date | None:
    """``Patient.birthDate`` (sent for a child named by LMA number or reservnummer), if any."""
    value = _one(resources, "Patient").get("birthDate")
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidIntentError("the Patient's birthDate is not a date (YYYY-MM-DD)") from exc


def _identifier(resource: Mapping[str, Any], system: str, what: str) -> str:
    for identifier in resource.get("identifier") or []:
        if identifier.get("system") == system and isinstance(identifier.get("value"), str):
            return str(identifier["value"])
    raise InvalidIntentError(f"{what} has no identifier in {system}")


_FIELD_SYSTEMS = {field: system for system, field in ORGANISATION_SYSTEMS.items()}


def _consent_read(resources: _Resources) -> tuple[dict[str, Any], dict[str, Any]]:
    resource = _one(resources, "Consent")
    try:
        fields = consent_fields(resource, child=(_one(resources, "Patient").get("identifier") or [{}])[0])
    except ValueError as exc:  # consent_fields's messages name the element, never its value
        raise InvalidIntentError(f"the Consent does not follow sambus's profile: {exc}") from exc
    return resource, fields


def _child_objected(resources: _Resources) -> tuple[RegistryFact, ...]:
    resource, fields = _consent_read(resources)
    if (resource.get("provision") or {}).get("type") != "deny" or fields["guardians"]:
        raise InvalidIntentError("a child's objection is a Consent with provision.type deny, by the child")
    assessed = fields.get("maturityAssessedBy")
    if not isinstance(assessed, str):
        raise InvalidIntentError("a child's objection names who heard the child (maturity-assessed-by)")
    try:
        purpose = Purpose(fields["purpose"])
        kinds = frozenset(AgencyKind(kind) for kind in fields["agencyKinds"])
    except ValueError as exc:
        raise InvalidIntentError("the objection names a purpose or agency kind sambus does not know") from exc
    return (
        ChildObjected(
            objection_id=fields["consentId"],
            child=_child(resources),
            purpose=purpose,
            agency_kinds=kinds,
            assessed_by=assessed,
            valid_from=_time(fields["validFrom"], "Consent.provision.period.start"),
            valid_to=_optional_time(fields.get("validTo"), "Consent.provision.period.end"),
            recorded_at=_time(resource.get("dateTime"), "Consent.dateTime"),
            born=_born(resources),
        ),
    )


def _guardian_secrecy_decided(resources: _Resources) -> tuple[RegistryFact, ...]:
    flag = _one(resources, "Flag")
    codes = [c.get("code") for c in (flag.get("code") or {}).get("coding") or []]
    if SECRET_FROM_GUARDIANS not in codes:
        raise InvalidIntentError(f"secrecy against the guardians is a Flag coded {SECRET_FROM_GUARDIANS}")
    period = flag.get("period") or {}
    return (
        GuardianSecrecyDecided(
            decision_id=_identifier(flag, DECISION_ID_SYSTEM, "the Flag"),
            child=_child(resources),
            valid_from=_time(period.get("start"), "Flag.period.start"),
            valid_to=_optional_time(period.get("end"), "Flag.period.end"),
        ),
    )


def _guardian_secrecy_lifted(resources: _Resources) -> tuple[RegistryFact, ...]:
    flag = _one(resources, "Flag")
    codes = [c.get("code") for c in (flag.get("code") or {}).get("coding") or []]
    if SECRET_FROM_GUARDIANS not in codes or flag.get("status") != "inactive":
        raise InvalidIntentError(
            f"lifted secrecy against the guardians is an inactive Flag coded {SECRET_FROM_GUARDIANS}"
        )
    return (
        GuardianSecrecyLifted(
            decision_id=_identifier(flag, DECISION_ID_SYSTEM, "the Flag"),
            child=_child(resources),
            at=_time((flag.get("period") or {}).get("end"), "Flag.period.end"),
        ),
    )


def _consent_given(resources: _Resources) -> tuple[RegistryFact, ...]:
    resource, fields = _consent_read(resources)
    if (resource.get("provision") or {}).get("type") == "deny":
        raise InvalidIntentError("a consent-recorded Consent permits; an objection is child-objected")
    try:
        purpose = Purpose(fields["purpose"])
    except ValueError as exc:
        raise InvalidIntentError("the Consent's purpose is not one of sambus's purposes") from exc
    try:
        kinds = frozenset(AgencyKind(kind) for kind in fields["agencyKinds"])
    except ValueError as exc:
        raise InvalidIntentError("the Consent names an agency kind sambus does not know") from exc
    return (
        ConsentGiven(
            consent_id=fields["consentId"],
            child=_child(resources),
            purpose=purpose,
            agency_kinds=kinds,
            given_by=GivenBy(fields["givenBy"]),
            guardians=tuple(fields["guardians"]),
            valid_from=_time(fields["validFrom"], "Consent.provision.period.start"),
            valid_to=_optional_time(fields.get("validTo"), "Consent.provision.period.end"),
            recorded_at=_time(resource.get("dateTime"), "Consent.dateTime"),
            maturity_assessed_by=fields.get("maturityAssessedBy"),
            organisations=tuple(
                (_FIELD_SYSTEMS[name], str(value))
                for organisation in fields.get("organisations", ())
                for name, value in organisation.items()
            ),
            process_id=fields.get("processId"),
            born=_born(resources),
        ),
    )


def _consent_withdrawn(resources: _Resources) -> tuple[RegistryFact, ...]:
    resource = _one(resources, "Consent")
    if resource.get("status") != "inactive":
        raise InvalidIntentError("a withdrawn Consent must be inactive")
    return (
        ConsentWithdrawn(
            consent_id=_identifier(resource, CONSENT_ID_SYSTEM, "the Consent"),
            child=_child(resources),
            at=_time(resource.get("dateTime"), "Consent.dateTime"),
        ),
    )


def _custody_updated(resources: _Resources) -> tuple[RegistryFact, ...]:
    patient = _one(resources, "Patient")
    custody = next(
        (e.get("valueCode") for e in patient.get("extension") or [] if e.get("url") == CUSTODY_EXTENSION),
        None,
    )
    guardians = resources.get("RelatedPerson", [])
    if not guardians:
        raise InvalidIntentError("a custody message names at least one guardian (RelatedPerson)")
    try:
        form = Custody(str(custody))
    except ValueError as exc:
        raise InvalidIntentError(
            f"the Patient's {CUSTODY_EXTENSION} must be one of {', '.join(Custody)}"
        ) from exc
    return (
        CustodyUpdated(
            child=_child(resources),
            guardians=tuple(_identifier(g, PERSONNUMMER_SYSTEM, "a guardian") for g in guardians),
            custody=form,
            at=_time((guardians[0].get("period") or {}).get("start"), "RelatedPerson.period.start"),
            born=_born(resources),
        ),
    )


def _hidden_residence_decided(resources: _Resources) -> tuple[RegistryFact, ...]:
    flag = _one(resources, "Flag")
    period = flag.get("period") or {}
    return (
        HiddenResidenceDecided(
            decision_id=_identifier(flag, DECISION_ID_SYSTEM, "the Flag"),
            child=_child(resources),
            valid_from=_time(period.get("start"), "Flag.period.start"),
            valid_to=_optional_time(period.get("end"), "Flag.period.end"),
        ),
    )


def _hidden_residence_lifted(resources: _Resources) -> tuple[RegistryFact, ...]:
    flag = _one(resources, "Flag")
    return (
        HiddenResidenceLifted(
            decision_id=_identifier(flag, DECISION_ID_SYSTEM, "the Flag"),
            child=_child(resources),
            at=_time((flag.get("period") or {}).get("end"), "Flag.period.end"),
        ),
    )


def _hidden_residence_not_needed(resources: _Resources) -> tuple[RegistryFact, ...]:
    flag = _one(resources, "Flag")
    if flag.get("status") != "inactive":
        raise InvalidIntentError("a decision not to hide the residence is an inactive Flag")
    return (
        HiddenResidenceNotNeeded(
            decision_id=_identifier(flag, DECISION_ID_SYSTEM, "the Flag"),
            child=_child(resources),
            at=_time((flag.get("period") or {}).get("start"), "Flag.period.start"),
        ),
    )


def _identity_protection_ended(resources: _Resources) -> tuple[RegistryFact, ...]:
    flag = _one(resources, "Flag")
    if flag.get("status") != "inactive":
        raise InvalidIntentError("an ended protection is an inactive Flag")
    return (
        IdentityProtectionEnded(
            decision_id=_identifier(flag, DECISION_ID_SYSTEM, "the Flag"),
            child=_child(resources),
            at=_time((flag.get("period") or {}).get("end"), "Flag.period.end"),
        ),
    )


def _residence_released(resources: _Resources) -> tuple[RegistryFact, ...]:
    release = _one(resources, "Basic")
    extensions = release.get("extension") or []
    message_ids = [e.get("valueString") for e in extensions if e.get("url") == RELEASED_MESSAGE_EXTENSION]
    recipients = tuple(
        (str(identifier.get("system")), str(identifier.get("value")))
        for e in extensions
        if e.get("url") == RELEASED_TO_EXTENSION and isinstance(identifier := e.get("valueIdentifier"), dict)
    )
    author = (release.get("author") or {}).get("identifier") or {}
    if len(message_ids) != 1 or not isinstance(message_ids[0], str) or not recipients:
        raise InvalidIntentError("a residence release names exactly one message and at least one recipient")
    if author.get("system") != CASE_SYSTEM_USER_SYSTEM or not isinstance(author.get("value"), str):
        raise InvalidIntentError("a residence release names the person who released it")
    return (
        ResidenceReleased(
            release_id=_identifier(release, RELEASE_ID_SYSTEM, "the release"),
            child=_child(resources),
            message_id=message_ids[0],
            recipients=recipients,
            released_by=str(author["value"]),
        ),
    )


_IDENTITY_LABELS = {
    (SWEDISH_SECURITY_SYSTEM, "sekretessmarkering"): IdentityLevel.SEKRETESSMARKERING,
    (SWEDISH_SECURITY_SYSTEM, "skyddadFolkbokforing"): IdentityLevel.SKYDDAD_FOLKBOKFORING,
    (PROTECTION_SYSTEM, FINGERADE_PERSONUPPGIFTER): IdentityLevel.FINGERADE_PERSONUPPGIFTER,
}
"""``meta.security`` labels that say the child's identity is protected, and at which level."""


def identity_levels(resource: Mapping[str, Any]) -> frozenset[IdentityLevel]:
    """The protected-identity levels a resource's (or a Bundle's) ``meta.security`` labels name."""
    meta = resource.get("meta")
    labels = meta.get("security") if isinstance(meta, Mapping) else None
    if not isinstance(labels, list):
        return frozenset()
    return frozenset(
        level
        for label in labels
        if isinstance(label, Mapping)
        and (level := _IDENTITY_LABELS.get((str(label.get("system")), str(label.get("code"))))) is not None
    )


_READERS: dict[str, Callable[[_Resources], tuple[RegistryFact, ...]]] = {
    EventCode.CONSENT_RECORDED: _consent_given,
    EventCode.CONSENT_WITHDRAWN: _consent_withdrawn,
    EventCode.CHILD_OBJECTED: _child_objected,
    EventCode.GUARDIAN_SECRECY_DECIDED: _guardian_secrecy_decided,
    EventCode.GUARDIAN_SECRECY_LIFTED: _guardian_secrecy_lifted,
    EventCode.CUSTODY_UPDATED: _custody_updated,
    EventCode.HIDDEN_RESIDENCE_DECIDED: _hidden_residence_decided,
    EventCode.HIDDEN_RESIDENCE_LIFTED: _hidden_residence_lifted,
    EventCode.HIDDEN_RESIDENCE_NOT_NEEDED: _hidden_residence_not_needed,
    EventCode.RESIDENCE_RELEASED: _residence_released,
    EventCode.IDENTITY_PROTECTION_ENDED: _identity_protection_ended,
}


def registry_facts(bundle: Mapping[str, Any]) -> tuple[RegistryFact, ...]:
    """The registry facts a message carries: consents, withdrawals, custody, hidden residence, releases.

    Any message whose Patient is labelled with a protected-identity level (sekretessmarkering, skyddad
    folkbokföring, fingerade personuppgifter) also yields :class:`IdentityProtected`, so the registry
    remembers the protection for later messages that do not carry it. Works on the Bundle as plain JSON
    data (no FHIR model round trip). Other messages yield ``()``.

    Raises:
        InvalidIntentError: a registry message lacks what the adapters always put in it.
    """
    entries = bundle.get("entry")
    if bundle.get("type") != "message" or not isinstance(entries, list) or not entries:
        raise InvalidIntentError("not a FHIR message Bundle")
    header = entries[0].get("resource", {}) if isinstance(entries[0], dict) else {}
    coding = header.get("eventCoding") or {}
    if header.get("resourceType") != "MessageHeader" or coding.get("system") != EVENT_SYSTEM:
        raise InvalidIntentError("a message Bundle must start with a MessageHeader of sambus's events")
    reader = _READERS.get(str(coding.get("code")))
    resources: _Resources = {}
    for entry in entries[1:]:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            resources.setdefault(str(resource.get("resourceType")), []).append(resource)
    protected = _identity_protected(resources)
    return protected + (reader(resources) if reader is not None else ())


def _identity_protected(resources: _Resources) -> tuple[RegistryFact, ...]:
    patients = resources.get("Patient", [])
    if len(patients) != 1:
        return ()
    levels = identity_levels(patients[0])
    if not levels:
        return ()
    child = _child(resources)
    return tuple(IdentityProtected(child=child, level=level) for level in sorted(levels))
