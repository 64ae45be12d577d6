"""Messages sambus makes itself and sends to the organisation concerned.

A delivery was denied, a message waits for consent (or another answer) and later was released or expired,
a deadline is near or has passed, a child with a SIP is turning 18.

Each is a FHIR message Bundle (``MessageHeader`` first) built as JSON data, validated with ``fhir.resources``
when validation is on (see :mod:`sambus.contracts.fhir._validated`; the tests run with it). Its focus
is a ``Communication`` (category ``notification``) to the organisation, ``about`` the event or process it
concerns by identifier, with the text as payload and an ``OperationOutcome`` (severity, issue type) beside
it. It names the organisation and the reason; only a deadline's reminder or escalation, which goes to a
party of the process, also names the child: a ``Patient`` with its identifier alone (no name, address or
birth date), the ``Communication.subject``. A notice is not a response to a message the organisation sent, so
``MessageHeader.response`` is not used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.messageheader import MessageHeader
from fhir.resources.R4B.operationoutcome import OperationOutcome

from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.codes import (
    DESTINATION_ENDPOINT_PREFIX,
    EVENT_SYSTEM,
    SOURCE_ENDPOINT_PREFIX,
    TASK_ID_SYSTEM,
    EventCode,
)
from sambus.contracts.fhir.message import deterministic_id, urn
from sambus.contracts.fhir.patient import child_patient

SAMBUS_SOURCE = "sambus"
"""``MessageHeader.source.name`` of every message sambus makes itself."""

NOTICE_EVENTS = frozenset(
    {
        EventCode.DELIVERY_DENIED,
        EventCode.DELIVERY_WAITING,
        EventCode.DELIVERY_RELEASED,
        EventCode.PARKED_EXPIRED,
        EventCode.DEADLINE_REMINDER,
        EventCode.DEADLINE_ESCALATION,
        EventCode.TRANSITION_TO_ADULTHOOD,
    }
)

_ISSUE = {
    EventCode.DELIVERY_DENIED: ("error", "forbidden"),
    EventCode.DELIVERY_WAITING: ("warning", "informational"),
    EventCode.DELIVERY_RELEASED: ("information", "informational"),
    EventCode.PARKED_EXPIRED: ("error", "expired"),
    EventCode.DEADLINE_REMINDER: ("warning", "informational"),
    EventCode.DEADLINE_ESCALATION: ("error", "business-rule"),
    EventCode.TRANSITION_TO_ADULTHOOD: ("information", "informational"),
}


@dataclass(frozen=True)
class Addressee:
    """Who a notice goes to: a directory id, a display name and its organisation identifier."""

    recipient_id: str
    name: str
    system: str
    value: str


_NOTIFICATION = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/communication-category", "code": "notification"}
    ]
}


def notice(
    *,
    event: EventCode,
    to: Addressee,
    about: Mapping[str, str],
    text: str,
    at: dt.datetime,
    key: str = "",
    tasks: Sequence[str] = (),
    patient: tuple[str, str] | None = None,
) -> dict[str, object]:
    """A notice Bundle as JSON data.

    Args:
        event: one of :data:`NOTICE_EVENTS`.
        to: the organisation told.
        about: the identifier (``system``, ``value``) of what the notice is about: the event the organisation
            sent (``source-event``) or the process (``process-id``); ``Communication.about``.
        text: what happened and why, without personal data.
        at: when.
        tasks: ids of the Tasks the notice concerns, which the addressee holds (each ``Task.for`` names the
            child): also in ``Communication.about``, by Task identifier, so no personal data is repeated.
        key: anything that makes the notice unique beside ``event`` and ``about`` (e.g. the recipient a
            denial concerns, a deadline's name); the ids are deterministic in all three.
        patient: the ``(system, value)`` of the child's identifier, for a notice to a party of the child's
            process (a deadline's reminder or escalation): a ``Patient`` entry, ``Communication.subject``.

    Raises:
        ValueError: ``event`` is not a notice event.
    """
    if event not in NOTICE_EVENTS:
        raise ValueError(f"{event} is not a notice sambus makes")
    message_id = deterministic_id(about["system"], about["value"], str(event), key)
    severity, code = _ISSUE[event]
    outcome_id = deterministic_id(message_id, "outcome")
    header_id = deterministic_id(message_id, "header")
    communication_id = deterministic_id(message_id, "communication")
    receiver = {"type": "Organization", "identifier": {"system": to.system, "value": to.value}}
    sent = _instant(at)
    patient_id = "" if patient is None else deterministic_id(message_id, "patient")
    child = None if patient is None else child_patient(identifier=patient, resource_id=patient_id)
    outcome = validated(
        OperationOutcome,
        {
            "resourceType": "OperationOutcome",
            "id": outcome_id,
            "issue": [{"severity": severity, "code": code, "diagnostics": text}],
        },
    )
    communication = validated(
        Communication,
        {
            "resourceType": "Communication",
            "id": communication_id,
            "status": "completed",
            "category": [_NOTIFICATION],
            "priority": "urgent" if severity == "error" else "routine",
            **({} if child is None else {"subject": {"reference": urn(patient_id)}}),
            "about": [
                {"identifier": {"system": about["system"], "value": about["value"]}},
                *({"type": "Task", "identifier": {"system": TASK_ID_SYSTEM, "value": t}} for t in tasks),
            ],
            "sent": sent,
            "recipient": [receiver],
            "payload": [{"contentString": text}, {"contentReference": {"reference": urn(outcome_id)}}],
        },
    )
    header = validated(
        MessageHeader,
        {
            "resourceType": "MessageHeader",
            "id": header_id,
            "eventCoding": {"system": EVENT_SYSTEM, "code": str(event)},
            "destination": [
                {
                    "name": to.name,
                    "endpoint": f"{DESTINATION_ENDPOINT_PREFIX}{to.recipient_id}",
                    "receiver": receiver,
                }
            ],
            "source": {"name": SAMBUS_SOURCE, "endpoint": f"{SOURCE_ENDPOINT_PREFIX}{SAMBUS_SOURCE}"},
            "focus": [{"reference": urn(communication_id)}],
        },
    )
    entries = [(header_id, header), (communication_id, communication), (outcome_id, outcome)]
    if child is not None:
        entries.append((patient_id, child))
    shell = {"resourceType": "Bundle", "id": message_id, "type": "message", "timestamp": sent}
    validated(Bundle, {**shell, "entry": [{"fullUrl": urn(entry_id)} for entry_id, _ in entries]})
    return {**shell, "entry": [{"fullUrl": urn(entry_id), "resource": data} for entry_id, data in entries]}


def _instant(at: dt.datetime) -> str:
    """``at`` as FHIR ``instant`` text, written as ``fhir.resources`` writes it (UTC as ``Z``)."""
    text = at.isoformat()
    return text.removesuffix("+00:00") + "Z" if at.utcoffset() == dt.timedelta(0) else text
