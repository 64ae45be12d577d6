"""The child as a ``Patient`` (HL7 Sweden base identifiers) and guardians as ``RelatedPerson``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.relatedperson import RelatedPerson

from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.codes import CUSTODY_EXTENSION
from sambus.contracts.fhir.security import meta
from sambus.contracts.identifiers import PERSONNUMMER_SYSTEM

GUARDIAN_ROLE = {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "GUARD"}
"""``RelatedPerson.relationship`` of a guardian (vårdnadshavare)."""


def child_patient(
    *,
    identifier: tuple[str, str],
    resource_id: str,
    birth_date: dt.date | None = None,
    gender: str | None = None,
    security: Sequence[Mapping[str, str]] = (),
    address: Mapping[str, Any] | None = None,
    custody: str | None = None,
) -> dict[str, Any]:
    """The child: identifier only, plus (when a message needs it) an address and the custody form.

    ``identifier`` is the ``(system, value)`` of a personnummer, samordningsnummer, LMA number or
    reservnummer (HL7 Sweden base systems); ``birth_date`` and ``gender`` (FHIR administrative gender) are
    given only for a child without a personnummer or samordningsnummer (which carry their own).

    ``address`` is the only place residence-revealing data goes (redaction removes ``Patient.address``);
    a report of concern carries just the residence municipality, as ``address.district`` (kommunkod).
    """
    data: dict[str, Any] = {
        "resourceType": "Patient",
        "id": resource_id,
        "identifier": [{"system": identifier[0], "value": identifier[1]}],
    }
    if gender is not None:
        data["gender"] = gender
    if birth_date is not None:
        data["birthDate"] = birth_date.isoformat()
    if security:
        data["meta"] = meta(security=security)
    if address is not None:
        data["address"] = [dict(address)]
    if custody is not None:
        data["extension"] = [{"url": CUSTODY_EXTENSION, "valueCode": custody}]
    return validated(Patient, data)


def guardian(
    *,
    person_number: str,
    resource_id: str,
    patient_ref: str,
    since: dt.datetime,
    security: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """A guardian of the child, from ``since`` on."""
    data: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "id": resource_id,
        "identifier": [{"system": PERSONNUMMER_SYSTEM, "value": person_number}],
        "patient": {"reference": patient_ref},
        "relationship": [{"coding": [GUARDIAN_ROLE]}],
        "period": {"start": since.isoformat()},
    }
    if security:
        data["meta"] = meta(security=security)
    return validated(RelatedPerson, data)
