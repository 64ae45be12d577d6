"""Residence-revealing data in a message, and what the EHR is told about hidden residence.

Residence-revealing data (address, placement home, residence municipality, new school unit, a care unit near
the residence) appears only as ``Patient.address`` or in a whole resource tagged ``residence`` in the
:data:`~sambus.contracts.fhir.codes.DATA_CATEGORY_SYSTEM` (the contract in
:mod:`sambus.contracts.fhir.codes`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.flag import Flag

from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.codes import DATA_CATEGORY_SYSTEM, PROTECTION_SYSTEM, RESIDENCE_TAG, EventCode
from sambus.contracts.fhir.flag import DECISION_ID_SYSTEM
from sambus.contracts.fhir.message import MessageSource, deterministic_id, message_bundle, patient, urn
from sambus.contracts.registry_facts import HiddenResidenceDecided, HiddenResidenceLifted


def _tagged_residence(resource: Mapping[str, Any]) -> bool:
    meta = resource.get("meta")
    tags = meta.get("tag", []) if isinstance(meta, Mapping) else []
    return any(
        isinstance(tag, Mapping)
        and tag.get("system") == DATA_CATEGORY_SYSTEM
        and tag.get("code") == RESIDENCE_TAG
        for tag in tags
    )


def _references(node: Any, urls: frozenset[str], path: str) -> Iterator[str]:  # noqa: ANN401 - JSON data
    """Paths of what refers to one of ``urls``: the list item holding the reference, else the field.

    ``Task.input`` ``[{"type": ..., "valueReference": {"reference": url}}]`` gives the whole input item, so
    no half item (a type without a value) is left; ``Task.focus`` ``{"reference": url}`` gives the field.
    """
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(value, Mapping) and value.get("reference") in urls:
                yield f"{path}.{key}"
            else:
                yield from _references(value, urls, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            if isinstance(item, Mapping) and (
                item.get("reference") in urls
                or any(isinstance(v, Mapping) and v.get("reference") in urls for v in item.values())
            ):
                yield f"{path}[{index}]"
            else:
                yield from _references(item, urls, f"{path}[{index}]")


def residence_paths(bundle: Mapping[str, Any]) -> tuple[str, ...]:
    """The redaction paths (see :func:`~sambus.consent.redact`) of each residence-revealing field.

    A whole resource removed takes every reference to it along (e.g. the ``Task.input`` naming the new
    school unit's Organization), so the redacted Bundle points at nothing that is not there.
    """
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return ()
    paths: list[str] = []
    removed_urls: set[str] = set()
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping):
            continue
        if _tagged_residence(resource):
            paths.append(f"entry[{index}]")
            if isinstance(entry.get("fullUrl"), str):
                removed_urls.add(entry["fullUrl"])
        elif resource.get("resourceType") == "Patient" and "address" in resource:
            paths.append(f"entry[{index}].resource.address")
    if removed_urls:
        urls = frozenset(removed_urls)
        for index, entry in enumerate(entries):
            if f"entry[{index}]" not in paths and isinstance(entry, Mapping):
                paths.extend(_references(entry.get("resource"), urls, f"entry[{index}].resource"))
    return tuple(paths)


_KEPT_UNDER_GUARDIAN_SECRECY = frozenset({"MessageHeader", "Patient", "Task", "Organization"})
"""Resources a guardian-facing recipient still gets under secrecy against the guardians: who, what to do."""
_TASK_CONTENT = (
    "description",
    "note",
    "reasonCode",
    "reasonReference",
    "input",
    "output",
    "focus",
    "basedOn",
)
"""Task elements that carry (or point at) the content."""


def guardian_secret_paths(bundle: Mapping[str, Any]) -> tuple[str, ...]:
    """The redaction paths of the content a guardian-facing recipient may not have under OSL 12:3.

    Kept: the header, the child (without address), the Task (what the recipient is asked to do, without
    reasons, notes, inputs and references to content) and the organisations. Removed: every other resource
    (plans, statements, consents, flags, residence) and the residence-revealing fields.
    """
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return ()
    paths: list[str] = list(residence_paths(bundle))
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or f"entry[{index}]" in paths:
            continue
        kind = resource.get("resourceType")
        if kind not in _KEPT_UNDER_GUARDIAN_SECRECY:
            paths.append(f"entry[{index}]")
        elif kind == "Task":
            paths.extend(f"entry[{index}].resource.{field}" for field in _TASK_CONTENT if field in resource)
    return tuple(paths)


@dataclass(frozen=True)
class GuardianAccessNotice:
    """A message the router must send to the child's EHR recipients when hidden residence starts or ends.

    Attributes:
        event: :attr:`EventCode.GUARDIAN_ACCESS_BLOCKED` when the decision is made (the EHR blocks the
            guardians' access to the record while it lasts), :attr:`EventCode.GUARDIAN_ACCESS_RESUMED`
            when it ends.
        decision_id: the hidden-residence decision.
        child: the child's personnummer (for the message's Patient; never logged, never a Kafka key).
        effective: from when.
        until: for a block, the end of the decision's period when it has one.
    """

    event: EventCode
    decision_id: str
    child: str
    effective: dt.datetime
    until: dt.datetime | None = None


def guardian_access_notice(fact: HiddenResidenceDecided | HiddenResidenceLifted) -> GuardianAccessNotice:
    """What the EHR must be told about a hidden-residence fact.

    The router builds a FHIR message with this event code for every health-care recipient of the child
    (the rule ``guardian-access`` permits it without consent) in the same transaction as the fact.
    """
    if isinstance(fact, HiddenResidenceDecided):
        return GuardianAccessNotice(
            event=EventCode.GUARDIAN_ACCESS_BLOCKED,
            decision_id=fact.decision_id,
            child=fact.child,
            effective=fact.valid_from,
            until=fact.valid_to,
        )
    return GuardianAccessNotice(
        event=EventCode.GUARDIAN_ACCESS_RESUMED,
        decision_id=fact.decision_id,
        child=fact.child,
        effective=fact.at,
    )


SAMBUS_SOURCE = "sambus"
"""The ``MessageHeader.source`` of messages sambus makes itself."""


def guardian_access_message(notice: GuardianAccessNotice, *, timestamp: dt.datetime) -> dict[str, Any]:
    """The FHIR message telling the EHR to block (or resume) the guardians' access to the child's record.

    Focus: a ``Flag`` with code ``hidden-residence`` (:data:`~sambus.contracts.fhir.codes.PROTECTION_SYSTEM`),
    ``active`` with the decision's period for a block, ``inactive`` ending at the lift. The Patient carries
    only the personnummer; no residence data is in the message. Ids are deterministic, so making the message
    again for a replayed fact gives the same message. The router adds the recipients (the child's health-care
    units) and delivers it like any other message; rule ``guardian-access`` permits it without consent.
    """
    message_id = deterministic_id("guardian-access", notice.decision_id, str(notice.event))
    patient_id = deterministic_id(message_id, "patient")
    child = patient(personnummer=notice.child, resource_id=patient_id).model_dump(
        mode="json", exclude_none=True
    )
    blocked = notice.event is EventCode.GUARDIAN_ACCESS_BLOCKED
    period = {"start" if blocked else "end": notice.effective.isoformat()}
    if blocked and notice.until is not None:
        period["end"] = notice.until.isoformat()
    flag = validated(
        Flag,
        {
            "resourceType": "Flag",
            "id": deterministic_id(message_id, "flag"),
            "identifier": [{"system": DECISION_ID_SYSTEM, "value": notice.decision_id}],
            "status": "active" if blocked else "inactive",
            "code": {
                "coding": [{"system": PROTECTION_SYSTEM, "code": "hidden-residence"}],
                "text": "Guardians must not access the record" if blocked else "Guardians' access may resume",
            },
            "subject": {"reference": urn(patient_id)},
            "period": period,
        },
    )
    return message_bundle(
        message_id=message_id,
        event=notice.event,
        source=MessageSource(system=SAMBUS_SOURCE, event_id=notice.decision_id),
        timestamp=timestamp,
        focus=[flag],
        supporting=[child],
    )
