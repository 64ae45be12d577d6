"""The adapter stage: agency events in, canonical FHIR messages out on ``sambus.intents``."""

from __future__ import annotations

import json
import logging
from typing import Protocol

from aiokafka.structs import ConsumerRecord

from sambus.adapters import translate_message
from sambus.consent import Pseudonymizer
from sambus.contracts.intent import Intent
from sambus.contracts.topics import SCHEMA_VERSION, Header, Topics
from sambus.router.kafka.records import Outgoing
from sambus.router.stages.seen_events import NoSeenEvents

logger = logging.getLogger(__name__)


class EventMemory(Protocol):
    """Tells whether an intent's message id is new (see :class:`~.seen_events.SeenEvents`)."""

    def claim(self, message_id: str) -> bool:
        """Whether ``message_id`` is new; a new id is remembered."""
        ...


class Intake:
    """Validates and translates one agency event; invalid ones raise and are dead-lettered by the stage."""

    def __init__(
        self, *, topics: Topics, pseudonymizer: Pseudonymizer, seen: EventMemory | None = None
    ) -> None:
        """Publish to ``topics.intents``, keyed by pseudonyms from ``pseudonymizer``.

        ``seen`` drops intents already committed (a re-sent event); without it every event is new.
        """
        self._topics = topics
        self._pseudonymizer = pseudonymizer
        self._seen: EventMemory = seen if seen is not None else NoSeenEvents()

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        """The intents one agency event becomes, less those already made from an earlier copy of it."""
        intents = translate_message(record.value, record.headers or ())
        fresh = [intent for intent in intents if self._seen.claim(intent.message_id)]
        if len(fresh) < len(intents):
            logger.info(
                "intake dropped %d duplicate intent(s) from %s[%d]@%d",
                len(intents) - len(fresh), record.topic, record.partition, record.offset,
            )  # fmt: skip
        return [self.intent_record(intent) for intent in fresh]

    def intent_record(self, intent: Intent) -> Outgoing:
        """An intent as a Kafka record: key = the child's pseudonym, routing facts in headers."""
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
            value=json.dumps(intent.bundle, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
            headers=tuple(headers),
        )
