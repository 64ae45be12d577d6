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
from sambus.contracts.topics import AGENCY_KINDS_WITH_EVENTS, SCHEMA_VERSION, Header, Topics

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


def asyncapi() -> dict[str, Any]:
    """An AsyncAPI 3.0 document of every topic sambus reads and writes (without a deployment prefix)."""
    topics = Topics()
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
    channels: dict[str, Any] = {
        f"agency-{kind}-events": {
            "address": topics.agency_events(kind),
            "description": f"Events from {kind} systems: plain JSON envelopes or CloudEvents (ce_* headers).",
            "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in _channel_types(kind)},
        }
        for kind in AGENCY_KINDS_WITH_EVENTS
    }
    channels["intents"] = {
        "address": topics.intents,
        "description": "Canonical FHIR message Bundles; key = a keyed pseudonym of the child.",
        "messages": {"fhir-message": {"$ref": "#/components/messages/fhir-message"}},
    }
    channels["parked"] = {
        "address": topics.parked,
        "description": "Deliveries awaiting consent.",
        "messages": {"fhir-message": {"$ref": "#/components/messages/fhir-message"}},
    }
    channels["deliver"] = {
        "address": "deliver.{recipient}",
        "description": "What one recipient system reads: its own Task and what that refers to.",
        "parameters": {"recipient": {"description": "The recipient's id in the routing directory."}},
        "messages": {"fhir-message": {"$ref": "#/components/messages/fhir-message"}},
    }
    channels["dlq"] = {
        "address": topics.dlq,
        "description": "Dead letters: original bytes, reason and source topic/partition/offset in headers.",
        "messages": {"dead-letter": {"$ref": "#/components/messages/dead-letter"}},
    }
    operations: dict[str, Any] = {
        f"send-{kind}-events": {
            "action": "receive",
            "channel": {"$ref": f"#/channels/agency-{kind}-events"},
            "summary": f"sambus receives what {kind} systems publish.",
        }
        for kind in AGENCY_KINDS_WITH_EVENTS
    }
    operations["deliver"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/deliver"},
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
            "messages": {**messages, "fhir-message": fhir_message, "dead-letter": dead_letter},
        },
    }


def documents() -> dict[str, str]:
    """Every exported document, by its path under ``contracts/schemas/``."""
    result = {f"events/{t}.schema.json": _dump(event_schema(t)) for t in sorted(EVENT_TYPES)}
    result["asyncapi.json"] = _dump(asyncapi())
    result.update({f"fhir/{name}": _dump(resource) for name, resource in conformance.resources().items()})
    return result
