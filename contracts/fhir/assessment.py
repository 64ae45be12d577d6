"""A professional's assessment that a secrecy-breaking "får"-provision allows a disclosure.

Provisions such as OSL 26:9, 25:12 and 10:2 permit a disclosure only when a professional has assessed that it
is needed; the event names who assessed and which provision, and the message carries it as two ``Task.input``
entries (:data:`~sambus.contracts.fhir.codes.SECRECY_ASSESSMENT_SYSTEM`), so the consent decision can read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sambus.contracts.fhir.codes import SECRECY_ASSESSMENT_SYSTEM

PROVISION = "provision"
ASSESSED_BY = "assessed-by"


@dataclass(frozen=True)
class SecrecyAssessment:
    """Which provision a professional assessed allows the disclosure, and who (a user id, never a name)."""

    provision: str
    assessed_by: str


def assessment_inputs(assessment: SecrecyAssessment) -> list[dict[str, Any]]:
    """The ``Task.input`` entries that carry an assessment."""
    return [
        {"type": {"coding": [{"system": SECRECY_ASSESSMENT_SYSTEM, "code": code}]}, "valueString": value}
        for code, value in ((PROVISION, assessment.provision), (ASSESSED_BY, assessment.assessed_by))
    ]


def _values(task: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in task.get("input") or ():
        codings = (item.get("type") or {}).get("coding") or () if isinstance(item, Mapping) else ()
        for coding in codings:
            if coding.get("system") == SECRECY_ASSESSMENT_SYSTEM and isinstance(item.get("valueString"), str):
                found[str(coding.get("code"))] = str(item["valueString"])
    return found


def secrecy_assessment(bundle: Mapping[str, Any]) -> SecrecyAssessment | None:
    """The assessment the message's Task carries, or ``None`` (then no "får"-provision rule applies)."""
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and resource.get("resourceType") == "Task":
            values = _values(resource)
            if PROVISION in values and ASSESSED_BY in values:
                return SecrecyAssessment(provision=values[PROVISION], assessed_by=values[ASSESSED_BY])
    return None
