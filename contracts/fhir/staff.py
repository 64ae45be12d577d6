"""Professionals named in messages as ``PractitionerRole``: role, HSA-id or user id, and agency; no name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from fhir.resources.R4B.practitionerrole import PractitionerRole

from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.codes import STAFF_ROLE_SYSTEM
from sambus.contracts.fhir.security import meta
from sambus.contracts.fhir.task import Identifier, coding, organisation


def staff_role(
    *,
    resource_id: str,
    agency: Identifier,
    role: str,
    person: Identifier | None,
    since: dt.date | None = None,
    security: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """A professional (a SIP's lead coordinator, who reports concern): a ``PractitionerRole`` at ``agency``.

    ``role`` is a :data:`STAFF_ROLE_SYSTEM` code; ``person`` the person's HSA-id or user id (``identifier``);
    no name travels. ``since``: from when (``period.start``), e.g. for a change of coordinator.
    """
    data: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": resource_id,
        "organization": organisation(agency),
        "code": [coding(STAFF_ROLE_SYSTEM, role)],
    }
    if person is not None:
        data["identifier"] = [dict(person)]
    if since is not None:
        data["period"] = {"start": since.isoformat()}
    if security:
        data["meta"] = meta(security=security)
    return validated(PractitionerRole, data)
