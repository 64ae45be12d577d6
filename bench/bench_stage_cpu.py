"""CPU per event of each stage's handler, in this process, without Kafka: where ``sambus run``'s CPU goes.

    .venv/bin/python bench/bench_stage_cpu.py [--events 3000] [--runs 3] [--profile DIR]
        [--backlogs 0,5000,15000]

The stages are the ones ``sambus run`` builds (``Sambus.build_stages``), on a fresh SQLite database seeded
as ``bench_pipeline.py`` seeds it, and are fed the same school events: intake's intents feed the delivery
and processes stages, delivery's parked records feed the parked stage (their check time moved to now, so
each is decided at once, as every ten seconds in a run). Each stage runs as its Kafka stage runs a batch
(its ``prepare``, the handler per record, its hooks' ``before_commit`` and ``after_commit``), in batches of
the stage's size, minus Kafka itself (no transaction, no send, no tracing span: those are measured by
``bench_router.py`` and ``bench_stage_instrumentation.py``).

CPU time is the process's (every thread: worker threads do the stages' database work), per event (per
record for the parked stage). With ``--profile DIR`` each stage is also run once under cProfile, its worker
thread calls made inline so the profile sees them, and ``DIR/<stage>.prof`` written.

With ``--backlogs`` the parked stage also has a backlog: messages parked earlier, each rechecked once in
the window (the window of ``--events`` input events lasting one recheck interval: at 300 events/s, 3,000
events take the default 10 s), so that stage handles its new parked records plus the backlog. The backlog
is the run's own parked records repeated (dental care has no consent: every one is parked again, as in
``bench_pipeline.py``). Each stage's CPU is then printed per input event, the parked stage's also per parked
record, with the parked records it handled per input event.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import itertools
import logging
import secrets
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from aiokafka.structs import ConsumerRecord
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_pipeline import _seed, events

from sambus.contracts.topics import Header
from sambus.router.kafka.parked_headers import epoch_ms
from sambus.router.kafka.records import Outgoing
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.service.schema import create_engine, upgrade
from sambus.router.settings import Settings
from sambus.router.stages.transactional import TransactionalStage

Record: TypeAlias = ConsumerRecord[bytes, bytes]


def record(topic: str, offset: int, value: bytes, key: bytes | None, headers: Sequence[Any]) -> Record:
    return ConsumerRecord(
        topic=topic, partition=0, offset=offset, timestamp=int(time.time() * 1000), timestamp_type=0,
        key=key, value=value, checksum=None, serialized_key_size=len(key or b""),
        serialized_value_size=len(value), headers=tuple(headers),
    )  # fmt: skip


def as_records(outs: Sequence[Outgoing], topic: str) -> list[Record]:
    return [
        record(topic, n, o.value or b"", o.key, o.headers) for n, o in enumerate(outs) if o.topic == topic
    ]


def wired(workdir: Path, number: int) -> Sambus:
    settings = Settings(
        topic_prefix=f"benchs-{secrets.token_hex(4)}.",
        database_url=f"sqlite:///{workdir / f'stages-{number}.db'}",
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        instance_id=secrets.token_hex(4),
    )
    engine = create_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    app = bootstrap(settings, bootstrap_servers="unused:9092")
    _seed(app, 1)  # the 50 children of block 0, whom `events` names
    return app


async def run_stage(stage: TransactionalStage, records: list[Record]) -> list[Outgoing]:
    """Every record through ``stage``'s handler, in its batches, as its ``_process`` does minus Kafka."""
    made: list[Outgoing] = []
    size = stage._max_batch  # noqa: SLF001 - the stage's own batch size
    for start in range(0, len(records), size):
        batch = records[start : start + size]
        if stage._prepare is not None:  # noqa: SLF001
            await stage._prepare(batch)  # noqa: SLF001
        for one in batch:
            made.extend(await stage._handler(one))  # noqa: SLF001
        for hook in stage._hooks:  # noqa: SLF001
            await asyncio.to_thread(hook.before_commit)
        for hook in stage._hooks:  # noqa: SLF001
            hook.after_commit()
    return made


@contextmanager
def inline_threads() -> Iterator[None]:
    """``asyncio.to_thread`` runs its call inline (cProfile sees only the thread it was started in)."""
    original = asyncio.to_thread

    async def inline(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        return func(*args, **kwargs)

    asyncio.to_thread = inline
    try:
        yield
    finally:
        asyncio.to_thread = original


async def timed(
    name: str, work: Callable[[], Awaitable[list[Outgoing]]], count: int, profile: Path | None
) -> tuple[float, list[Outgoing]]:
    """(CPU ms per item, what ``work`` made); under cProfile into ``profile/<name>.prof`` when given."""
    if profile is None:
        start = time.process_time()
        made = await work()
        return (time.process_time() - start) * 1000 / max(1, count), made
    profiler = cProfile.Profile()
    with inline_threads():
        profiler.enable()
        start = time.process_time()
        made = await work()
        spent = time.process_time() - start
        profiler.disable()
    profiler.dump_stats(profile / f"{name}.prof")
    return spent * 1000 / max(1, count), made


async def one_run(
    args: argparse.Namespace, workdir: Path, number: int, profile: Path | None, backlog: int = 0
) -> dict[str, float]:
    app = wired(workdir, number)
    stages = {stage.name: stage for stage in app.build_stages()}
    topics = app.topics
    sources = [
        record(topics.agency_events("school"), n, v, None, ())
        for n, v in enumerate(events(args.events, f"s{number}"))
    ]
    cpu: dict[str, float] = {}
    cpu["intake"], intents = await timed(
        "intake", lambda: run_stage(stages["intake"], sources), args.events, profile
    )
    intent_records = as_records(intents, topics.intents)
    cpu["delivery"], delivered = await timed(
        "delivery", lambda: run_stage(stages["delivery"], intent_records), args.events, profile
    )
    cpu["processes"], _ = await timed(
        "processes", lambda: run_stage(stages["processes"], intent_records), args.events, profile
    )
    due = epoch_ms(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    parked = [
        record(
            r.topic, r.offset, r.value, r.key,
            [(k, due if k == Header.PARKED_CHECK_AT else v) for k, v in r.headers],
        )
        for r in as_records(delivered, topics.parked)
    ]  # fmt: skip
    fresh = len(parked)
    parked += [
        record(topics.parked_recheck, n, one.value, one.key, one.headers)
        for n, one in zip(range(backlog), itertools.cycle(parked[:fresh]), strict=False)
    ]
    cpu["parked (per record)"], _ = await timed(
        "parked", lambda: run_stage(stages["parked"], parked), len(parked), profile
    )
    app.engine.dispose()
    cpu["parked (per event)"] = cpu["parked (per record)"] * len(parked) / args.events
    cpu["parked records/event"] = len(parked) / args.events
    cpu["all stages (per event)"] = sum(
        cpu[name] for name in ("intake", "delivery", "processes", "parked (per event)")
    )
    print(
        f"run {number} (backlog {backlog}): "
        + ", ".join(f"{name} {ms:.3f}" for name, ms in cpu.items())
        + f"; {len(intent_records)} intents, {fresh} newly parked, {len(parked)} parked records"
    )
    return cpu


async def main(args: argparse.Namespace, profile: Path | None) -> None:
    backlogs = [int(b) for b in args.backlogs.split(",")]
    with tempfile.TemporaryDirectory(prefix="sambus-bench-stages-") as workdir:
        number = itertools.count(1)
        # the backlogs alternate within each round, so machine load bends each alike
        runs = {b: [] for b in backlogs}  # type: dict[int, list[dict[str, float]]]
        for _ in range(args.runs):
            for b in backlogs:
                runs[b].append(await one_run(args, Path(workdir), next(number), None, b))
        if profile is not None:
            await one_run(args, Path(workdir), next(number), profile, backlogs[-1])
    for b in backlogs:
        print(f"parked backlog {b}:")
        for name in runs[b][0]:
            values = [run[name] for run in runs[b]]
            unit = "" if name.endswith("/event") else " ms CPU"
            print(
                f"  {name:<24} min {min(values):.3f}  median {statistics.median(values):.3f}  "
                f"max {max(values):.3f}{unit}"
            )
    if len(backlogs) > 1:
        base = statistics.median(r["all stages (per event)"] for r in runs[backlogs[0]])
        for b in backlogs[1:]:
            ratios = [r["all stages (per event)"] / base for r in runs[b]]
            print(
                f"all stages per event, backlog {b} / backlog {backlogs[0]}: min {min(ratios):.2f}  "
                f"median {statistics.median(ratios):.2f}  max {max(ratios):.2f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="school events per run")
    parser.add_argument("--runs", type=int, default=3, help="how many times everything is measured")
    parser.add_argument("--profile", metavar="DIR", help="also one run under cProfile, DIR/<stage>.prof")
    parser.add_argument(
        "--backlogs", default="0", help="parked backlogs, comma-separated (e.g. 0,5000,15000), each measured"
    )
    arguments = parser.parse_args()
    folder = Path(arguments.profile).resolve() if arguments.profile else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    # The stages' Kafka clients are made, never started: their "unclosed" warnings are noise here.
    warnings.simplefilter("ignore", ResourceWarning)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    asyncio.run(main(arguments, folder))
