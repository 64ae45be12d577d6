"""What metrics and tracing cost a stage: handler throughput with and without
``sambus.router.ops.tracing.traced``.

Both runs are measured here, in the same process, on the same records: the bare handler is the baseline
and the ratio is what to watch (absolute rates drift on shared machines). Two handlers are measured:
the real intake (validate an agency event and build its FHIR message) and a pass-through that does
nothing, where the instrumentation's cost is all there is.

    .venv/bin/python bench/bench_stage_instrumentation.py [--records 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable

from aiokafka.structs import ConsumerRecord

from sambus.consent import Pseudonymizer
from sambus.contracts.topics import Topics
from sambus.router.kafka.records import Outgoing
from sambus.router.ops.metrics import Metrics
from sambus.router.ops.tracing import traced
from sambus.router.stages.intake import Intake

Handler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[list[Outgoing]]]
TOPICS = Topics(prefix="bench.")


def _event(n: int) -> bytes:
    return json.dumps(
        {
            "type": "se.sambus.school.sip-initiated.v1",
            "id": f"bench-{n}",
            "source": "skolsystem-bench",
            "time": "2026-11-20T09:00:00+01:00",
            "data": {
                "child": {"civicNo": "201203150006"},
                "schoolUnitCode": "19800001",
                "initiatedBy": "student_health",
                "reason": "mental_health",
                "invite": [{"hsaId": "SE2321000206-1001"}, {"organisationNumber": "212000-2080"}],
            },
        }
    ).encode()


def _records(count: int) -> list[ConsumerRecord[bytes, bytes]]:
    now = int(time.time() * 1000)
    return [
        ConsumerRecord(
            TOPICS.agency_events("school"), 0, n, now, 0, None, _event(n), None, 0, 0,
            [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")],
        )
        for n in range(count)
    ]  # fmt: skip


async def _pass_through(record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
    return [Outgoing(topic=TOPICS.intents, value=record.value or b"", headers=tuple(record.headers or ()))]


async def _rate(
    handler: Handler, records: list[ConsumerRecord[bytes, bytes]], *, instrumented: bool
) -> float:
    metrics = Metrics()
    started = time.perf_counter()
    for record in records:
        if instrumented:
            await traced("bench", handler, record, metrics=metrics)
        else:
            await handler(record)
    return len(records) / (time.perf_counter() - started)


async def main(records: int, rounds: int) -> None:
    batch = _records(records)
    intake = Intake(topics=TOPICS, pseudonymizer=Pseudonymizer(secrets.token_bytes(32)))
    for name, handler in (("intake (real work)", intake), ("pass-through", _pass_through)):
        await _rate(handler, batch[:200], instrumented=True)  # warm up both paths
        await _rate(handler, batch[:200], instrumented=False)
        bare, with_hooks = [], []
        for _ in range(rounds):  # interleaved, so drift hits both alike
            bare.append(await _rate(handler, batch, instrumented=False))
            with_hooks.append(await _rate(handler, batch, instrumented=True))
        best_bare, best_hooks = max(bare), max(with_hooks)
        print(
            f"{name:20s} bare {best_bare:10,.0f} rec/s   with metrics+tracing {best_hooks:10,.0f} rec/s   "
            f"ratio {best_hooks / best_bare:.3f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.records, args.rounds))
