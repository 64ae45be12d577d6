"""The Kafka contract: the one list of topics, their settings, message keys and header names.

Every topic sambus reads or writes is in :data:`TOPICS`, and nowhere else: topic creation
(:meth:`Topics.specs`), ``sambus queues`` (:meth:`Topics.is_ours`) and the AsyncAPI document
(:mod:`sambus.contracts.export`) are all made from it. A deployment (or a test) may put a prefix in front
of every name, so several sambus instances can share a cluster without sharing topics.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

AGENCY_KINDS_WITH_EVENTS = ("school", "social", "ehr")
"""The source kinds that publish on ``agency.<kind>.events``."""

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
    RETRY_ATTEMPT = "sambus-retry-attempt"
    """How many times the record has failed so far."""
    RETRY_NOT_BEFORE = "sambus-retry-not-before"
    """When (epoch milliseconds) the next attempt may start."""
    RETRY_HISTORY = "sambus-retry-history"
    """JSON list of the attempts, each ``{"attempt", "at", "error", "reason"}``."""
    RETRY_SOURCE_TOPIC = "sambus-retry-source-topic"
    """The topic a retried record first came from."""
    RETRY_SOURCE_PARTITION = "sambus-retry-source-partition"
    """Its partition there."""
    RETRY_SOURCE_OFFSET = "sambus-retry-source-offset"
    """Its offset there."""
    PARKED_SINCE = "sambus-parked-since"
    """When (epoch milliseconds) the message was first parked."""
    PARKED_CHECK_AT = "sambus-parked-check-at"
    """When (epoch milliseconds) consent is next decided again."""
    PARKED_DELIVER_TO = "sambus-parked-deliver-to"
    """The delivery topic suffix of the organisation that receives it once released (it or a relay)."""
    DLQ_PSEUDONYM = "sambus-dlq-pseudonym"
    """The key of a dead-lettered intent (the child's pseudonym), sealed with the original, for a replay."""
    DLQ_PAYLOAD_OMITTED = "sambus-dlq-payload-omitted"
    """``true`` when the dead letter is a reference, without the record's value and headers."""
    DLQ_SEALED = "sambus-dlq-sealed"
    """How a dead letter's original is kept: ``aes-256-gcm`` (sealed) or ``dropped`` (no key configured)."""
    DLQ_KEY_ID = "sambus-dlq-key-id"
    """The id of the key that sealed a dead letter's original."""
    DLQ_SIZE = "sambus-dlq-size"
    """The size in bytes of a dead letter's original value."""


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

    @staticmethod
    def first_text(
        headers: Iterable[tuple[str, bytes]] | None,
        name: str,
        *,
        errors: Literal["strict", "replace"] = "strict",
    ) -> str | None:
        """What ``RecordHeaders.of(headers).text(name)`` reads, without copying every header first.

        For the per-record hot paths (metrics, tracing), where the copy cost more than the look-up.

        Raises:
            UnicodeDecodeError: the value is not UTF-8 (only with ``errors="strict"``).
        """
        for key, value in headers or ():
            if key == name:
                return bytes(value).decode("utf-8", errors=errors)
        return None

    def without(self, names: Collection[str]) -> tuple[tuple[str, bytes], ...]:
        """The headers other than ``names``, in their order."""
        return tuple((key, value) for key, value in self.items if key not in names)


SCHEMA_VERSION = "1"


DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicKind:
    """One entry of the list of topics: its name (with at most one ``{parameter}``) and what it holds.

    Attributes:
        channel: the AsyncAPI channel id.
        address: the name without the deployment prefix, e.g. ``sambus.retry.{level}``.
        message: the AsyncAPI message (``fhir-message``, ``dead-letter``, ... or ``agency-events``: the
            event types of the channel's source kind).
        retention_days: how long records are kept; None for a compacted topic (kept per key for ever).
        one_partition: one partition whatever the setting (a compacted log, or the dead letters in order).
        operation: what sambus does on it for outside systems (AsyncAPI ``receive`` or ``send``), if anything.
    """

    channel: str
    address: str
    description: str
    message: str
    retention_days: int | None = 7
    one_partition: bool = False
    operation: Literal["receive", "send"] | None = None

    @property
    def parameter(self) -> str | None:
        """The name of the address's ``{parameter}``, or None."""
        found = re.search(r"\{(\w+)\}", self.address)
        return found.group(1) if found else None

    def name(self, prefix: str = "", value: str | int | None = None) -> str:
        """The topic's name, with ``prefix`` and the parameter's ``value``."""
        parameter = self.parameter
        if (parameter is None) != (value is None):
            raise ValueError(f"topic {self.address!r} takes {parameter or 'no parameter'}")
        return prefix + (
            self.address if parameter is None else self.address.replace(f"{{{parameter}}}", str(value))
        )

    def pattern(self, prefix: str = "") -> re.Pattern[str]:
        """A regular expression of every name of this kind."""
        parameter = self.parameter
        literal = re.escape(prefix + self.address)
        if parameter is not None:
            literal = literal.replace(re.escape(f"{{{parameter}}}"), _PARAMETERS[parameter])
        return re.compile(literal)


_PARAMETERS = {"recipient": _RECIPIENT.pattern.strip("^$"), "level": "[1-9][0-9]*"}

TOPICS: tuple[TopicKind, ...] = (
    *(
        TopicKind(
            f"agency-{kind}-events",
            f"agency.{kind}.events",
            f"Events from {kind} systems: plain JSON envelopes or CloudEvents (ce_* headers).",
            "agency-events",
            operation="receive",
        )
        for kind in AGENCY_KINDS_WITH_EVENTS
    ),
    TopicKind(
        "intents",
        "sambus.intents",
        "Canonical FHIR message Bundles; key = a keyed pseudonym of the child.",
        "fhir-message",
    ),
    TopicKind(
        "retry",
        "sambus.retry.{level}",
        "Intents whose delivery failed for a passing reason (e.g. the registry's database was down), tried "
        "again after the level's delay; sambus-retry-* headers carry the attempts and the original place.",
        "fhir-message",
    ),
    TopicKind(
        "parked",
        "sambus.parked",
        "Deliveries awaiting consent.",
        "fhir-message",
        retention_days=30,
    ),
    TopicKind(
        "parked-recheck",
        "sambus.parked.recheck",
        "Parked deliveries waiting for their next consent check (sambus.parked holds each one once).",
        "fhir-message",
        retention_days=30,
    ),
    TopicKind(
        "timers-fired",
        "sambus.timers.fired",
        "The process deadline timers already fired (compacted), so a timer fires once after a crash.",
        "timer-fired",
        retention_days=None,
        one_partition=True,
    ),
    TopicKind(
        "deliver",
        "deliver.{recipient}",
        "What one recipient system reads: its own Task and what that refers to.",
        "fhir-message",
        operation="send",
    ),
    TopicKind(
        "dlq",
        "sambus.dlq",
        "Dead letters: original bytes, reason and source topic/partition/offset in headers.",
        "dead-letter",
        retention_days=30,
        one_partition=True,
    ),
    TopicKind(
        "dlq-replayed",
        "sambus.dlq.replayed",
        "The replay log (compacted): key = a replayed dead letter's <partition>:<offset> on sambus.dlq.",
        "dead-letter-replayed",
        retention_days=None,
        one_partition=True,
    ),
)
"""Every topic sambus reads or writes."""

_BY_CHANNEL = {kind.channel: kind for kind in TOPICS}


@functools.lru_cache(maxsize=1024)
def kind_of(name: str) -> TopicKind | None:
    """The entry of :data:`TOPICS` a topic name is of, whatever its deployment prefix; None if none."""
    for kind in TOPICS:
        if re.fullmatch(r".*?" + kind.pattern().pattern, name):
            return kind
    return None


@dataclass(frozen=True)
class TopicSpec:
    """A topic and the settings sambus creates it with."""

    name: str
    partitions: int = 3
    config: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1


@functools.lru_cache(maxsize=1024)
def _deliver_topic(prefix: str, recipient: str) -> str:
    """:meth:`Topics.deliver`, remembered: the delivery and notice paths ask it for every record they make."""
    if not _RECIPIENT.match(recipient):
        raise ValueError(f"recipient id {recipient!r} must be lower-case letters, digits and '-'")
    return _BY_CHANNEL["deliver"].name(prefix, recipient)


@dataclass(frozen=True)
class Topics:
    """The names of sambus's topics, with an optional deployment prefix, and how they are created.

    Attributes:
        partitions: partitions of every topic not kept in one (``SAMBUS_TOPIC_PARTITIONS``).
        replication_factor: copies of each partition (``SAMBUS_TOPIC_REPLICATION_FACTOR``).
        min_insync_replicas: copies that must have a record before it counts as written
            (``SAMBUS_TOPIC_MIN_INSYNC_REPLICAS``; sambus writes with ``acks=all``).
    """

    prefix: str = ""
    partitions: int = 3
    replication_factor: int = 1
    min_insync_replicas: int = 1
    dlq_retention_days: float | None = None
    """How long the dead-letter topic keeps a dead letter (``SAMBUS_DLQ_RETENTION_DAYS``); None: its
    default in :data:`TOPICS`."""

    def __post_init__(self) -> None:
        """Check the creation settings."""
        if self.partitions < 1 or self.replication_factor < 1 or self.min_insync_replicas < 1:
            raise ValueError(
                "topic partitions, replication factor and min.insync.replicas must be at least 1"
            )
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"min.insync.replicas ({self.min_insync_replicas}) cannot exceed the replication factor "
                f"({self.replication_factor}): no write with acks=all would ever succeed"
            )

    def _name(self, channel: str, value: str | int | None = None) -> str:
        return _BY_CHANNEL[channel].name(self.prefix, value)

    def agency_events(self, kind: str) -> str:
        """The topic a source system of ``kind`` (school, social, ehr) publishes its events on."""
        if kind not in AGENCY_KINDS_WITH_EVENTS:
            raise ValueError(
                f"unknown agency kind {kind!r}; expected one of {', '.join(AGENCY_KINDS_WITH_EVENTS)}"
            )
        return self._name(f"agency-{kind}-events")

    @property
    def intents(self) -> str:
        """Canonical FHIR message Bundles, keyed by the child's pseudonym."""
        return self._name("intents")

    def retry(self, level: int) -> str:
        """Retry topic ``level`` (1-based)."""
        if level < 1:
            raise ValueError("retry levels start at 1")
        return self._name("retry", level)

    @property
    def dlq(self) -> str:
        """Dead letters: the original bytes, with the reason in headers."""
        return self._name("dlq")

    @property
    def dlq_replayed(self) -> str:
        """The replay log: which dead letters were replayed (key ``<partition>:<offset>``)."""
        return self._name("dlq-replayed")

    @property
    def parked(self) -> str:
        """Deliveries awaiting consent."""
        return self._name("parked")

    @property
    def parked_recheck(self) -> str:
        """Where a parked message waits for its next check after the first."""
        return self._name("parked-recheck")

    @property
    def timers_fired(self) -> str:
        """The deadline timers already fired."""
        return self._name("timers-fired")

    def deliver(self, recipient: str) -> str:
        """The topic a recipient system reads its deliveries from (checked and built once per name)."""
        return _deliver_topic(self.prefix, recipient)

    def is_ours(self, name: str) -> bool:
        """Whether ``name`` is one of this sambus's topics: its prefix and a name in :data:`TOPICS`."""
        return any(kind.pattern(self.prefix).fullmatch(name) for kind in TOPICS)

    def spec(self, channel: str, value: str | int | None = None) -> TopicSpec:
        """How the topic of ``channel`` in :data:`TOPICS` (with its parameter's ``value``) is created."""
        kind = _BY_CHANNEL[channel]
        config = {"min.insync.replicas": str(self.min_insync_replicas)}
        if kind.retention_days is None:
            config["cleanup.policy"] = "compact"
        elif channel == "dlq" and self.dlq_retention_days is not None:
            config["retention.ms"] = str(round(self.dlq_retention_days * DAY_MS))
        else:
            config["retention.ms"] = str(kind.retention_days * DAY_MS)
        return TopicSpec(
            kind.name(self.prefix, value),
            partitions=1 if kind.one_partition else self.partitions,
            config=config,
            replication_factor=self.replication_factor,
        )

    def specs(self, recipients: Sequence[str] = (), *, retry_levels: int = 0) -> list[TopicSpec]:
        """Every topic in :data:`TOPICS` with its settings.

        There is a delivery topic per recipient in ``recipients`` and ``retry_levels`` retry topics.
        """
        values: dict[str | None, Sequence[str | int | None]] = {
            None: (None,),
            "recipient": recipients,
            "level": range(1, retry_levels + 1),
        }
        return [self.spec(kind.channel, value) for kind in TOPICS for value in values[kind.parameter]]
