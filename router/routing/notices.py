"""Notices: what became of an initiator's message; a request that will get no answer through sambus.

An initiator is told when its message is denied, waits, is released or expires; a requester is told when
the answer to its request is denied because the consent the request rested on lapsed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sambus.contracts.bounded_json import dump_json
from sambus.contracts.fhir import EventCode
from sambus.contracts.fhir.codes import MESSAGE_ID_SYSTEM, PROCESS_ID_SYSTEM, TASK_ID_SYSTEM
from sambus.contracts.fhir.notices import Addressee, notice
from sambus.contracts.topics import SCHEMA_VERSION, Header, Topics
from sambus.router.kafka.records import Outgoing
from sambus.router.routing.directory import Recipient
from sambus.router.routing.rules import RoutingRules


def addressee(recipient: Recipient) -> Addressee:
    """A directory recipient as the addressee of a notice."""
    first = recipient.identifiers[0]
    return Addressee(recipient_id=recipient.id, name=recipient.name, system=first.system, value=first.value)


def _record(
    topics: Topics,
    to: Recipient,
    event: EventCode,
    data: Mapping[str, Any],
    *,
    key: bytes | None,
    correlation_id: bytes | None,
) -> Outgoing:
    """The Kafka record that carries notice ``data`` to ``to``: its delivery topic and sambus's headers."""
    headers = [
        (Header.EVENT_CODE, str(event).encode("ascii")),
        (Header.MESSAGE_ID, str(data["id"]).encode("ascii")),
        (Header.SCHEMA_VERSION, SCHEMA_VERSION.encode("ascii")),
        (Header.RECIPIENT, to.id.encode("ascii")),
    ]
    if correlation_id is not None:
        headers.append((Header.CORRELATION_ID, correlation_id))
    return Outgoing(
        topic=topics.deliver(to.topic_suffix),
        key=key,
        value=dump_json(data, floats=False),  # a notice is built of strings, objects and lists
        headers=tuple(headers),
    )


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
    return _record(topics, initiator, event, data, key=key, correlation_id=correlation_id)


def refusal_notice(
    *,
    topics: Topics,
    to: Recipient,
    message: Mapping[str, Any],
    text: str,
    key: bytes | None,
    correlation_id: bytes | None,
    at: dt.datetime,
) -> Outgoing:
    """A ``delivery-denied`` notice to ``to``, the sender of ``message``: sambus refused the message."""
    data = notice(
        event=EventCode.DELIVERY_DENIED,
        to=addressee(to),
        about=_sent_event(message),
        text=text,
        at=at,
        key="refused",
    )
    return _record(topics, to, EventCode.DELIVERY_DENIED, data, key=key, correlation_id=correlation_id)


LAPSED_TEXT = {
    "withdrawn": "the consent it rested on was withdrawn",
    "objected": "the child objected to the sharing it rested on",
}
"""Why a consent no longer holds, as a requester is told it (the registry's words name ids and persons)."""


def denied_answer_told(lapsed: str | None) -> str:
    """What the ledger adds to a denied answer's reason: who is told what.

    The answering unit sent the message, so it is told why it was denied. The requester is told only when
    the consent its request rested on lapsed (``lapsed``), and then only that no answer will come, never
    the answer (its status, its content): that is what secrecy now covers.
    """
    if lapsed is None:
        return (
            "; the answering unit is told why; the requester is not told (nothing of the answer may reach it)"
        )
    return (
        "; the answering unit is told why; the requester is told that its request will not be answered "
        f"through sambus ({LAPSED_TEXT.get(lapsed, lapsed)}), without the answer"
    )


def unanswered_notice(
    *,
    topics: Topics,
    answer: Mapping[str, Any],
    requester: Recipient,
    answerer: Recipient,
    lapsed: str,
    key: bytes | None,
    correlation_id: bytes | None,
    at: dt.datetime,
) -> Outgoing | None:
    """A ``delivery-denied`` notice to ``requester``: its request to ``answerer`` gets no answer via sambus.

    About the process and the requester's own Task (by identifier); it says why the consent lapsed and
    nothing of the answer. ``None`` when the answer names no process or Task.
    """
    task = next(
        (
            entry["resource"]
            for entry in answer.get("entry", [])
            if isinstance(entry, Mapping) and (entry.get("resource") or {}).get("resourceType") == "Task"
        ),
        None,
    )
    if not isinstance(task, Mapping):
        return None
    process = (task.get("groupIdentifier") or {}).get("value")
    task_ids = [
        str(i["value"])
        for i in task.get("identifier") or []
        if isinstance(i, Mapping) and i.get("system") == TASK_ID_SYSTEM and i.get("value")
    ]
    if not process or not task_ids:
        return None
    event = EventCode.DELIVERY_DENIED
    data = notice(
        event=event,
        to=addressee(requester),
        about={"system": PROCESS_ID_SYSTEM, "value": str(process)},
        tasks=task_ids,
        text=(
            f"{answerer.name} ({answerer.id}): no answer to this request will be delivered through sambus: "
            f"{LAPSED_TEXT.get(lapsed, lapsed)}"
        ),
        at=at,
        key=f"unanswered:{answerer.id}:{task_ids[0]}",
    )
    return _record(topics, requester, event, data, key=key, correlation_id=correlation_id)
