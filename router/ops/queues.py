"""Queue monitoring: end offsets, consumer lag, dead letters, parked messages and overdue deadlines.

Everything here reads the broker directly (aiokafka), on a web service's long-lived clients
(:class:`~sambus.router.kafka.reader.KafkaReader`) when it has them; nothing is stored. Dead letters and
deadlines are reached through small Protocols so that richer stores (DLQ replay state, process
deadlines) can replace the Kafka-only implementations without touching the CLI or the web pages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any, Protocol, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    GroupLoadInProgressError,
    NotCoordinatorForGroupError,
)
from aiokafka.protocol.admin import (
    DescribeGroupsRequest_v0,
    DescribeGroupsRequest_v1,
    DescribeGroupsRequest_v2,
)
from aiokafka.protocol.api import Request
from aiokafka.structs import TopicPartition

from sambus.contracts.topics import Topics
from sambus.router.kafka.admin import BOUNDED_EXACT_LIMIT
from sambus.router.kafka.connection import Broker
from sambus.router.kafka.reader import Clients, KafkaReader, run_on


@dataclass(frozen=True)
class TopicDepth:
    """A topic's end offset per partition (the next offset to be written)."""

    topic: str
    end_offsets: tuple[int, ...]

    @property
    def end_offset_total(self) -> int:
        """The sum of the partitions' end offsets."""
        return sum(self.end_offsets)


T = TypeVar("T")

COORDINATOR_WAIT_S = 30.0
"""How long a snapshot waits for a consumer group's coordinator (a new cluster elects one at first)."""

_COORDINATOR_NOT_YET = (
    GroupCoordinatorNotAvailableError,
    GroupLoadInProgressError,
    NotCoordinatorForGroupError,
)
"""A group's coordinator is being elected, is loading the group, or moved: the broker says "ask again"."""


async def coordinated(call: Callable[[], Awaitable[T]], *, wait: float = COORDINATOR_WAIT_S) -> T:
    """``call()``, asked again while the group's coordinator is not ready, for up to ``wait`` seconds.

    A new cluster answers GroupCoordinatorNotAvailable until it has elected a coordinator for the group (it
    first creates ``__consumer_offsets``); that is "not yet", not a broken broker. After ``wait`` seconds the
    last answer is raised (it becomes :class:`~sambus.contracts.errors.BrokerUnavailableError`).
    """
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            return await call()
        except _COORDINATOR_NOT_YET:
            if time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(2 * delay, 1.0)


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
class GroupMember:
    """One member of a consumer group: which instance it is and which partitions it holds now."""

    group: str
    client_id: str
    """The member's client id; a sambus stage names it ``<group>-<SAMBUS_INSTANCE_ID>``."""
    host: str
    partitions: tuple[tuple[str, int], ...]
    """(topic, partition) assigned to it; empty while the group rebalances or when it has none."""


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
    members: tuple[GroupMember, ...] = field(default=())
    """The live members of this sambus's consumer groups (a group with no member is not listed)."""

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
            "members": [
                {**asdict(m), "partitions": [{"topic": t, "partition": p} for t, p in m.partitions]}
                for m in self.members
            ],
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
    clients: Clients, ranges: dict[TopicPartition, tuple[int, int]]
) -> dict[TopicPartition, int]:
    """How many committed records lie in each partition's ``[start, end)`` (commit markers are none)."""
    counts = dict.fromkeys(ranges, 0)
    for record in await clients.read_ranges(ranges):
        counts[TopicPartition(record.topic, record.partition)] += 1
    return counts


@dataclass(frozen=True)
class _Listing:
    topics: tuple[str, ...]
    partitions: tuple[TopicPartition, ...]
    groups: tuple[str, ...]


_DescribeGroupsStructs = DescribeGroupsRequest_v0 | DescribeGroupsRequest_v1 | DescribeGroupsRequest_v2


class _DescribeGroups(Request[_DescribeGroupsStructs]):  # type: ignore[misc]
    """DescribeGroups up to v2.

    aiokafka 0.14's own request negotiates v3 with brokers that have it (Kafka 2.3+) but decodes the answer
    with v2's schema, which lacks v3's ``authorized_operations``: every answer fails to decode.
    """

    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self._groups = groups

    def build(self, request_struct_class: type[DescribeGroupsRequest_v0]) -> DescribeGroupsRequest_v0:
        return request_struct_class(self._groups)


async def _members(
    admin: AIOKafkaAdminClient, groups: Sequence[str], *, wait: float
) -> tuple[GroupMember, ...]:
    """The members of ``groups`` and the partitions each holds (one DescribeGroups per coordinator)."""
    by_coordinator: dict[int, list[str]] = {}
    for group_id in groups:
        coordinator = await coordinated(partial(admin.find_coordinator, group_id), wait=wait)
        by_coordinator.setdefault(coordinator, []).append(group_id)
    responses = await asyncio.gather(
        *(
            admin._send_request(_DescribeGroups(ids), node)  # noqa: SLF001 - see _DescribeGroups
            for node, ids in by_coordinator.items()
        )
    )
    members: list[GroupMember] = []
    for response in responses:
        for group in response.groups:
            error_code, group_id, _state, protocol_type, _protocol, described = group[:6]
            if error_code != 0 or protocol_type != "consumer":
                continue
            for _member_id, client_id, host, _metadata, assignment in described:
                partitions: tuple[tuple[str, int], ...] = ()
                if assignment:
                    decoded = ConsumerProtocolMemberAssignment.decode(assignment)
                    partitions = tuple(sorted((tp.topic, tp.partition) for tp in decoded.partitions()))
                members.append(GroupMember(group_id, client_id, host.lstrip("/"), partitions))
    return tuple(sorted(members, key=lambda m: (m.group, m.client_id)))


class QueueMonitor:
    """Takes :class:`QueueSnapshot` s of one sambus's topics on one broker."""

    def __init__(
        self,
        *,
        bootstrap_servers: Broker,
        topics: Topics,
        deadlines: DeadlineSource,
        reader: KafkaReader | None = None,
        known: Callable[[], tuple[Sequence[str], Sequence[str]]] | None = None,
        coordinator_wait: float = COORDINATOR_WAIT_S,
    ) -> None:
        """Watch the topics named by ``topics`` (its prefix selects this sambus's).

        With a ``reader`` its long-lived clients are used; without, clients are started for each snapshot.
        ``known`` names this sambus's topics and consumer groups (those it creates and runs), so that a
        snapshot describes them by name instead of listing every topic and group on the broker. A group
        whose coordinator is not ready yet (a new cluster) is asked again for up to ``coordinator_wait``
        seconds.
        """
        self._servers = bootstrap_servers
        self._topics = topics
        self._deadlines = deadlines
        self._reader = reader
        self._known = known
        self._coordinator_wait = coordinator_wait

    async def snapshot(self, *, now: dt.datetime | None = None) -> QueueSnapshot:
        """End offsets, lag per group and partition, dead letters, parked and overdue, as of now.

        Raises:
            BrokerUnavailableError: the broker cannot be reached, or a group's coordinator was not ready
                within the monitor's ``coordinator_wait``.
        """
        now = now or dt.datetime.now(dt.UTC)
        overdue = asyncio.create_task(asyncio.to_thread(self._deadlines.overdue, now))
        try:
            taken = await run_on(
                self._reader, self._servers, self._take, f"read queue state from {self._servers}"
            )
        finally:
            found = tuple(await overdue)
        return replace(taken, taken_at=now, overdue=found)

    async def _listing(self, clients: Clients) -> _Listing:
        """This sambus's topics (with their partitions) and consumer groups.

        Named ones (``known``) are described by name; without names every topic and group of the broker is
        listed, which on a busy broker costs more than all the rest of a snapshot.
        """
        if self._known is None:
            names = sorted(t for t in await clients.admin.list_topics() if self._topics.is_ours(t))
            groups = sorted(  # this sambus's groups are named with its topic prefix, like its topics
                group_id
                for group_id, *_ in await clients.admin.list_consumer_groups()
                if group_id.startswith(self._topics.prefix)
            )
        else:
            topic_names, group_ids = self._known()
            names, groups = sorted(topic_names), sorted(group_ids)
        described = await clients.partitions(names)
        partitions = tuple(TopicPartition(t, p) for t in names for p in described.get(t, []))
        return _Listing(tuple(t for t in names if t in described), partitions, tuple(groups))

    async def _take(self, clients: Clients) -> QueueSnapshot:
        listing = await self._listing(clients)
        names, partitions, groups = listing.topics, list(listing.partitions), listing.groups
        begins, ends = await clients.bounds(partitions)
        wait = self._coordinator_wait
        answers = await asyncio.gather(
            *(coordinated(partial(clients.admin.list_consumer_group_offsets, g), wait=wait) for g in groups)
        )
        lags: list[PartitionLag] = []
        for group_id, offsets in zip(groups, answers, strict=True):
            for tp, meta in sorted(offsets.items()):
                if tp in ends:
                    committed = meta.offset if meta.offset >= 0 else None
                    lags.append(PartitionLag(group_id, tp.topic, tp.partition, committed, ends[tp]))
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
        lags, counted = await self._count_small_lags(clients, lags, also=small)
        depths = tuple(TopicDepth(t, tuple(ends[tp] for tp in partitions if tp.topic == t)) for t in names)
        dead, parked = (
            sum(counted[tp] if tp in counted else end - start for tp, (start, end) in held[topic].items())
            for topic in (self._topics.dlq, self._topics.parked)
        )
        return QueueSnapshot(
            taken_at=dt.datetime.now(dt.UTC),
            topics=depths,
            lags=tuple(lags),
            dead_letters=dead,
            parked=parked,
            members=await _members(clients.admin, groups, wait=wait),
        )

    @staticmethod
    async def _count_small_lags(
        clients: Clients, lags: list[PartitionLag], *, also: dict[TopicPartition, tuple[int, int]]
    ) -> tuple[list[PartitionLag], dict[TopicPartition, int]]:
        """Small lags counted in records, and the records in ``also``'s ranges, in one read if it can."""
        small = {
            TopicPartition(lag.topic, lag.partition): (lag.committed or 0, lag.end_offset)
            for lag in lags
            if 0 < lag.offsets_behind <= EXACT_LAG_LIMIT
        }
        if any(small.get(tp, span) != span for tp, span in also.items()):  # a group reading the DLQ or parked
            behind, held = await count_records(clients, small), await count_records(clients, also)
        else:
            behind = held = await count_records(clients, {**small, **also})
        lagged = []
        for lag in lags:
            tp = TopicPartition(lag.topic, lag.partition)
            lagged.append(replace(lag, records_behind=behind[tp] if tp in small else lag.offsets_behind))
        return lagged, {tp: held[tp] for tp in also}
