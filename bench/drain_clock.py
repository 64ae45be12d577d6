"""What the router and pipeline benches note about a drain in the process that runs it (not a benchmark).

:class:`DrainClock` wraps ``AIOKafkaConsumer.getmany`` and aiokafka's produce requests for the whole process:
when the first record was consumed (and the process's CPU time then), how many fetches brought records and
how many produce requests went out. A bare pass-through and a sambus stage run in the same process use the
same aiokafka consumer and producer, so both are timed at the same point: the first record either of them
consumes. ``time.monotonic`` is the system-wide ``CLOCK_MONOTONIC`` on Linux, so a reader in another process
can take the drain's end on the same clock.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.producer.sender import Sender


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

        AIOKafkaConsumer.getmany = noted_getmany  # type: ignore[method-assign]
        Sender._send_produce_req = noted_send  # type: ignore[method-assign] # noqa: SLF001
        return self
