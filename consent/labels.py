"""Security labels: reading a child's protection from a message, and labelling what is delivered.

Protection is taken from both sides, so neither can fail open: the message's own ``meta.security`` labels
(the sending system's view) and the consent registry (what earlier messages and decisions said). Every
delivered Bundle about a protected child carries the labels of all protections in force, whatever the
sending system put on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sambus.consent.redaction import redact
from sambus.consent.registry import IDENTITY_PROTECTIONS, Protection
from sambus.contracts.fhir.codes import (
    ACT_CODE_SYSTEM,
    CONFIDENTIALITY_SYSTEM,
    FINGERADE_PERSONUPPGIFTER,
    NO_DISCLOSURE_TO_GUARDIANS,
    NO_RELINKING,
    PROTECTION_SYSTEM,
    SWEDISH_SECURITY_SYSTEM,
)
from sambus.contracts.fhir.registry import identity_levels

Label = tuple[str, str]
"""A ``meta.security`` coding as (system, code)."""

_CONFIDENTIALITY_ORDER = ("U", "L", "M", "N", "R", "V")
"""v3 Confidentiality codes, least restricted first."""

_LEVEL_LABELS: dict[Protection, tuple[Label, ...]] = {
    Protection.SEKRETESSMARKERING: ((SWEDISH_SECURITY_SYSTEM, "sekretessmarkering"),),
    Protection.SKYDDAD_FOLKBOKFORING: ((SWEDISH_SECURITY_SYSTEM, "skyddadFolkbokforing"),),
    Protection.FINGERADE_PERSONUPPGIFTER: (
        (PROTECTION_SYSTEM, FINGERADE_PERSONUPPGIFTER),
        (ACT_CODE_SYSTEM, NO_RELINKING),
    ),
    Protection.PROTECTED_IDENTITY: (),
}


def _resources(bundle: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    yield bundle
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping):
            yield resource


def _codes(resource: Mapping[str, Any], system: str) -> set[str]:
    meta = resource.get("meta")
    labels = meta.get("security") if isinstance(meta, Mapping) else None
    if not isinstance(labels, list):
        return set()
    return {
        str(label.get("code"))
        for label in labels
        if isinstance(label, Mapping) and label.get("system") == system
    }


def labelled_protections(bundle: Mapping[str, Any]) -> frozenset[Protection]:
    """The protections a message's labels name (the Bundle's or any resource's).

    A message labelled very restricted (``V``) without a level is taken as protected identity: fail closed.
    One labelled ``NOPAT`` (not to the guardians) is taken as hidden residence: the sender says so.
    """
    found: set[Protection] = set()
    very_restricted = False
    for resource in _resources(bundle):
        found.update(Protection(str(level)) for level in identity_levels(resource))
        very_restricted = very_restricted or "V" in _codes(resource, CONFIDENTIALITY_SYSTEM)
        if NO_DISCLOSURE_TO_GUARDIANS in _codes(resource, ACT_CODE_SYSTEM):
            found.add(Protection.HIDDEN_RESIDENCE)
    if very_restricted and not found:
        found.add(Protection.PROTECTED_IDENTITY)
    return frozenset(found)


def security_for(protections: Iterable[Protection]) -> tuple[Label, ...]:
    """The labels every Bundle about a child with these protections carries.

    Protected identity (any level): very restricted (``V``) and the level's own label (fingerade
    personuppgifter also ``NORELINK``). Hidden residence: restricted (``R``, unless ``V`` already) and
    ``NOPAT`` (not to be disclosed to the guardians); so does secrecy against the guardians (OSL 12:3).
    """
    given = set(protections)
    labels: list[Label] = []
    if given & IDENTITY_PROTECTIONS:
        labels.append((CONFIDENTIALITY_SYSTEM, "V"))
        for level in sorted(given & IDENTITY_PROTECTIONS):
            labels.extend(_LEVEL_LABELS[level])
    if given & {Protection.HIDDEN_RESIDENCE, Protection.SECRET_FROM_GUARDIANS}:
        if not labels:
            labels.append((CONFIDENTIALITY_SYSTEM, "R"))
        labels.append((ACT_CODE_SYSTEM, NO_DISCLOSURE_TO_GUARDIANS))
    return tuple(labels)


def _merge(existing: Any, wanted: Iterable[Label]) -> list[dict[str, Any]]:  # noqa: ANN401 - JSON data
    current = (
        [dict(label) for label in existing if isinstance(label, Mapping)]
        if isinstance(existing, list)
        else []
    )
    codes = [(str(label.get("system")), str(label.get("code"))) for label in current]
    for system, code in wanted:
        if system == CONFIDENTIALITY_SYSTEM:
            kept = [c for s, c in codes if s == CONFIDENTIALITY_SYSTEM]
            highest = max(
                [code, *kept],
                key=lambda c: _CONFIDENTIALITY_ORDER.index(c) if c in _CONFIDENTIALITY_ORDER else 99,
            )
            current = [label for label in current if label.get("system") != CONFIDENTIALITY_SYSTEM] + [
                {"system": CONFIDENTIALITY_SYSTEM, "code": highest}
            ]
        elif (system, code) not in codes:
            current.append({"system": system, "code": code})
        codes = [(str(label.get("system")), str(label.get("code"))) for label in current]
    return current


def _with_labels(resource: Mapping[str, Any], security: Iterable[Label]) -> dict[str, Any]:
    meta = resource.get("meta")
    new_meta = dict(meta) if isinstance(meta, Mapping) else {}
    new_meta["security"] = _merge(new_meta.get("security"), security)
    return {**resource, "meta": new_meta}


def labelled(bundle: Mapping[str, Any], security: Iterable[Label]) -> dict[str, Any]:
    """A copy of a message Bundle whose ``Bundle.meta.security`` and Patient carry ``security``.

    The confidentiality code kept is the highest of the given and the present ones (high-water mark);
    other labels are added when missing. Nothing in ``bundle`` is changed.
    """
    wanted = tuple(security)
    if not wanted:
        return dict(bundle)
    result = _with_labels(bundle, wanted)
    entries = bundle.get("entry")
    if isinstance(entries, list):
        result["entry"] = [
            {**entry, "resource": _with_labels(entry["resource"], wanted)}
            if isinstance(entry, Mapping)
            and isinstance(entry.get("resource"), Mapping)
            and entry["resource"].get("resourceType") == "Patient"
            else entry
            for entry in entries
        ]
    return result


def header_codes(bundle: Mapping[str, Any]) -> str:
    """The codes of ``Bundle.meta.security``, comma-separated, for the ``sambus-security`` header."""
    meta = bundle.get("meta")
    labels = meta.get("security") if isinstance(meta, Mapping) else None
    return (
        ",".join(str(label.get("code")) for label in labels if isinstance(label, Mapping))
        if isinstance(labels, list)
        else ""
    )


def as_delivered(
    bundle: Mapping[str, Any], *, removed: Iterable[str], security: Iterable[Label]
) -> dict[str, Any]:
    """A message as a decision lets it go: the ``removed`` paths taken out, the ``security`` labels on."""
    kept = redact(bundle, removed) if removed else dict(bundle)
    return labelled(kept, security)
