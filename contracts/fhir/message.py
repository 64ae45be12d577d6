"""Building FHIR R4 message Bundles with ``fhir.resources`` (R4B models, R4-compatible JSON)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.messageheader import MessageHeader
from fhir.resources.R4B.patient import Patient

from sambus.contracts.fhir._validated import validated
from sambus.contracts.fhir.codes import (
    EVENT_SYSTEM,
    ROUTING_ADDRESS_SYSTEM,
    SOURCE_ENDPOINT_PREFIX,
    SOURCE_EVENT_SYSTEM,
    EventCode,
)
from sambus.contracts.fhir.security import high_water_mark
from sambus.contracts.identifiers import PERSONNUMMER_SYSTEM

_NAMESPACE = uuid.UUID("6f1c1e52-8e59-4b8f-9d55-1d3f3c0a7b11")
_NAMESPACE_SHA1 = hashlib.sha1(_NAMESPACE.bytes, usedforsecurity=False)
"""SHA-1 over the namespace, copied for each id (what :func:`uuid.uuid5` hashes first)."""

Clock = Callable[[], dt.datetime]
"""Gives the current time (aware); injected where a test or the golden files need a fixed one."""


def utc_now() -> dt.datetime:
    """The current time in UTC: the clock a running sambus assembles messages by."""
    return dt.datetime.now(dt.UTC)


_ASSEMBLY_TIME: ContextVar[dt.datetime | None] = ContextVar("sambus_assembly_time", default=None)


@contextmanager
def assembled_at(at: dt.datetime) -> Iterator[None]:
    """Messages built inside the block get ``at`` as ``Bundle.timestamp`` (one instant per inbound event)."""
    token = _ASSEMBLY_TIME.set(at)
    try:
        yield
    finally:
        _ASSEMBLY_TIME.reset(token)


def assembly_time() -> dt.datetime:
    """When the message being built is assembled: the instant :func:`assembled_at` set, else now (UTC)."""
    at = _ASSEMBLY_TIME.get()
    return utc_now() if at is None else at


def deterministic_id(*parts: str) -> str:
    """A UUIDv5 of ``parts``: the same inbound event always yields the same ids.

    The parts are JSON-encoded as a list, so no choice of characters inside a part (a ``|`` in a source
    system's id, say) makes two different tuples give the same name.
    """
    try:  # what json.dumps(parts, ensure_ascii=False) makes of strings, without building an encoder
        name = "[" + ", ".join(map(encode_basestring, parts)) + "]"
    except TypeError:  # not a string after all
        name = json.dumps(parts, ensure_ascii=False)
    sha1 = _NAMESPACE_SHA1.copy()
    sha1.update(name.encode("utf-8"))
    digest = bytearray(sha1.digest()[:16])  # as uuid.uuid5 does: version 5, RFC 4122 variant
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    hexed = digest.hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def urn(resource_id: str) -> str:
    """The ``fullUrl`` of a resource inside a message Bundle."""
    return f"urn:uuid:{resource_id}"


def patient(*, personnummer: str, resource_id: str) -> Patient:
    """A Patient that carries only the child's personnummer (HL7 Sweden base identifier system)."""
    return Patient.model_validate(
        {
            "resourceType": "Patient",
            "id": resource_id,
            "identifier": [{"system": PERSONNUMMER_SYSTEM, "value": personnummer}],
        }
    )


@dataclass(frozen=True)
class MessageSource:
    """The system an inbound event came from and the event's own id."""

    system: str
    event_id: str


def _sender(focus: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    requesters = [resource.get("requester") for resource in focus]
    first = requesters[0] if requesters else None
    if not isinstance(first, dict) or any(r != first for r in requesters):
        return None
    identifier = first.get("identifier") or {}
    if first.get("type") != "Organization" or identifier.get("system") in {None, ROUTING_ADDRESS_SYSTEM}:
        return None
    return {"type": "Organization", "identifier": dict(identifier)}


def message_bundle(
    *,
    message_id: str,
    event: EventCode,
    source: MessageSource,
    focus: Sequence[Mapping[str, Any]],
    supporting: Sequence[Mapping[str, Any]],
    timestamp: dt.datetime | None = None,
    sender: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A message Bundle as JSON data: ``MessageHeader`` first, then the focal resources, then supporting ones.

    ``MessageHeader.sender`` and ``responsible`` name ``sender`` (an organisation's identifier: the
    answering unit of an answer), else the organisation that asks, when every focal resource has the same
    ``requester`` and it is an organisation's own identifier (not a routing address).
    ``Bundle.meta.security`` is the high-water mark of the resources' labels (:func:`high_water_mark`).
    ``Bundle.timestamp`` is when the message was assembled (``timestamp``, else :func:`assembly_time`), not
    when the event it reports happened (that is in the focal resources, e.g. ``Task.lastModified``).
    The resources must already be validated (the builders in :mod:`sambus.contracts.fhir` do) and have an
    ``id``;
    a resource's ``fullUrl`` is ``urn:uuid:<id>``. The header and the Bundle's own fields are validated
    here, without validating every resource a second time.
    """
    header_data: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": deterministic_id(message_id, "header"),
        "eventCoding": {"system": EVENT_SYSTEM, "code": str(event)},
    }
    by = _sender(focus) if sender is None else {"type": "Organization", "identifier": dict(sender)}
    if by is not None:
        header_data |= {"sender": by, "responsible": by}
    header_data |= {
        "source": {"name": source.system, "endpoint": f"{SOURCE_ENDPOINT_PREFIX}{source.system}"},
        "focus": [{"reference": urn(resource["id"])} for resource in focus],
    }
    header = validated(MessageHeader, header_data)
    resources = [header, *focus, *supporting]
    shell: dict[str, Any] = {"resourceType": "Bundle", "id": message_id}
    labels = high_water_mark(resources)
    if labels:
        shell["meta"] = {"security": labels}
    shell |= {
        "identifier": {"system": SOURCE_EVENT_SYSTEM, "value": f"{source.system}|{source.event_id}"},
        "type": "message",
        "timestamp": (assembly_time() if timestamp is None else timestamp).isoformat(),
    }
    validated(Bundle, {**shell, "entry": [{"fullUrl": urn(r["id"])} for r in resources]})
    return {**shell, "entry": [{"fullUrl": urn(r["id"]), "resource": dict(r)} for r in resources]}
