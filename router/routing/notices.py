"""Telling an initiator what became of its message: delivery denied, parked message expired."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sambus.contracts.fhir import EventCode
from sambus.contracts.fhir.codes import MESSAGE_ID_SYSTEM
from sambus.contracts.fhir.notices import Addressee, notice
from sambus.contracts.topics import SCHEMA_VERSION, Header, Topics
from sambus.router.kafka.records import Outgoing
from sambus.router.routing.directory import Recipient
from sambus.router.routing.rules import RoutingRules


def addressee(recipient: Recipient) -> Addressee:
    """A directory recipient as the addressee of a notice."""
    first = recipient.identifiers[0]
    return Addressee(recipient_id=recipient.id, name=recipient.name, system=first.system, value=first.value)


def _sent_event(message: Mapping[str, Any]) -> dict[str, str]:
    """What the initiator knows its message by: the event it sent (``Bundle.identifier``), else its id."""
    identifier = message.get("identifier")
    if isinstance(identifier, Mapping) and identifier.get("system") and identifier.get("value"):
        return {"system": str(identifier["system"]), "value": str(identifier["value"])}
    return {"system": MESSAGE_ID_SYSTEM, "value": str(message.get("id"))}


def initiator_notice(
    *,
    rules: RoutingRules,
    topics: Topics,
    event: EventCode,
    message: Mapping[str, Any],
    recipient: Recipient,
    text: str,
    key: bytes | None,
    correlation_id: bytes | None,
    at: dt.datetime,
) -> Outgoing | None:
    """A notice to the organisation that sent ``message`` about its message for ``recipient``.

    ``None`` when the sender is not in the routing directory (it cannot be told through sambus).
    """
    initiator = rules.initiator(message)
    if initiator is None:
        return None
    data = notice(
        event=event,
        to=addressee(initiator),
        about=_sent_event(message),
        text=f"{recipient.name} ({recipient.id}): {text}",
        at=at,
        key=recipient.id,
    )
    headers = [
        (Header.EVENT_CODE, str(event).encode("ascii")),
        (Header.MESSAGE_ID, str(data["id"]).encode("ascii")),
        (Header.SCHEMA_VERSION, SCHEMA_VERSION.encode("ascii")),
        (Header.RECIPIENT, initiator.id.encode("ascii")),
    ]
    if correlation_id is not None:
        headers.append((Header.CORRELATION_ID, correlation_id))
    return Outgoing(
        topic=topics.deliver(initiator.topic_suffix),
        key=key,
        value=json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        headers=tuple(headers),
    )
