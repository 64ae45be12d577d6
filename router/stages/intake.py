"""The adapter stage: agency events in, canonical FHIR messages out on ``sambus.intents``."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Collection, Sequence
from typing import NamedTuple, Protocol

from aiokafka.structs import ConsumerRecord

from sambus.adapters import translate_message
from sambus.consent import Pseudonymizer
from sambus.contracts.bounded_json import dump_json
from sambus.contracts.intent import Intent
from sambus.contracts.topics import SCHEMA_VERSION, Header, Topics
from sambus.router.kafka.records import Outgoing
from sambus.router.stages.seen_events import NoSeenEvents

logger = logging.getLogger(__name__)


class EventMemory(Protocol):
    """Tells whether an intent's message id is new (see :class:`~.seen_events.SeenEvents`)."""

    def look_up(self, message_ids: Collection[str]) -> None:
        """Read at once whether each of a batch's ids is new (blocking: called in a worker thread)."""
        ...

    def claim(self, message_id: str) -> bool:
        """Whether ``message_id`` is new; a new id is remembered."""
        ...


_Offset = tuple[str, int, int]


class _Made(NamedTuple):
    """An intent a batch's event became: its message id, and its record (or the intent, if that failed)."""

    message_id: str
    record: Outgoing | Intent


_MAY_HOLD_FLOAT = re.compile(
    rb"(?:\A(?:\xef\xbb\xbf)?|[\[:,\s])-?[0-9]+(?:\.[0-9]|[eE][+-]?[0-9])|NaN|Infinity"
)
"""A non-integer JSON number: after ``[``, ``:``, ``,``, whitespace, nothing or a BOM, ``-``, digits,
then a fraction or an exponent; or ``NaN``/``Infinity``, which ``json.loads`` reads as floats too."""


def float_free(value: bytes | None) -> bool:
    """Whether an event's bytes surely hold no non-integer number, so neither do the intents made of it.

    Conservative: such a number inside a string (``"at 10.30"``) also says "may hold one". Bytes with a NUL
    may be UTF-16/32 JSON (which ``json.loads`` reads; a digit and its ``.`` are then bytes apart) and are
    never called float-free. A translated intent holds the event's values (strings, integers, dates written
    as strings), the header strings and the builders' own strings: no builder makes a float of its own.
    """
    return value is not None and b"\x00" not in value and _MAY_HOLD_FLOAT.search(value) is None


class Intake:
    """Validates and translates one agency event; invalid ones raise and are dead-lettered by the stage.

    Give :meth:`prepare` to its stage: a batch's events are then translated first and the seen-events
    table asked about all their intents in one query, not one per intent.
    """

    YIELD_EVERY = 50
    """:meth:`prepare` lets the event loop run after this many events."""

    def __init__(
        self, *, topics: Topics, pseudonymizer: Pseudonymizer, seen: EventMemory | None = None
    ) -> None:
        """Publish to ``topics.intents``, keyed by pseudonyms from ``pseudonymizer``.

        ``seen`` drops intents already committed (a re-sent event); without it every event is new.
        """
        self._topics = topics
        self._pseudonymizer = pseudonymizer
        self._seen: EventMemory = seen if seen is not None else NoSeenEvents()
        self._translated: dict[_Offset, list[_Made] | Exception] = {}

    async def prepare(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Before a batch is handled: translate its events and read which of their intents were committed.

        An event that does not translate keeps its error, raised when the handler comes to it (and the stage
        dead-letters it, as ever). Each intent is kept as the record it becomes (:meth:`intent_record`), so
        a batch's FHIR Bundles are freed as they are written rather than held, hundreds of thousands of
        objects, for the garbage collector to walk again and again. The read runs in a worker thread, so
        the event loop goes on polling Kafka.
        """
        translated: dict[_Offset, list[_Made] | Exception] = {}
        for n, record in enumerate(records, 1):
            if n % self.YIELD_EVERY == 0:
                await asyncio.sleep(0)  # heartbeats and fetches go on during a long batch
            try:
                intents = translate_message(record.value, record.headers or ())
            except Exception as exc:  # noqa: BLE001 - raised again by the handler, for this record only
                translated[record.topic, record.partition, record.offset] = exc
                continue
            floats = not float_free(record.value)
            translated[record.topic, record.partition, record.offset] = [
                self._made(intent, floats=floats) for intent in intents
            ]
        self._translated = translated
        ids = [i.message_id for made in translated.values() if isinstance(made, list) for i in made]
        if ids:
            await asyncio.to_thread(self._seen.look_up, ids)

    def _made(self, intent: Intent, *, floats: bool) -> _Made:
        """The intent as its record, or as it is when making the record fails (raised by the handler)."""
        try:
            return _Made(intent.message_id, self.intent_record(intent, floats=floats))
        except Exception:  # noqa: BLE001 - made again, and raised, only if the handler comes to it
            return _Made(intent.message_id, intent)

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        """The intents one agency event becomes, less those already made from an earlier copy of it."""
        made = self._translated.pop((record.topic, record.partition, record.offset), None)
        if isinstance(made, Exception):
            raise made
        if made is None:
            made = [
                _Made(intent.message_id, intent)
                for intent in translate_message(record.value, record.headers or ())
            ]
        fresh = [one for one in made if self._seen.claim(one.message_id)]
        if len(fresh) < len(made):
            logger.info(
                "intake dropped %d duplicate intent(s) from %s[%d]@%d",
                len(made) - len(fresh), record.topic, record.partition, record.offset,
            )  # fmt: skip
        return [
            one.record
            if isinstance(one.record, Outgoing)
            else self.intent_record(one.record, floats=not float_free(record.value))
            for one in fresh
        ]

    def intent_record(self, intent: Intent, *, floats: bool = True) -> Outgoing:
        """An intent as a Kafka record: key = the child's pseudonym, routing facts in headers.

        ``floats=False`` (the event it came from is :func:`float_free`) writes its JSON the faster way of
        :func:`~sambus.contracts.bounded_json.dump_json`, byte for byte the same.
        """
        headers = [
            (Header.EVENT_CODE, str(intent.event).encode("ascii")),
            (Header.MESSAGE_ID, intent.message_id.encode("ascii")),
            (Header.CORRELATION_ID, intent.correlation_id.encode("ascii")),
            (Header.SCHEMA_VERSION, SCHEMA_VERSION.encode("ascii")),
        ]
        if intent.security:
            headers.append((Header.SECURITY, ",".join(intent.security).encode("ascii")))
        return Outgoing(
            topic=self._topics.intents,
            key=self._pseudonymizer.of(intent.child_personnummer).encode("ascii"),
            value=dump_json(intent.bundle, floats=floats),
            headers=tuple(headers),
        )
