"""A care unit's active care contact with the child, as a FHIR ``EpisodeOfCare``.

Specialist care (BUP, habilitation) is invited to a SIP only when it has an active care contact with the
child; the unit itself states it (``status`` ``active``, or ``finished`` once it ended), not the inviter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from fhir.resources.R4B.episodeofcare import EpisodeOfCare

from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.security import meta


def care_contact(
    *,
    resource_id: str,
    patient_ref: str,
    unit: Mapping[str, str],
    active: bool,
    at: dt.datetime,
    security: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The unit's care contact with the child: ``active`` from ``at``, or ``finished`` at ``at``."""
    data: dict[str, Any] = {
        "resourceType": "EpisodeOfCare",
        "id": resource_id,
        "status": "active" if active else "finished",
        "patient": {"reference": patient_ref},
        "managingOrganization": {"type": "Organization", "identifier": dict(unit)},
        "period": {"start" if active else "end": at.isoformat()},
    }
    if security:
        data["meta"] = meta(security=security)
    return validated(EpisodeOfCare, data)
