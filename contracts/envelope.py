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


def _field_names(schema: Any) -> set[str]:  # noqa: ANN401 - JSON Schema
    """Every property name declared anywhere in a JSON Schema."""
    names: set[str] = set()
    if isinstance(schema, dict):
        properties = schema.get("properties")
        if isinstance(properties, dict):
            names.update(properties)
        for value in schema.values():
            names |= _field_names(value)
    elif isinstance(schema, list):
        for value in schema:
            names |= _field_names(value)
    return names


_KNOWN_FIELDS = frozenset(
    _field_names([Envelope.model_json_schema()])
    | {name for model in EVENT_TYPES.values() for name in _field_names(model.model_json_schema())}
)
"""The field names the contracts declare: only these are repeated in an error's location."""

UNKNOWN_KEY = "<key>"
"""Stands for a key the contracts do not declare (its name is the sender's, and may be personal data)."""


def _location_part(part: str | int) -> str:
    return str(part) if isinstance(part, int) or part in _KNOWN_FIELDS else UNKNOWN_KEY


def describe_validation_error(
    exc: ValidationError, *, prefix: str = "", hide_unknown_keys: bool = True
) -> InvalidEventError:
    """Turn a pydantic error into an :class:`InvalidEventError` naming the first bad field.

    Neither the value nor a key the contracts do not declare is repeated: either may be a personal
    identity number or a name. Such a key is shown as ``<key>`` (``hide_unknown_keys=False`` keeps every
    key, for files an operator wrote, such as the routing directory).
    """
    first = exc.errors(include_url=False, include_input=False)[0]
    location = ".".join(_location_part(part) if hide_unknown_keys else str(part) for part in first["loc"])
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
        raise InvalidEventError("unknown event type (not one of the contracts' types)", field="type")
    try:
        return model.model_validate(envelope.data)
    except ValidationError as exc:
        raise describe_validation_error(exc, prefix="data.") from exc
