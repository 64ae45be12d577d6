"""What the router and pipeline benches share to time a drain (not a benchmark): a clock in the runner's
process and a read_committed reader in a process of its own (``python bench/drain.py SERVERS TOPICS``).

:class:`DrainClock` wraps ``AIOKafkaConsumer.getmany`` and aiokafka's produce requests for the whole process:
when the first record was consumed (and the process's CPU time then), how many fetches brought records and
how many produce requests went out. A bare pass-through and a sambus stage run in the same process use the
same aiokafka consumer and producer, so both are timed at the same point: the first record either of them
consumes. ``time.monotonic`` is the system-wide ``CLOCK_MONOTONIC`` on Linux, so a reader in another process
can take the drain's end on the same clock.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.producer.sender import Sender

SENT_AT = "bench-sent-ns"
"""The header a bench stamps its inputs with: ``time.time_ns()`` when sent."""


def cpu_seconds() -> float:
    """CPU time of this process so far, user and system, every thread."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class DrainClock:
    """Fetches and produce requests of this process since :meth:`arm` (installed once by :meth:`install`)."""

    armed_at: float = 0.0
    first_at: float = 0.0  # time.monotonic() when a getmany first returned records after arm()
    first_cpu: float = 0.0  # cpu_seconds() then
    fetches: int = 0  # getmany calls that returned records
    records: int = 0  # records they returned
    produce_requests: int = 0  # ProduceRequests sent (aiokafka has one in flight per broker)
    produce_batches: int = 0  # partition batches in them

    def arm(self) -> None:
        """Start noting afresh (before a runner starts)."""
        self.armed_at, self.first_at, self.first_cpu = time.monotonic(), 0.0, 0.0
        self.fetches = self.records = self.produce_requests = self.produce_batches = 0

    @property
    def join_s(self) -> float:
        """Seconds from :meth:`arm` to the first record consumed (group join, first fetch)."""
        return self.first_at - self.armed_at if self.first_at else float("nan")

    def install(self) -> DrainClock:
        """Wrap aiokafka's consumer ``getmany`` and the producer's send of a produce request."""
        getmany = AIOKafkaConsumer.getmany
        send = Sender._send_produce_req  # noqa: SLF001 - counted only, for the bench's notes
        clock = self

        async def noted_getmany(consumer: AIOKafkaConsumer, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            batch = await getmany(consumer, *args, **kwargs)
            if batch:
                if not clock.first_at:
                    clock.first_at, clock.first_cpu = time.monotonic(), cpu_seconds()
                clock.fetches += 1
                clock.records += sum(len(records) for records in batch.values())
            return batch

        async def noted_send(sender: Sender, node_id: int, batches: dict[Any, Any]) -> None:
            clock.produce_requests += 1
            clock.produce_batches += len(batches)
            await send(sender, node_id, batches)

        AIOKafkaConsumer.getmany = noted_getmany
        Sender._send_produce_req = noted_send  # noqa: SLF001
        return self


@dataclass
class Seen:
    """What a reader saw: how many records, when the first and last came (``time.monotonic``)."""

    count: int
    first_at: float
    last_at: float


class Reader:
    """A read_committed consumer positioned at the end of ``topics`` before anything is sent.

    Reads stop at a deadline, so a run that cannot keep up ends with what it saw instead of hanging.
    """

    def __init__(self, servers: str, topics: list[str]) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=servers, isolation_level="read_committed"
        )

    async def start(self) -> None:
        await self._consumer.start()
        while not self._consumer.assignment():  # noqa: ASYNC110 - aiokafka has no event for it
            await asyncio.sleep(0.05)
        await self._consumer.seek_to_end()
        for partition in self._consumer.assignment():
            await self._consumer.position(partition)  # resolved now, not when the first fetch happens

    async def read(self, count: int, latencies: list[float] | None, *, timeout_s: float) -> Seen:
        """Read up to ``count`` records, noting each one's latency in ``latencies`` (unless None)."""
        seen = 0
        first = last = 0.0
        deadline = time.monotonic() + timeout_s
        try:
            while seen < count and time.monotonic() < deadline:
                batch = await self._consumer.getmany(timeout_ms=200)
                now = time.time_ns()
                if batch:
                    first, last = first or time.monotonic(), time.monotonic()
                for records in batch.values():
                    for r in records:
                        sent = dict(r.headers).get(SENT_AT) if latencies is not None else None
                        if sent is not None and latencies is not None:
                            latencies.append((now - int(sent)) / 1e6)
                        seen += 1
        finally:
            await self._consumer.stop()
        return Seen(seen, first, last)


class ReaderProcess:
    """A :class:`Reader` in a process of its own, so it takes no CPU from the runner measured here.

    In the runner's process (and event loop) it read four records per intent of the router against one of
    the baseline (bench_router), and shared the bare pass-through's loop (bench_pipeline): the measuring
    took from the runner measured.
    """

    def __init__(self, servers: str, topics: list[str]) -> None:
        self._args = [servers, ",".join(topics)]
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the reader and wait until it is positioned at the end of its topics."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, *self._args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._process.stdout is not None
        ready = await self._process.stdout.readline()
        if ready.strip() != b"ready":
            raise RuntimeError("the reader process did not start")

    async def read(self, count: int, latencies: list[float] | None, *, timeout_s: float) -> Seen:
        """As :meth:`Reader.read`, in the reader's process."""
        assert self._process is not None
        order = {"count": count, "timeout_s": timeout_s, "latencies": latencies is not None}
        out, _ = await self._process.communicate(json.dumps(order).encode() + b"\n")
        result = json.loads(out)
        if latencies is not None:
            latencies.extend(result["latencies"])
        return Seen(result["seen"], result["first_at"], result["last_at"])


async def read_for_parent(servers: str, topics: str) -> None:
    """The reader process: positioned, says ``ready``, reads what it is told, answers in JSON on stdout."""
    reader = Reader(servers, topics.split(","))
    await reader.start()
    print("ready", flush=True)
    order = json.loads(await asyncio.to_thread(sys.stdin.readline))
    latencies: list[float] | None = [] if order["latencies"] else None
    seen = await reader.read(order["count"], latencies, timeout_s=order["timeout_s"])
    answer = {"seen": seen.count, "first_at": seen.first_at, "last_at": seen.last_at, "latencies": latencies}
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":  # the reader process of a ReaderProcess
    asyncio.run(read_for_parent(*sys.argv[1:3]))
