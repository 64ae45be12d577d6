"""Messages sambus makes itself and sends to the organisation concerned.

A delivery was denied, a message waits for consent (or another answer) and later was released or expired,
a deadline is near or has passed, a child with a SIP is turning 18.

Each is a FHIR message Bundle (``MessageHeader`` first) built and validated with ``fhir.resources``. Its focus
is a ``Communication`` (category ``notification``) to the organisation, ``about`` the event or process it
concerns by identifier, with the text as payload and an ``OperationOutcome`` (severity, issue type) beside
it. It names the organisation and the reason, never the child. A notice is not a response to a message the
organisation sent, so ``MessageHeader.response`` is not used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.messageheader import MessageHeader
from fhir.resources.R4B.operationoutcome import OperationOutcome

from sambus.contracts.fhir.codes import (
    DESTINATION_ENDPOINT_PREFIX,
    EVENT_SYSTEM,
    SOURCE_ENDPOINT_PREFIX,
    TASK_ID_SYSTEM,
    EventCode,
)
from sambus.contracts.fhir.message import deterministic_id, urn

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
    outcome = OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "id": outcome_id,
            "issue": [{"severity": severity, "code": code, "diagnostics": text}],
        }
    )
    communication = Communication.model_validate(
        {
            "resourceType": "Communication",
            "id": communication_id,
            "status": "completed",
            "category": [_NOTIFICATION],
            "priority": "urgent" if severity == "error" else "routine",
            "about": [
                {"identifier": {"system": about["system"], "value": about["value"]}},
                *({"type": "Task", "identifier": {"system": TASK_ID_SYSTEM, "value": t}} for t in tasks),
            ],
            "sent": at,
            "recipient": [receiver],
            "payload": [{"contentString": text}, {"contentReference": {"reference": urn(outcome_id)}}],
        }
    )
    header = MessageHeader.model_validate(
        {
            "resourceType": "MessageHeader",
            "id": header_id,
            "eventCoding": {"system": EVENT_SYSTEM, "code": str(event)},
            "source": {"name": SAMBUS_SOURCE, "endpoint": f"{SOURCE_ENDPOINT_PREFIX}{SAMBUS_SOURCE}"},
            "destination": [
                {
                    "name": to.name,
                    "endpoint": f"{DESTINATION_ENDPOINT_PREFIX}{to.recipient_id}",
                    "receiver": receiver,
                }
            ],
            "focus": [{"reference": urn(communication_id)}],
        }
    )
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "id": message_id,
            "type": "message",
            "timestamp": at,
            "entry": [
                {"fullUrl": urn(header_id), "resource": header},
                {"fullUrl": urn(communication_id), "resource": communication},
                {"fullUrl": urn(outcome_id), "resource": outcome},
            ],
        }
    )
    data: dict[str, object] = bundle.model_dump(mode="json", exclude_none=True)
    return data
