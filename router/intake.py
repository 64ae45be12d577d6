"""The adapter stage: agency events in, canonical FHIR messages out on ``sambus.intents``."""

from __future__ import annotations

import json

from aiokafka.structs import ConsumerRecord

from adapters import translate_message
from consent import Pseudonymizer
from contracts.intent import Intent
from contracts.topics import SCHEMA_VERSION, Header, Topics
from router.outgoing import Outgoing


class Intake:
    """Validates and translates one agency event; invalid ones raise and are dead-lettered by the stage."""

    def __init__(self, *, topics: Topics, pseudonymizer: Pseudonymizer) -> None:
        """Publish to ``topics.intents``, keyed by pseudonyms from ``pseudonymizer``."""
        self._topics = topics
        self._pseudonymizer = pseudonymizer

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        """The intents one agency event becomes."""
        intents = translate_message(record.value, record.headers or ())
        return [self.intent_record(intent) for intent in intents]

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
