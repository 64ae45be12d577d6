"""The Kafka contract: topic names and settings, message keys and header names.

Topic names are declared once here. A deployment (or a test) may put a prefix in front of every
name, so several sambus instances can share a cluster without sharing topics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
