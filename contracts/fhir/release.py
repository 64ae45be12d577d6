"""A release of residence data about a child with protected identity, as a ``Basic`` resource.

While a child's identity is protected (sekretessmarkering, skyddad folkbokföring, fingerade personuppgifter)
no residence-revealing data reaches anyone. A named person at social services may release one message's
residence data to named recipients; the release is a message of its own, read into the consent registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fhir.resources.R4B.basic import Basic

from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.codes import PROTECTION_SYSTEM
from sambus.contracts.fhir.security import meta

RELEASE_ID_SYSTEM = "https://sambus.se/fhir/NamingSystem/residence-release"
"""``Basic.identifier``: social services' id of the release decision."""

CASE_SYSTEM_USER_SYSTEM = "https://sambus.se/fhir/NamingSystem/case-system-user"
"""``Basic.author.identifier``: the person who released, as the case system's user id."""

RELEASED_MESSAGE_EXTENSION = "https://sambus.se/fhir/StructureDefinition/released-message"
"""Extension on the release: the id of the sambus message whose residence data is released."""

RELEASED_TO_EXTENSION = "https://sambus.se/fhir/StructureDefinition/released-to"
"""Extension on the release, once per recipient: the organisation that may have the residence data."""

RESIDENCE_RELEASE = "residence-release"
"""``Basic.code`` in :data:`PROTECTION_SYSTEM`."""


def residence_release(
    *,
    resource_id: str,
    release_id: str,
    patient_ref: str,
    message_id: str,
    recipients: Sequence[Mapping[str, str]],
    released_by: str,
    security: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The release decision: who released which message's residence data to whom."""
    data: dict[str, Any] = {
        "resourceType": "Basic",
        "id": resource_id,
        "identifier": [{"system": RELEASE_ID_SYSTEM, "value": release_id}],
        "code": {
            "coding": [{"system": PROTECTION_SYSTEM, "code": RESIDENCE_RELEASE}],
            "text": "Residence data released for one message by social services",
        },
        "subject": {"reference": patient_ref},
        "author": {
            "type": "Practitioner",
            "identifier": {"system": CASE_SYSTEM_USER_SYSTEM, "value": released_by},
        },
        "extension": [
            {"url": RELEASED_MESSAGE_EXTENSION, "valueString": message_id},
            *({"url": RELEASED_TO_EXTENSION, "valueIdentifier": dict(r)} for r in recipients),
        ],
    }
    if security:
        data["meta"] = meta(security=security)
    return validated(Basic, data)
