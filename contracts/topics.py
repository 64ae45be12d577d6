"""The Kafka contract: topic names and settings, message keys and header names.

Topic names are declared once here. A deployment (or a test) may put a prefix in front of every
name, so several sambus instances can share a cluster without sharing topics.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

AGENCY_KINDS_WITH_EVENTS = ("school", "social", "ehr")
"""The source kinds that publish on ``agency.<kind>.events``."""

_SAMBUS_TOPIC_KINDS = ("agency.", "sambus.", "deliver.")
_RECIPIENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,98}$")


class Header:
    """Names of the Kafka headers sambus writes. None of them ever carries personal data."""

    EVENT_CODE = "sambus-event-code"
    MESSAGE_ID = "sambus-message-id"
    CORRELATION_ID = "sambus-correlation-id"
    SCHEMA_VERSION = "sambus-schema-version"
    SECURITY = "sambus-security"
    RECIPIENT = "sambus-recipient"
    DECISION = "sambus-decision"
    DECISION_REASON = "sambus-decision-reason"
    TRACEPARENT = "traceparent"
    DLQ_REASON = "sambus-dlq-reason"
    DLQ_ERROR = "sambus-dlq-error"
    DLQ_SOURCE_TOPIC = "sambus-dlq-source-topic"
    DLQ_SOURCE_PARTITION = "sambus-dlq-source-partition"
    DLQ_SOURCE_OFFSET = "sambus-dlq-source-offset"


KafkaHeaders = Sequence[tuple[str, bytes]]
"""A Kafka record's headers as aiokafka gives and takes them: (name, value) pairs, a name may repeat."""


@dataclass(frozen=True)
class RecordHeaders:
    """A Kafka record's headers, read one way everywhere: where a name repeats, its first value counts."""

    items: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def of(cls, headers: Iterable[tuple[str, bytes]] | None) -> RecordHeaders:
        """The headers of a record (aiokafka gives ``None`` for none)."""
        return cls(tuple((name, bytes(value)) for name, value in headers or ()))

    def get(self, name: str) -> bytes | None:
        """The value of ``name``, or None when the record has no such header."""
        for key, value in self.items:
            if key == name:
                return value
        return None

    def text(self, name: str, *, errors: Literal["strict", "replace"] = "strict") -> str | None:
        """The value of ``name`` as UTF-8 text, or None when the record has no such header.

        Raises:
            UnicodeDecodeError: the value is not UTF-8 (only with ``errors="strict"``).
        """
        value = self.get(name)
        return None if value is None else value.decode("utf-8", errors=errors)

    def without(self, names: Collection[str]) -> tuple[tuple[str, bytes], ...]:
        """The headers other than ``names``, in their order."""
        return tuple((key, value) for key, value in self.items if key not in names)


SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class TopicSpec:
    """A topic and the settings sambus creates it with."""

    name: str
    partitions: int = 3
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Topics:
    """The names of sambus's topics, with an optional deployment prefix."""

    prefix: str = ""

    def agency_events(self, kind: str) -> str:
        """The topic a source system of ``kind`` (school, social, ehr) publishes its events on."""
        if kind not in AGENCY_KINDS_WITH_EVENTS:
            raise ValueError(
                f"unknown agency kind {kind!r}; expected one of {', '.join(AGENCY_KINDS_WITH_EVENTS)}"
            )
        return f"{self.prefix}agency.{kind}.events"

    @property
    def intents(self) -> str:
        """Canonical FHIR message Bundles, keyed by the child's pseudonym."""
        return f"{self.prefix}sambus.intents"

    @property
    def dlq(self) -> str:
        """Dead letters: the original bytes, with the reason in headers."""
        return f"{self.prefix}sambus.dlq"

    @property
    def parked(self) -> str:
        """Deliveries awaiting consent."""
        return f"{self.prefix}sambus.parked"

    def deliver(self, recipient: str) -> str:
        """The topic a recipient system reads its deliveries from."""
        if not _RECIPIENT.match(recipient):
            raise ValueError(f"recipient id {recipient!r} must be lower-case letters, digits and '-'")
        return f"{self.prefix}deliver.{recipient}"

    def is_ours(self, name: str) -> bool:
        """Whether ``name`` is one of this sambus's topics (its prefix, then agency., sambus. or deliver.)."""
        return name.startswith(self.prefix) and name[len(self.prefix) :].startswith(_SAMBUS_TOPIC_KINDS)

    def specs(self, recipients: tuple[str, ...] = ()) -> list[TopicSpec]:
        """Every topic sambus needs, for the given recipients, with its settings."""
        week = str(7 * 24 * 3600 * 1000)
        specs = [
            TopicSpec(self.agency_events(kind), config={"retention.ms": week})
            for kind in AGENCY_KINDS_WITH_EVENTS
        ]
        specs += [
            TopicSpec(self.intents, config={"retention.ms": week}),
            TopicSpec(self.dlq, partitions=1, config={"retention.ms": str(30 * 24 * 3600 * 1000)}),
            TopicSpec(self.parked, config={"retention.ms": str(30 * 24 * 3600 * 1000)}),
        ]
        specs += [
            TopicSpec(self.deliver(recipient), config={"retention.ms": week}) for recipient in recipients
        ]
        return specs
