"""Security labels (``meta.security``) for messages about a protected child."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sambus.contracts.fhir.codes import (
    ACT_CODE_SYSTEM,
    CONFIDENTIALITY_SYSTEM,
    DATA_CATEGORY_SYSTEM,
    FINGERADE_PERSONUPPGIFTER,
    NO_RELINKING,
    PROTECTION_SYSTEM,
    RESIDENCE_TAG,
    SWEDISH_SECURITY_SYSTEM,
)

_SWEDISH_LABELS = {"sekretessmarkering", "skyddadFolkbokforing"}


def security_labels(*, protection: str, hidden_residence: bool = False) -> list[dict[str, str]]:
    """The ``meta.security`` codings for a child's protection.

    Args:
        protection: ``none``, ``sekretessmarkering`` or ``skyddadFolkbokforing`` (HL7 Sweden base labels),
            or ``fingeradePersonuppgifter``.
        hidden_residence: the message concerns an LVU 14 § hidden-residence decision.

    Protected personal data is very restricted (``V``) with the Swedish label; fictitious personal data
    (which HL7 Sweden's labels lack) with sambus's own code and ``NORELINK``; a hidden residence alone is
    restricted (``R``). Unprotected children get no labels.
    """
    labels: list[dict[str, str]] = []
    if protection in _SWEDISH_LABELS:
        labels.append({"system": CONFIDENTIALITY_SYSTEM, "code": "V"})
        labels.append({"system": SWEDISH_SECURITY_SYSTEM, "code": protection})
    elif protection == FINGERADE_PERSONUPPGIFTER:
        labels.append({"system": CONFIDENTIALITY_SYSTEM, "code": "V"})
        labels.append({"system": PROTECTION_SYSTEM, "code": FINGERADE_PERSONUPPGIFTER})
        labels.append({"system": ACT_CODE_SYSTEM, "code": NO_RELINKING})
    elif hidden_residence:
        labels.append({"system": CONFIDENTIALITY_SYSTEM, "code": "R"})
    return labels


_CONFIDENTIALITY_ORDER = ("U", "L", "M", "N", "R", "V")
"""HL7 v3 Confidentiality codes from least to most restricted."""
_CONFIDENTIALITY_RANK = {code: rank for rank, code in enumerate(_CONFIDENTIALITY_ORDER)}
"""Each code's place in :data:`_CONFIDENTIALITY_ORDER`, made once."""


def high_water_mark(resources: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The ``Bundle.meta.security`` of a message: the most restrictive label of any resource inside.

    The highest confidentiality code, and every HL7 Sweden label, found in the resources' ``meta.security``;
    a receiver that handles the Bundle outside Kafka (e.g. ``$process-message``) still sees how to protect it.
    """
    rank = -1
    swedish: set[str] = set()
    for resource in resources:
        for label in (resource.get("meta") or {}).get("security") or []:
            system, code = label.get("system"), label.get("code")
            if system == CONFIDENTIALITY_SYSTEM and isinstance(code, str) and code in _CONFIDENTIALITY_RANK:
                rank = max(rank, _CONFIDENTIALITY_RANK[code])
            elif system == SWEDISH_SECURITY_SYSTEM and isinstance(code, str):
                swedish.add(code)
    labels = [] if rank < 0 else [{"system": CONFIDENTIALITY_SYSTEM, "code": _CONFIDENTIALITY_ORDER[rank]}]
    return labels + [{"system": SWEDISH_SECURITY_SYSTEM, "code": code} for code in sorted(swedish)]


def header_labels(labels: list[dict[str, str]]) -> tuple[str, ...]:
    """The labels' codes, for the ``sambus-security`` Kafka header (codes only, never personal data)."""
    return tuple(label["code"] for label in labels)


def meta(*, security: Sequence[Mapping[str, str]] = (), residence: bool = False) -> dict[str, Any]:
    """A ``meta`` element: security labels, and the ``residence`` data-category tag when asked."""
    result: dict[str, Any] = {}
    if security:
        result["security"] = [dict(label) for label in security]
    if residence:
        result["tag"] = [{"system": DATA_CATEGORY_SYSTEM, "code": RESIDENCE_TAG}]
    return result
