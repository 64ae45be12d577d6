"""An ``Organization`` that reveals where the child lives (e.g. a new school unit), tagged ``residence``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fhir.resources.R4B.organization import Organization

from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.security import meta


def residence_organisation(
    *, resource_id: str, identifier: Mapping[str, str], security: Sequence[Mapping[str, str]] = ()
) -> dict[str, Any]:
    """An organisation named only by identifier, tagged as residence-revealing so redaction can drop it."""
    data: dict[str, Any] = {
        "resourceType": "Organization",
        "id": resource_id,
        "meta": meta(security=security, residence=True),
        "identifier": [dict(identifier)],
    }
    return validated(Organization, data)
