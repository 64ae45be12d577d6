"""A guardian's or child's consent as a FHIR R4 ``Consent``.

Profile (what :mod:`sambus.contracts.fhir.registry` reads back, and what an inbound FHIR Consent must carry):
``identifier`` (:data:`CONSENT_ID_SYSTEM`) the sender's consent id; ``status`` ``active`` (recorded) or
``inactive`` (withdrawn, ``dateTime`` = when); ``patient`` the child; ``category`` LOINC 59284-0 (patient
consent); ``policy`` the legal text the consent is given under, OSL (2009:400) as published in SFS (R4
invariant ppc-1 needs a ``policy`` or a ``policyRule``; R4's policy-rule codes have none for Swedish law);
``performer`` the guardians (``RelatedPerson`` by personnummer) or the child (``Patient``);
``provision.purpose`` a code of :data:`PURPOSE_SYSTEM`; ``provision.period`` the validity;
``provision.actor`` the recipients (role ``IRCP``): every organisation of a kind, as a contained
``Organization`` whose ``type`` is the kind (:data:`AGENCY_KIND_SYSTEM`), and the organisations a consent
is limited to, by HSA-id, organisation number or school unit code; never a routing address.

An inbound Consent may still carry its purpose as a ``category`` code of :data:`PURPOSE_SYSTEM`, and a kind
as a :data:`ROUTING_ADDRESS_SYSTEM` identifier (the shapes sambus sent before); one naming two different
purposes is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from fhir.resources.R4B.consent import Consent

from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.codes import (
    AGENCY_KIND_SYSTEM,
    PROCESS_ID_SYSTEM,
    PURPOSE_SYSTEM,
    ROUTING_ADDRESS_SYSTEM,
    SCHOOL_UNIT_SYSTEM,
)
from sambus.contracts.fhir.security import meta
from sambus.contracts.identifiers import (
    HSA_ID_SYSTEM,
    LMA_NUMBER_SYSTEM,
    ORGANISATION_NUMBER_SYSTEM,
    PERSONNUMMER_SYSTEM,
    SAMORDNINGSNUMMER_SYSTEM,
    child_key,
    normalise_system,
)

CONSENT_ID_SYSTEM = "https://sambus.se/fhir/NamingSystem/consent-id"
"""``Consent.identifier``: ``<source system>|<consent id>``."""

_SCOPE = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
}
_RECIPIENT_ROLE = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]
}
_PATIENT_CONSENT = {
    "coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]
}
OSL = "https://rkrattsbaser.gov.se/sfst?bet=2009:400"
"""Offentlighets- och sekretesslag (2009:400) in Regeringskansliet's legal database (SFS): consent lifts
secrecy under its 12 kap. 2 § (and 10 kap. 1 §)."""

_POLICY = {"authority": "https://www.riksdagen.se", "uri": OSL}


def _kind_actor(kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``provision.actor`` for every organisation of ``kind``, and the contained Organization it names."""
    organisation = {
        "resourceType": "Organization",
        "id": f"kind-{kind.replace('_', '-')}",
        "type": [{"coding": [{"system": AGENCY_KIND_SYSTEM, "code": kind}]}],
        "name": f"Every organisation of kind {kind}",
    }
    return {"role": _RECIPIENT_ROLE, "reference": {"reference": f"#{organisation['id']}"}}, organisation


def _kinds(resource: Mapping[str, Any], provision: Mapping[str, Any]) -> list[str]:
    """The agency kinds ``provision.actor`` names: contained Organizations by type, or routing addresses."""
    contained = {
        f"#{item.get('id')}": item
        for item in resource.get("contained") or []
        if isinstance(item, dict) and item.get("resourceType") == "Organization"
    }
    kinds: list[str] = []
    for actor in provision.get("actor") or []:
        reference = actor.get("reference") or {} if isinstance(actor, dict) else {}
        identifier = reference.get("identifier") or {}
        if identifier.get("system") == ROUTING_ADDRESS_SYSTEM:
            kinds.append(str(identifier.get("value")))
        elif (organisation := contained.get(str(reference.get("reference")))) is not None:
            kinds += [str(c.get("code")) for c in _codings(organisation.get("type"), AGENCY_KIND_SYSTEM)]
    return kinds


def _codings(concepts: Any, system: str) -> list[dict[str, Any]]:  # noqa: ANN401 - JSON data
    return [
        item
        for concept in (concepts if isinstance(concepts, list) else [])
        for item in (concept.get("coding") or [] if isinstance(concept, dict) else [])
        if isinstance(item, dict) and item.get("system") == system
    ]


MATURITY_EXTENSION = "https://sambus.se/fhir/StructureDefinition/maturity-assessed-by"
"""Extension on a child's own ``Consent``: who assessed the child mature enough to consent (a user id)."""

CONSENT_PROCESS_EXTENSION = "https://sambus.se/fhir/StructureDefinition/consent-process"
"""Extension on a ``Consent`` scoped to one process: ``valueIdentifier`` in :data:`PROCESS_ID_SYSTEM`."""

ORGANISATION_SYSTEMS = {
    HSA_ID_SYSTEM: "hsaId",
    ORGANISATION_NUMBER_SYSTEM: "organisationNumber",
    SCHOOL_UNIT_SYSTEM: "schoolUnitCode",
}
"""``provision.actor`` identifier systems that name one organisation, and the event field of each."""


def consent(
    *,
    consent_id: str,
    resource_id: str,
    patient_ref: str,
    purpose: str,
    agency_kinds: Sequence[str],
    guardians: Sequence[str],
    valid_from: dt.datetime,
    valid_to: dt.datetime | None,
    recorded: dt.datetime,
    security: Sequence[Mapping[str, str]] = (),
    maturity_assessed_by: str | None = None,
    organisations: Sequence[tuple[str, str]] = (),
    process_id: str | None = None,
    objection: bool = False,
) -> dict[str, Any]:
    """A recorded consent (OSL 12:2), given by ``guardians`` or, when there are none, by the child.

    ``maturity_assessed_by``: for a child's own consent, who assessed the child mature enough (an
    extension, :data:`MATURITY_EXTENSION`). ``organisations``: ``(system, value)`` of each organisation the
    consent names (``provision.actor`` beside the agency kinds); ``process_id``: the one process it is for
    (:data:`CONSENT_PROCESS_EXTENSION`). ``objection``: the child objects (``provision.type`` ``deny``,
    performed by the child; ``maturity_assessed_by`` names who heard the child).
    """
    period: dict[str, str] = {"start": valid_from.isoformat()}
    if valid_to is not None:
        period["end"] = valid_to.isoformat()
    performers = (
        [
            {"type": "RelatedPerson", "identifier": {"system": PERSONNUMMER_SYSTEM, "value": g}}
            for g in guardians
        ]
        if guardians
        else [{"reference": patient_ref}]
    )
    by_kind = [_kind_actor(kind) for kind in agency_kinds]
    data: dict[str, Any] = {
        "resourceType": "Consent",
        "id": resource_id,
        "identifier": [{"system": CONSENT_ID_SYSTEM, "value": consent_id}],
        "status": "active",
        "scope": _SCOPE,
        "category": [_PATIENT_CONSENT],
        "patient": {"reference": patient_ref},
        "dateTime": recorded.isoformat(),
        "performer": performers,
        "policy": [_POLICY],
        "provision": {
            "type": "deny" if objection else "permit",
            "period": period,
            "purpose": [{"system": PURPOSE_SYSTEM, "code": purpose}],
            "actor": [
                *(actor for actor, _ in by_kind),
                *(
                    {
                        "role": _RECIPIENT_ROLE,
                        "reference": {
                            "type": "Organization",
                            "identifier": {"system": system, "value": value},
                        },
                    }
                    for system, value in organisations
                ),
            ],
        },
    }
    if by_kind:
        data = {"resourceType": "Consent", "id": resource_id, "contained": [o for _, o in by_kind], **data}
    extensions: list[dict[str, Any]] = []
    if maturity_assessed_by is not None:
        extensions.append({"url": MATURITY_EXTENSION, "valueString": maturity_assessed_by})
    if process_id is not None:
        extensions.append(
            {
                "url": CONSENT_PROCESS_EXTENSION,
                "valueIdentifier": {"system": PROCESS_ID_SYSTEM, "value": process_id},
            }
        )
    if extensions:
        data["extension"] = extensions
    if security:
        data["meta"] = meta(security=security)
    return validated(Consent, data)


def consent_withdrawal(
    *,
    consent_id: str,
    resource_id: str,
    patient_ref: str,
    at: dt.datetime,
    security: Sequence[Mapping[str, str]] = (),
    withdrawn_by: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A withdrawn consent: ``status`` ``inactive`` from ``dateTime`` on.

    ``withdrawn_by``: the guardians who withdrew it (``performer``, by personnummer), an empty sequence
    when the child withdrew it, ``None`` when the sender does not say.
    """
    data: dict[str, Any] = {
        "resourceType": "Consent",
        "id": resource_id,
        "identifier": [{"system": CONSENT_ID_SYSTEM, "value": consent_id}],
        "status": "inactive",
        "scope": _SCOPE,
        "category": [_PATIENT_CONSENT],
        "patient": {"reference": patient_ref},
        "dateTime": at.isoformat(),
        "policy": [_POLICY],
    }
    if withdrawn_by is not None:
        data["performer"] = (
            [
                {"type": "RelatedPerson", "identifier": {"system": PERSONNUMMER_SYSTEM, "value": g}}
                for g in withdrawn_by
            ]
            if withdrawn_by
            else [{"reference": patient_ref}]
        )
    if security:
        data["meta"] = meta(security=security)
    return validated(Consent, data)


def _first_code(concepts: Any, system: str) -> str | None:  # noqa: ANN401 - JSON data
    for concept in concepts if isinstance(concepts, list) else []:
        for item in concept.get("coding", []) if isinstance(concept, dict) else []:
            if isinstance(item, dict) and item.get("system") == system and isinstance(item.get("code"), str):
                return str(item["code"])
    return None


def _purpose(resource: Mapping[str, Any], provision: Mapping[str, Any]) -> str:
    """The purpose: ``provision.purpose`` (R4), or a ``category`` code as sambus sent it before."""
    purposes = provision.get("purpose")
    in_provision = {
        str(p["code"])
        for p in (purposes if isinstance(purposes, list) else [])
        if isinstance(p, dict) and p.get("system") == PURPOSE_SYSTEM and isinstance(p.get("code"), str)
    }
    in_category = _first_code(resource.get("category"), PURPOSE_SYSTEM)
    found = in_provision | ({in_category} if in_category is not None else set())
    if not found:
        raise ValueError(f"Consent.provision.purpose (or Consent.category) needs a code of {PURPOSE_SYSTEM}")
    if len(found) > 1:
        raise ValueError("Consent names more than one purpose; sambus records one purpose per consent")
    return found.pop()


def _person(reference: Any, where: str) -> str:  # noqa: ANN401 - JSON data
    """The personnummer a logical reference names; older RIV-TA OIDs are accepted for the system."""
    identifier = (reference or {}).get("identifier") or {}
    system = normalise_system(str(identifier.get("system", "")))
    if system not in {PERSONNUMMER_SYSTEM, SAMORDNINGSNUMMER_SYSTEM} or not identifier.get("value"):
        raise ValueError(f"{where} must name the person by personnummer or samordningsnummer identifier")
    return str(identifier["value"])


def _child_fields(identifier: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The event's ``child`` for a child's FHIR identifier: any identifier kind a child may have."""
    system = normalise_system(str(identifier.get("system", "")))
    value = identifier.get("value")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must name the child by identifier")
    if system in {PERSONNUMMER_SYSTEM, SAMORDNINGSNUMMER_SYSTEM}:
        return {"civicNo": value}
    if system == LMA_NUMBER_SYSTEM:
        return {"lmaNumber": value}
    try:
        child_key(system, value)
    except ValueError:
        raise ValueError(
            f"{where} must name the child by personnummer, samordningsnummer, LMA number or reservnummer"
        ) from None
    return {"reserveNumber": {"system": system, "value": value}}


def consent_fields(resource: Mapping[str, Any], *, child: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a Consent of sambus's profile into the fields of a consent-recorded event (aliases as keys).

    Args:
        resource: the Consent as JSON data (already valid FHIR).
        child: the child's identifier (``system``, ``value``) when the message's Patient carries it;
            otherwise it is read from ``patient.identifier`` (an inbound Consent names the child by
            identifier: personnummer, samordningsnummer, LMA number or reservnummer).

    Raises:
        ValueError: something the profile needs is missing; the message names it, never a value.
    """
    identifiers = resource.get("identifier") or []
    consent_id = next((i.get("value") for i in identifiers if i.get("system") == CONSENT_ID_SYSTEM), None)
    if consent_id is None:
        raise ValueError(f"Consent.identifier needs a value in system {CONSENT_ID_SYSTEM}")
    if child is None:
        child = (resource.get("patient") or {}).get("identifier") or {}
    if not resource.get("policy") and not resource.get("policyRule"):
        raise ValueError("Consent needs a policy or a policyRule (FHIR R4 invariant ppc-1)")
    provision = resource.get("provision") or {}
    purpose = _purpose(resource, provision)
    period = provision.get("period") or {}
    kinds = _kinds(resource, provision)
    actors = [actor.get("reference", {}).get("identifier", {}) for actor in provision.get("actor") or []]
    organisations = [
        {ORGANISATION_SYSTEMS[system]: actor.get("value")}
        for actor in actors
        if (system := normalise_system(str(actor.get("system", "")))) in ORGANISATION_SYSTEMS
    ]
    guardians = [
        _person(p, "Consent.performer")
        for p in resource.get("performer") or []
        if p.get("type") == "RelatedPerson"
    ]
    fields: dict[str, Any] = {
        "child": _child_fields(child, "Consent.patient"),
        "consentId": consent_id,
        "purpose": purpose,
        "agencyKinds": kinds,
        "givenBy": "guardian" if guardians else "child",
        "guardians": guardians,
        "validFrom": period.get("start"),
    }
    if period.get("end") is not None:
        fields["validTo"] = period["end"]
    assessed = next(
        (e.get("valueString") for e in resource.get("extension") or [] if e.get("url") == MATURITY_EXTENSION),
        None,
    )
    if isinstance(assessed, str):
        fields["maturityAssessedBy"] = assessed
    if organisations:
        fields["organisations"] = organisations
    process = next(
        (
            e.get("valueIdentifier", {}).get("value")
            for e in resource.get("extension") or []
            if e.get("url") == CONSENT_PROCESS_EXTENSION
        ),
        None,
    )
    if isinstance(process, str):
        fields["processId"] = process
    return fields


def is_objection(resource: Mapping[str, Any]) -> bool:
    """Whether a Consent records the child's objection (``provision.type`` ``deny``)."""
    provision = resource.get("provision")
    return isinstance(provision, Mapping) and provision.get("type") == "deny"
