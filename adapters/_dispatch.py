"""Finding the translation for an inbound event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.school import translate_sip_initiated
from contracts.envelope import Envelope, KafkaHeaders, open_envelope, parse_event
from contracts.errors import InvalidEventError
from contracts.events import EventModel, SipInitiated
from contracts.intent import Intent

_Translator = Callable[[Envelope, Any], list[Intent]]

_TRANSLATORS: dict[type[EventModel], _Translator] = {
    SipInitiated: translate_sip_initiated,
}


def translate(envelope: Envelope) -> list[Intent]:
    """Validate the envelope's event and translate it into canonical FHIR messages.

    Raises:
        InvalidEventError: the event is not valid; the error names the field and the problem.
    """
    event = parse_event(envelope)
    translator = _TRANSLATORS.get(type(event))
    if translator is None:  # pragma: no cover - every registered event type has a translator (tested)
        raise InvalidEventError(f"no translation for {envelope.type!r}", field="type")
    return translator(envelope, event)


def translate_message(value: bytes | None, headers: KafkaHeaders = ()) -> list[Intent]:
    """Translate an inbound Kafka message (plain JSON or CloudEvents binary binding).

    Raises:
        InvalidEventError: the bytes, the envelope or the event are not valid.
    """
    return translate(open_envelope(value, headers))
