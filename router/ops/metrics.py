"""Prometheus metrics: messages in and out per kind, decisions, consumer lag, dead letters, latency.

One :class:`Metrics` holds its own registry, so tests and several apps in one process do not share
counters by accident. The stages count into :data:`METRICS`; the web app exposes it on ``/metrics``.
No label ever carries personal data: kinds are event codes or topic kinds, rules are rule ids.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sambus.contracts.topics import Header, RecordHeaders, kind_of
from sambus.router.kafka.records import Outgoing
from sambus.router.ops.queues import QueueSnapshot

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@functools.lru_cache(maxsize=4096)
def topic_kind(topic: str) -> str:
    """What a topic is, without prefix or parameter: ``agency.school``, ``intents``, ``retry``, ``deliver``...

    Its channel in the list of topics (:data:`sambus.contracts.topics.TOPICS`); an agency's events topic as
    ``agency.<kind>``; ``other`` for a topic not in the list. Remembered per topic name (the list is fixed):
    a stage asks it several times per record, and each answer matched the name against every entry.
    """
    kind = kind_of(topic)
    if kind is None:
        return "other"
    return kind.address.removesuffix(".events") if kind.operation == "receive" else kind.channel


def _event_code(headers: Iterable[tuple[str, bytes]] | None) -> str | None:
    return RecordHeaders.first_text(headers, Header.EVENT_CODE, errors="replace")


class Metrics:
    """sambus's Prometheus instruments, in a registry of their own."""

    def __init__(self) -> None:
        """Create the instruments (nothing is exported until :meth:`exposition` is called)."""
        self.registry = CollectorRegistry()
        self.messages_in = Counter(
            "sambus_messages_in",
            "Records a stage consumed, by stage and kind (event code, or the source topic's kind).",
            ["stage", "kind"],
            registry=self.registry,
        )
        self.messages_out = Counter(
            "sambus_messages_out",
            "Records a stage produced, by stage, kind (event code) and destination topic kind.",
            ["stage", "kind", "destination"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "sambus_decisions",
            "Consent and secrecy decisions, by outcome and rule.",
            ["outcome", "rule"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sambus_end_to_end_latency_seconds",
            "From an agency event reaching Kafka to its delivery being produced.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "sambus_consumer_lag",
            "Offsets a consumer group is behind, per topic (as of the last scrape).",
            ["group", "topic"],
            registry=self.registry,
        )
        self.dead_letters = Gauge(
            "sambus_dead_letters", "Records on the dead-letter topic.", registry=self.registry
        )
        self.parked = Gauge("sambus_parked", "Records parked awaiting consent.", registry=self.registry)
        # The counters' children by label values: looked up once, not per record (``labels`` costs ~5 us).
        self._in: dict[tuple[str, str], Counter] = {}
        self._out: dict[tuple[str, str, str], Counter] = {}
        self._decided: dict[tuple[str, str], Counter] = {}

    def consumed(self, stage: str, record: ConsumerRecord[bytes, bytes]) -> None:
        """Count one record a stage read."""
        kind = _event_code(record.headers) or topic_kind(record.topic)
        counter = self._in.get((stage, kind))
        if counter is None:
            counter = self._in[stage, kind] = self.messages_in.labels(stage=stage, kind=kind)
        counter.inc()

    def produced(self, stage: str, outgoing: Iterable[Outgoing]) -> None:
        """Count the records a stage made for one input."""
        for out in outgoing:
            labels = (stage, _event_code(out.headers) or "unknown", topic_kind(out.topic))
            counter = self._out.get(labels)
            if counter is None:
                counter = self._out[labels] = self.messages_out.labels(*labels)
            counter.inc()

    def decided(self, outcome: str, rule: str) -> None:
        """Count one decision."""
        counter = self._decided.get((outcome, rule))
        if counter is None:
            counter = self._decided[outcome, rule] = self.decisions.labels(outcome=outcome, rule=rule)
        counter.inc()

    def delivered_after(self, seconds: float) -> None:
        """Observe one delivery's end-to-end latency."""
        self.latency.observe(max(0.0, seconds))

    def observe_queues(self, snapshot: QueueSnapshot) -> None:
        """Set the lag, dead-letter and parked gauges from a queue snapshot."""
        self.consumer_lag.clear()
        for (group, topic), lag in snapshot.lag_by_group().items():
            self.consumer_lag.labels(group=group, topic=topic).set(lag)
        self.dead_letters.set(snapshot.dead_letters)
        self.parked.set(snapshot.parked)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


METRICS = Metrics()
"""The metrics the stages of this process count into."""
