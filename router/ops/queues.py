"""Queue monitoring: end offsets, consumer lag, dead letters, parked messages and overdue deadlines.

Everything here reads the broker directly (aiokafka); nothing is stored. Dead letters and deadlines are
reached through small Protocols so that richer stores (DLQ replay state, process deadlines) can replace
the Kafka-only implementations without touching the CLI or the web pages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from sambus.contracts.errors import map_errors
from sambus.contracts.topics import Topics
from sambus.router.kafka.admin import BOUNDED_EXACT_LIMIT, partitions_of
from sambus.router.kafka.connection import Broker, client_kwargs


@dataclass(frozen=True)
class TopicDepth:
    """A topic's end offset per partition (the next offset to be written)."""

    topic: str
    end_offsets: tuple[int, ...]

    @property
    def end_offset_total(self) -> int:
        """The sum of the partitions' end offsets."""
        return sum(self.end_offsets)


EXACT_LAG_LIMIT = 1000
"""Up to this many offsets behind, lag is counted in records (commit markers take offsets too)."""


@dataclass(frozen=True)
class PartitionLag:
    """How far a consumer group is behind on one partition."""

    group: str
    topic: str
    partition: int
    committed: int | None
    end_offset: int
    records_behind: int | None = None
    """Committed records not yet consumed, when counted (see :data:`EXACT_LAG_LIMIT`)."""

    @property
    def offsets_behind(self) -> int:
        """Offsets between the group's committed position and the end (all of them when none committed)."""
        return max(0, self.end_offset - (self.committed or 0))

    @property
    def lag(self) -> int:
        """Records behind when counted, else offsets behind (which include transactions' commit markers)."""
        return self.offsets_behind if self.records_behind is None else self.records_behind


@dataclass(frozen=True)
class OverdueDeadline:
    """A process step that should have happened by ``due`` (the case named only by a pseudonymous id)."""

    process: str
    step: str
    case: str
    due: dt.datetime


@dataclass(frozen=True)
class QueueSnapshot:
    """What ``sambus queues`` and the operations page show at one moment."""

    taken_at: dt.datetime
    topics: tuple[TopicDepth, ...]
    lags: tuple[PartitionLag, ...]
    dead_letters: int
    parked: int
    overdue: tuple[OverdueDeadline, ...] = field(default=())

    def lag_by_group(self) -> dict[tuple[str, str], int]:
        """Total lag per (group, topic)."""
        totals: dict[tuple[str, str], int] = {}
        for lag in self.lags:
            totals[lag.group, lag.topic] = totals.get((lag.group, lag.topic), 0) + lag.lag
        return totals

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601)."""
        return {
            "taken_at": self.taken_at.isoformat(),
            "topics": [
                {"topic": t.topic, "end_offsets": list(t.end_offsets), "end_offset_total": t.end_offset_total}
                for t in self.topics
            ],
            "lags": [{**asdict(lag), "lag": lag.lag} for lag in self.lags],
            "dead_letters": self.dead_letters,
            "parked": self.parked,
            "overdue": [{**asdict(o), "due": o.due.isoformat()} for o in self.overdue],
        }


class DeadlineSource(Protocol):
    """Process deadlines (e.g. an examination due within four weeks)."""

    def overdue(self, now: dt.datetime) -> Sequence[OverdueDeadline]:
        """The deadlines passed at ``now`` and not yet met."""
        ...


class NoDeadlines:
    """A deadline source for a sambus that keeps no process state: nothing is ever overdue."""

    def overdue(self, now: dt.datetime) -> Sequence[OverdueDeadline]:  # noqa: ARG002 - the Protocol's signature
        """Nothing."""
        return ()


async def count_records(
    bootstrap_servers: Broker, ranges: dict[TopicPartition, tuple[int, int]]
) -> dict[TopicPartition, int]:
    """How many committed records lie in each partition's ``[start, end)`` (commit markers are not records).

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
    """
    counts = dict.fromkeys(ranges, 0)
    ranges = {tp: (start, end) for tp, (start, end) in ranges.items() if start < end}  # empty ones hold none
    if not ranges:
        return counts
    consumer = AIOKafkaConsumer(
        **client_kwargs(bootstrap_servers),
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_wait_ms=20,
    )
    try:
        with map_errors(f"count records on {bootstrap_servers}"):
            await consumer.start()
            consumer.assign(list(ranges))
            for tp, (start, _) in ranges.items():
                consumer.seek(tp, start)
            idle = 0
            while idle < 20:  # noqa: PLR2004 - 2 s of empty polls: only markers (or nothing) are left
                open_ = [tp for tp, (_, end) in ranges.items() if await consumer.position(tp) < end]
                if not open_:
                    break
                batch = await consumer.getmany(*open_, timeout_ms=100)
                idle = 0 if batch else idle + 1
                for tp, got in batch.items():
                    counts[tp] += sum(1 for r in got if r.offset < ranges[tp][1])
    finally:
        await consumer.stop()
    return counts


class QueueMonitor:
    """Takes :class:`QueueSnapshot` s of one sambus's topics on one broker."""

    def __init__(
        self,
        *,
        bootstrap_servers: Broker,
        topics: Topics,
        deadlines: DeadlineSource,
    ) -> None:
        """Watch the topics named by ``topics`` (its prefix selects this sambus's)."""
        self._servers = bootstrap_servers
        self._topics = topics
        self._deadlines = deadlines

    async def snapshot(self, *, now: dt.datetime | None = None) -> QueueSnapshot:
        """End offsets, lag per group and partition, dead letters, parked and overdue, as of now.

        Raises:
            BrokerUnavailableError: the broker cannot be reached.
        """
        now = now or dt.datetime.now(dt.UTC)
        admin = AIOKafkaAdminClient(**client_kwargs(self._servers), request_timeout_ms=10000)
        consumer = AIOKafkaConsumer(**client_kwargs(self._servers), enable_auto_commit=False)
        try:
            with map_errors(f"read queue state from {self._servers}"):
                await admin.start()
                await consumer.start()
                names = sorted(t for t in await admin.list_topics() if self._topics.is_ours(t))
                described = await partitions_of(self._servers, names)
                partitions = [TopicPartition(t, p) for t in names for p in described.get(t, [])]
                if partitions:
                    consumer.assign(partitions)  # one metadata request for every topic, not one per partition
                ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions) if partitions else {}
                begins: dict[TopicPartition, int] = (
                    await consumer.beginning_offsets(partitions) if partitions else {}
                )
                lags: list[PartitionLag] = []
                for group_id, *_ in sorted(await admin.list_consumer_groups()):
                    offsets = await admin.list_consumer_group_offsets(group_id)
                    for tp, meta in sorted(offsets.items()):
                        if tp in ends:
                            committed = meta.offset if meta.offset >= 0 else None
                            lags.append(PartitionLag(group_id, tp.topic, tp.partition, committed, ends[tp]))
        finally:
            await consumer.stop()
            await admin.close()
        held = {  # dead letters and parked: counted exactly when few, else the offsets they span
            topic: {tp: (begins[tp], ends[tp]) for tp in partitions if tp.topic == topic}
            for topic in (self._topics.dlq, self._topics.parked)
        }
        small = {
            tp: span
            for ranges in held.values()
            if sum(end - start for start, end in ranges.values()) <= BOUNDED_EXACT_LIMIT
            for tp, span in ranges.items()
        }
        lags, counted = await self._count_small_lags(lags, also=small)
        depths = tuple(TopicDepth(t, tuple(ends[tp] for tp in partitions if tp.topic == t)) for t in names)
        dead, parked = (
            sum(counted[tp] if tp in counted else end - start for tp, (start, end) in held[topic].items())
            for topic in (self._topics.dlq, self._topics.parked)
        )
        return QueueSnapshot(
            taken_at=now,
            topics=depths,
            lags=tuple(lags),
            dead_letters=dead,
            parked=parked,
            overdue=tuple(await asyncio.to_thread(self._deadlines.overdue, now)),
        )

    async def _count_small_lags(
        self, lags: list[PartitionLag], *, also: dict[TopicPartition, tuple[int, int]]
    ) -> tuple[list[PartitionLag], dict[TopicPartition, int]]:
        """Small lags counted in records, and the records in ``also``'s ranges, in one read if it can."""
        small = {
            TopicPartition(lag.topic, lag.partition): (lag.committed or 0, lag.end_offset)
            for lag in lags
            if 0 < lag.offsets_behind <= EXACT_LAG_LIMIT
        }
        if any(small.get(tp, span) != span for tp, span in also.items()):  # a group reading the DLQ or parked
            behind, held = await count_records(self._servers, small), await count_records(self._servers, also)
        else:
            behind = held = await count_records(self._servers, {**small, **also})
        lagged = []
        for lag in lags:
            tp = TopicPartition(lag.topic, lag.partition)
            lagged.append(replace(lag, records_behind=behind[tp] if tp in small else lag.offsets_behind))
        return lagged, {tp: held[tp] for tp in also}
