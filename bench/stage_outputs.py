"""What the intake and delivery stages send through their transaction loop: two trees compared byte for byte.

    PYTHONPATH=<tree>/src .venv/bin/python bench/stage_outputs.py OUTDIR

600 SIP events for 50 children (consent for social services and BU-hälsan, none for dental care) go
through the intake stage and their intents through the delivery stage, each in batches of 500 through the
stage's own ``_process`` (its handler in its span, the trace headers, the metrics, the sends) into a
stand-in producer that keeps every record it is given. Fixed pseudonym key, clock, record timestamps and
random seed (span ids); writes ``records.txt`` (every record sent, in order: topic, key, value, headers) and
``ledger.txt`` and prints their SHA-256. The Bundles' ``timestamp`` (translation time, the wall clock) is
masked in the digest; nothing else is.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import warnings
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from aiokafka.structs import ConsumerRecord, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import events
from parked_outputs import T0, fresh_settings, seeded, write_digests

from sambus.router.settings import Settings

T0_MS = int(T0.timestamp() * 1000)
Record: TypeAlias = ConsumerRecord[bytes, bytes]


class Producer:
    """Stands in for a transactional aiokafka producer: keeps what is sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, tuple[tuple[str, bytes], ...]]] = []

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def send(
        self, topic: str, value: bytes, *, key: bytes | None, headers: list[Any]
    ) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value, tuple(headers)))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_offsets_to_transaction(self, offsets: Any, group: str) -> None:  # noqa: ANN401
        pass


def record(topic: str, offset: int, value: bytes, key: bytes | None, headers: Sequence[Any]) -> Record:
    return ConsumerRecord(
        topic=topic, partition=0, offset=offset, timestamp=T0_MS + offset, timestamp_type=0,
        key=key, value=value, checksum=None, serialized_key_size=len(key or b""),
        serialized_value_size=len(value), headers=tuple(headers),
    )  # fmt: skip


async def through(stage: Any, records: list[Record]) -> list[tuple[str, bytes | None, bytes, Any]]:  # noqa: ANN401
    producer = Producer()
    partition = TopicPartition(records[0].topic, 0)
    for start in range(0, len(records), 500):
        batch = records[start : start + 500]
        while batch:
            handled = await stage._process(producer, partition, batch)  # noqa: SLF001
            batch = batch[handled:]
    return producer.sent


async def workload(settings: Settings) -> list[bytes]:
    app, _ = seeded(settings, lambda: T0)
    stages = {stage.name: stage for stage in app.build_stages()}
    topics = app.topics
    sources = [
        record(topics.agency_events("school"), n, v, None, ()) for n, v in enumerate(events(600, "cmp"))
    ]
    intents = await through(stages["intake"], sources)
    inputs = [
        record(topics.intents, n, v, k, h) for n, (t, k, v, h) in enumerate(intents) if t == topics.intents
    ]
    delivered = await through(stages["delivery"], inputs)
    app.engine.dispose()
    return [f"{t} {k!r} {v!r} {h!r}".encode() for t, k, v, h in intents + delivered]


def main(out: Path) -> None:
    settings = fresh_settings(out, "stage-outputs")
    random.seed(12)  # the span ids
    write_digests(out, settings, asyncio.run(workload(settings)))


if __name__ == "__main__":
    warnings.simplefilter("ignore", ResourceWarning)  # the stages' Kafka clients are made, never started
    main(Path(sys.argv[1]))
