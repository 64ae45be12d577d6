"""Message Bundles for the consent tests, with residence-revealing data in the places the contract allows."""

from __future__ import annotations

from typing import Any

from sambus.contracts.fhir.codes import DATA_CATEGORY_SYSTEM, RESIDENCE_TAG

ADDRESS = {"line": ["Familjehemsvägen 7"], "postalCode": "72211", "city": "Västerås"}
PLACEMENT_HOME = "Familjehemmet Björk"


def bundle(*, address: bool = True, tagged: int = 1, plain: int = 1) -> dict[str, Any]:
    """A message Bundle: MessageHeader, Patient (with an address), ``tagged`` residence resources, tasks."""
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "p1", "gender": "female"}
    if address:
        patient["address"] = [ADDRESS]
    entries: list[dict[str, Any]] = [
        {"resource": {"resourceType": "MessageHeader", "id": "h1"}},
        {"resource": patient},
    ]
    entries += [
        {
            "resource": {
                "resourceType": "Location",
                "id": f"home{index}",
                "name": PLACEMENT_HOME,
                "meta": {"tag": [{"system": DATA_CATEGORY_SYSTEM, "code": RESIDENCE_TAG}]},
            }
        }
        for index in range(tagged)
    ]
    entries += [{"resource": {"resourceType": "Task", "id": f"t{index}"}} for index in range(plain)]
    return {"resourceType": "Bundle", "type": "message", "id": "m1", "entry": entries}


def reveals_residence(message: dict[str, Any]) -> bool:
    """Whether any residence-revealing value is left anywhere in ``message``."""
    text = repr(message)
    return ADDRESS["line"][0] in text or PLACEMENT_HOME in text or ADDRESS["postalCode"] in text
