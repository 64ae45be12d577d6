"""Long-lived Kafka clients for the pages and metrics, on a thread and event loop of their own.

Starting an aiokafka admin client and consumer costs more than the requests a page makes with them, so the
web service keeps one of each for its lifetime (:class:`KafkaReader`) instead of starting them per request.
They run on their own thread, so neither the serving event loop (which also runs the stages under
``sambus run --web``) nor a caller's short-lived loop (a test client's) holds them; calls are served one at a
time. Between calls every assigned partition is paused, so an idle reader fetches nothing.

:func:`transient_clients` gives the same :class:`Clients` for one task (the CLI, a test), started and stopped
around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from sambus.contracts.errors import map_errors
from sambus.router.kafka.connection import Broker, client_kwargs

T = TypeVar("T")

IDLE_POLLS = 20
"""Empty polls of 100 ms after which a read stops early (only an aborted transaction's offsets are left)."""


@dataclass
class Clients:
    """An admin client and a read-committed consumer of one broker, started."""

    servers: Broker
    admin: AIOKafkaAdminClient
    consumer: AIOKafkaConsumer
    _assigned: set[TopicPartition] = field(default_factory=set)

    async def partitions(self, names: Sequence[str]) -> dict[str, list[int]]:
        """The partition numbers of each existing topic in ``names``."""
        if not names:
            return {}
        described = await self.admin.describe_topics(list(names))
        return {
            d["topic"]: sorted(p["partition"] for p in d["partitions"])
            for d in described
            if d.get("error_code", 0) == 0
        }

    def know(self, partitions: Iterable[TopicPartition]) -> None:
        """Assign ``partitions`` too (paused), so the consumer has their metadata; a no-op when it has."""
        wanted = set(partitions)
        if wanted <= self._assigned:
            return
        self._assigned |= wanted
        self.consumer.assign(
            sorted(self._assigned)
        )  # one metadata request for every topic, not one per partition
        self.consumer.pause(*self._assigned)

    async def bounds(
        self, partitions: Sequence[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """The beginning and end offsets of ``partitions``."""
        if not partitions:
            return {}, {}
        self.know(partitions)
        return await self.consumer.beginning_offsets(partitions), await self.consumer.end_offsets(partitions)

    async def topic_bounds(self, topic: str) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """The beginning and end offsets of every partition of ``topic`` (none when it does not exist)."""
        numbers = (await self.partitions([topic])).get(topic, [])
        return await self.bounds([TopicPartition(topic, p) for p in numbers])

    async def read_ranges(
        self, ranges: dict[TopicPartition, tuple[int, int]], *, idle_polls: int = IDLE_POLLS
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """The committed records in each partition's ``[start, end)``.

        Stops early only after ``idle_polls`` empty polls of 100 ms (an aborted transaction at the end).
        """
        records: list[ConsumerRecord[bytes, bytes]] = []
        open_ranges = {tp: r for tp, r in ranges.items() if r[0] < r[1]}
        if not open_ranges:
            return records
        self.know(open_ranges)
        for tp, (start, _) in open_ranges.items():
            self.consumer.seek(tp, start)
        self.consumer.resume(*open_ranges)
        try:
            idle = 0
            while idle < idle_polls:
                left = {tp: end - await self.consumer.position(tp) for tp, (_, end) in open_ranges.items()}
                unread = [tp for tp, offsets in left.items() if offsets > 0]
                if not unread:
                    break
                # never more records than the ranges have offsets left (a fetch brings up to a megabyte); a
                # partition read past its end (a transaction marker) counts nothing, not less than nothing
                wanted = sum(left[tp] for tp in unread)
                batch = await self.consumer.getmany(*unread, timeout_ms=100, max_records=wanted)
                idle = 0 if batch else idle + 1
                for tp, got in batch.items():
                    records.extend(r for r in got if r.offset < open_ranges[tp][1])
        finally:
            self.consumer.pause(*open_ranges)
        return records


def _consumer(servers: Broker) -> AIOKafkaConsumer:
    # A fetch at the end of a partition waits fetch_max_wait_ms for data: keep that short, since these
    # consumers seek to where the data is and a fetch begun before the seek must end first.
    return AIOKafkaConsumer(
        **client_kwargs(servers),
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_wait_ms=20,
    )


async def _start(servers: Broker) -> Clients:
    admin = AIOKafkaAdminClient(**client_kwargs(servers), request_timeout_ms=10000)
    consumer = _consumer(servers)
    try:
        await admin.start()
        await consumer.start()
    except BaseException:
        await _stop(Clients(servers, admin, consumer))
        raise
    return Clients(servers, admin, consumer)


async def _stop(clients: Clients) -> None:
    with contextlib.suppress(KafkaError, OSError):
        await clients.consumer.stop()
    with contextlib.suppress(KafkaError, OSError):
        await clients.admin.close()


@asynccontextmanager
async def transient_clients(servers: Broker, doing: str) -> AsyncIterator[Clients]:
    """:class:`Clients` started for one task on the running loop, stopped after it.

    Raises:
        BrokerUnavailableError: the broker cannot be reached (``doing`` says what could not be done).
    """
    with map_errors(doing):
        clients = await _start(servers)
    try:
        with map_errors(doing):
            yield clients
    finally:
        await _stop(clients)


class KafkaReader:
    """One admin client and one consumer kept for the life of a web service, on a thread of their own."""

    def __init__(self, servers: Broker) -> None:
        """Reads from the broker at ``servers``; nothing connects before the first :meth:`run`."""
        self._servers = servers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: Clients | None = None
        self._lock: asyncio.Lock | None = None
        self._guard = threading.Lock()
        self.starts = 0
        """How many times the clients were started (once, unless the broker went away in between)."""

    @property
    def servers(self) -> Broker:
        """The broker read from."""
        return self._servers

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="sambus-kafka-reader", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _serve(self, work: Callable[[Clients], Awaitable[T]], doing: str) -> T:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            with map_errors(doing):
                if self._clients is None:
                    self._clients = await _start(self._servers)
                    self.starts += 1
                try:
                    return await work(self._clients)
                except (KafkaError, OSError):  # the broker went away: start afresh at the next call
                    clients, self._clients = self._clients, None
                    await _stop(clients)
                    raise

    async def run(self, work: Callable[[Clients], Awaitable[T]], doing: str) -> T:
        """``work`` on the long-lived clients (started at the first call), awaited from any event loop.

        Raises:
            BrokerUnavailableError: the broker cannot be reached (``doing`` says what could not be done).
        """
        future = asyncio.run_coroutine_threadsafe(self._serve(work, doing), self._ensure_loop())
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the clients and the thread (a reader closed is started again by its next :meth:`run`)."""
        with self._guard:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return

        async def stop() -> None:
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:  # background work on the clients (a listing being renewed)
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            lock = self._lock or asyncio.Lock()
            async with lock:
                clients, self._clients, self._lock = self._clients, None, None
                if clients is not None:
                    await _stop(clients)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


async def run_on(
    reader: KafkaReader | None, servers: Broker, work: Callable[[Clients], Awaitable[T]], doing: str
) -> T:
    """``work`` on ``reader``'s long-lived clients, or on clients started for it alone when there is none.

    Raises:
        BrokerUnavailableError: the broker cannot be reached.
    """
    if reader is not None:
        return await reader.run(work, doing)
    async with transient_clients(servers, doing) as clients:
        return await work(clients)
