"""The envelope every inbound event arrives in, and the registry of event types.

Two ways in, one result:

* **Plain JSON** with a declared type, shaped like a CloudEvent in structured mode::

      {"type": "se.sambus.school.sip-initiated.v1", "id": "...", "source": "...",
       "time": "2026-11-20T09:00:00+01:00", "data": {...}}

* **CloudEvents, Kafka binary binding**: ``ce_type``, ``ce_id``, ``ce_source``, ``ce_time`` (and
  ``ce_specversion``) headers, and the ``data`` object as the message value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from sambus.contracts.bounded_json import load_json
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.events import EVENT_TYPES, EventModel
from sambus.contracts.topics import KafkaHeaders, RecordHeaders


class Envelope(BaseModel):
    """Who sent an event, what type it is, its id and time, and its unparsed ``data``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str = Field(min_length=1, max_length=200)
    id: str = Field(min_length=1, max_length=200, description="Unique per source; a re-send repeats it.")
    source: str = Field(min_length=1, max_length=200, description="The sending system, e.g. a URI.")
    time: AwareDatetime = Field(description="When it happened, with its UTC offset (RFC 3339).")
    data: dict[str, Any]


def _header(headers: KafkaHeaders, name: str) -> str | None:
    try:
        return RecordHeaders.of(headers).text(name)
    except UnicodeDecodeError as exc:
        raise InvalidEventError("header is not UTF-8", field=name) from exc


def describe_validation_error(exc: ValidationError, *, prefix: str = "") -> InvalidEventError:
    """Turn a pydantic error into an :class:`InvalidEventError` naming the first bad field.

    The value itself is never repeated: it may be a personal identity number.
    """
    first = exc.errors(include_url=False, include_input=False)[0]
    location = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    field = f"{prefix}{location}" if location else prefix.rstrip(".") or None
    return InvalidEventError(message, field=field)


def open_envelope(value: bytes | None, headers: KafkaHeaders = ()) -> Envelope:
    """Read the envelope of an inbound Kafka message.

    Raises:
        InvalidEventError: the bytes or headers do not make an envelope.
    """
    if value is None:
        raise InvalidEventError("the message has no value (a tombstone is not an event)")
    payload = load_json(value)
    if not isinstance(payload, dict):
        raise InvalidEventError("the message must be a JSON object")
    raw: Mapping[str, Any]
    if _header(headers, "ce_specversion") is not None or _header(headers, "ce_type") is not None:
        raw = {
            "type": _header(headers, "ce_type"),
            "id": _header(headers, "ce_id"),
            "source": _header(headers, "ce_source"),
            "time": _header(headers, "ce_time"),
            "data": payload,
        }
        prefix = "ce_"
    else:
        raw = payload
        prefix = ""
    try:
        return Envelope.model_validate(raw)
    except ValidationError as exc:
        error = describe_validation_error(exc)
        field = f"{prefix}{error.field}" if error.field and prefix and "." not in error.field else error.field
        raise InvalidEventError(error.problem, field=field) from exc


def parse_event(envelope: Envelope) -> EventModel:
    """Validate an envelope's ``data`` against the model its ``type`` declares.

    Raises:
        InvalidEventError: the type is unknown or the data does not match it.
    """
    model = EVENT_TYPES.get(envelope.type)
    if model is None:
        raise InvalidEventError(f"unknown event type {envelope.type!r}", field="type")
    try:
        return model.model_validate(envelope.data)
    except ValidationError as exc:
        raise describe_validation_error(exc, prefix="data.") from exc
