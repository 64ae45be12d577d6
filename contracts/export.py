"""The published contract, as documents: JSON Schemas, AsyncAPI and FHIR conformance resources.

A JSON Schema per inbound event type, an AsyncAPI document and, under ``fhir/``, the FHIR conformance
resources of :mod:`sambus.contracts.fhir.conformance`. :func:`documents` renders them from the models and
:mod:`sambus.contracts.topics`; ``sambus contracts export`` writes them under ``contracts/schemas/`` and
``--check`` (and a test) fails when the checked-in copies drift.
"""

from __future__ import annotations

import json
from typing import Any

from sambus.contracts.envelope import Envelope
from sambus.contracts.events import EVENT_TYPES
from sambus.contracts.fhir import conformance
from sambus.contracts.topics import SCHEMA_VERSION, TOPICS, Header, TopicKind

SCHEMA_BASE = "https://sambus.se/schemas"


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def event_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of one inbound event type: the envelope, with ``data`` matching the type's model."""
    model = EVENT_TYPES[event_type]
    data = model.model_json_schema(by_alias=True, mode="validation")
    envelope = Envelope.model_json_schema(mode="validation")
    envelope["properties"]["type"] = {"const": event_type, "title": "Type"}
    envelope["properties"]["data"] = {"$ref": "#/$defs/" + model.__name__}
    defs = {**data.pop("$defs", {}), model.__name__: data}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}/events/{event_type}.schema.json",
        **envelope,
        "title": event_type,
        "description": (model.__doc__ or "").strip(),
        "$defs": defs,
    }


def _channel_types(kind: str) -> list[str]:
    return sorted(t for t in EVENT_TYPES if t.startswith((f"se.sambus.{kind}.", "se.sambus.sip.")))


_PARAMETERS = {
    "recipient": "The recipient's id in the routing directory.",
    "level": "The retry level, 1 to the number of SAMBUS_RETRY_DELAYS_S.",
}
_TIMER_FIRED = {
    "name": "timer-fired",
    "title": "A process deadline timer that has fired",
    "description": "Key: <deadline id>|<reminder or escalation>; value: when it fired (ISO 8601).",
    "contentType": "text/plain",
}
_DEAD_LETTER_REPLAYED = {
    "name": "dead-letter-replayed",
    "title": "A dead letter put back on its source topic",
    "description": "Key: the dead letter's <partition>:<offset> on sambus.dlq; value: the word replayed.",
    "contentType": "text/plain",
}


def _channel(kind: TopicKind) -> dict[str, Any]:
    if kind.message == "agency-events":
        source = kind.address.split(".")[1]
        messages = {t: {"$ref": f"#/components/messages/{t}"} for t in _channel_types(source)}
    else:
        messages = {kind.message: {"$ref": f"#/components/messages/{kind.message}"}}
    channel: dict[str, Any] = {"address": kind.address, "description": kind.description, "messages": messages}
    if kind.parameter is not None:
        channel["parameters"] = {kind.parameter: {"description": _PARAMETERS[kind.parameter]}}
    return channel


def asyncapi() -> dict[str, Any]:
    """An AsyncAPI 3.0 document of every topic in the list of topics, without a deployment prefix."""
    messages: dict[str, Any] = {
        event_type: {
            "name": event_type,
            "title": event_type,
            "summary": (EVENT_TYPES[event_type].__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "payload": {"$ref": f"events/{event_type}.schema.json"},
        }
        for event_type in sorted(EVENT_TYPES)
    }
    fhir_message = {
        "name": "fhir-message",
        "title": "FHIR R4 message Bundle",
        "contentType": "application/fhir+json",
        "headers": {
            "type": "object",
            "properties": {
                name: {"type": "string"}
                for name in (
                    Header.EVENT_CODE,
                    Header.MESSAGE_ID,
                    Header.CORRELATION_ID,
                    Header.SCHEMA_VERSION,
                )
            },
        },
        "payload": {"$ref": "https://hl7.org/fhir/R4/fhir.schema.json#/definitions/Bundle"},
    }
    dead_letter = {
        "name": "dead-letter",
        "title": "The original bytes of an event that could not be accepted",
        "headers": {
            "type": "object",
            "properties": {
                name: {"type": "string"}
                for name in (
                    Header.DLQ_REASON,
                    Header.DLQ_ERROR,
                    Header.DLQ_SOURCE_TOPIC,
                    Header.DLQ_SOURCE_PARTITION,
                    Header.DLQ_SOURCE_OFFSET,
                )
            },
        },
    }
    channels = {kind.channel: _channel(kind) for kind in TOPICS}
    operations: dict[str, Any] = {}
    for kind in TOPICS:
        if kind.operation == "receive":
            source = kind.address.split(".")[1]
            operations[f"send-{source}-events"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{kind.channel}"},
                "summary": f"sambus receives what {source} systems publish.",
            }
        elif kind.operation == "send":
            operations[kind.channel] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{kind.channel}"},
                "summary": "sambus sends each recipient its messages.",
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "sambus",
            "version": SCHEMA_VERSION,
            "description": "Messaging between schools, social services and health and dental care.",
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {
                **messages,
                "fhir-message": fhir_message,
                "dead-letter": dead_letter,
                "timer-fired": _TIMER_FIRED,
                "dead-letter-replayed": _DEAD_LETTER_REPLAYED,
            },
        },
    }


def documents() -> dict[str, str]:
    """Every exported document, by its path under ``contracts/schemas/``."""
    result = {f"events/{t}.schema.json": _dump(event_schema(t)) for t in sorted(EVENT_TYPES)}
    result["asyncapi.json"] = _dump(asyncapi())
    result.update({f"fhir/{name}": _dump(resource) for name, resource in conformance.resources().items()})
    return result
