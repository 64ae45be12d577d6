"""A hidden-residence decision (LVU 14 §) as a ``Flag`` on the child."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from fhir.resources.R4B.flag import Flag

from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.codes import PROTECTION_SYSTEM
from sambus.contracts.fhir.security import meta

DECISION_ID_SYSTEM = "https://sambus.se/fhir/NamingSystem/protection-decision"
"""``Flag.identifier``: ``<source system>|<decision id>``."""

HIDDEN_RESIDENCE = "hidden-residence"
SECRET_FROM_GUARDIANS = "secret-from-guardians"  # noqa: S105 - a Flag code, not a password
"""``Flag.code``: secrecy applies against the child's guardians (OSL 12:3)."""


def hidden_residence_flag(
    *,
    decision_id: str,
    resource_id: str,
    patient_ref: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    active: bool,
    security: Sequence[Mapping[str, str]] = (),
    code: str = HIDDEN_RESIDENCE,
    text: str = "Hemlighållande av vistelseort (LVU 14 §)",
) -> dict[str, Any]:
    """The decision: ``active`` while it lasts, ``inactive`` with ``period.end`` once lifted.

    ``code``/``text``: another protection decision of :data:`PROTECTION_SYSTEM` (e.g.
    :data:`SECRET_FROM_GUARDIANS`) in the same shape.

    ``start`` is ``None`` when a lift does not say when the decision took effect: the period then has only its
    end, rather than a start that is not the decision's.
    """
    period: dict[str, str] = {}
    if start is not None:
        period["start"] = start.isoformat()
    if end is not None:
        period["end"] = end.isoformat()
    data: dict[str, Any] = {
        "resourceType": "Flag",
        "id": resource_id,
        "identifier": [{"system": DECISION_ID_SYSTEM, "value": decision_id}],
        "status": "active" if active else "inactive",
        "code": {
            "coding": [{"system": PROTECTION_SYSTEM, "code": code}],
            "text": text,
        },
        "subject": {"reference": patient_ref},
        "period": period,
    }
    if security:
        data["meta"] = meta(security=security)
    return validated(Flag, data)
