"""What the parked stage writes over a parked workload, fixed key and clock: two trees compared byte for byte.

    PYTHONPATH=<tree>/src .venv/bin/python bench/parked_outputs.py OUTDIR

600 SIPs for 50 children, each parked for dental care (no consent); the parked stage checks every parked
record each 10 s round; consents for dental care come for children 0-9 before round 2 and 10-19 before
round 4, one valid only from 45 s on for children 20-24 before round 2; the rest expire at 60 s. Writes
``records.txt`` (every record the stage made, by round) and ``ledger.txt`` (the ledger's entries and head)
and prints their SHA-256. The Bundles' ``timestamp`` (translation time, the wall clock) is masked in the
digest; nothing else is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import events
from bench_stage_cpu import as_records, record, run_stage
from common import personnummer

from sambus.consent import ConsentGrant, ConsentRegistry
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.registry_facts import Custody
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.service.schema import create_engine, upgrade
from sambus.router.settings import Settings

T0 = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
ROUNDS = 8
DENTAL_FROM_NOW = {2: range(10), 4: range(10, 20)}
"""Before which round which children's guardians consent to dental care, from 5 s before T0."""
DENTAL_LATER = {2: range(20, 25)}
"""Before which round which children's guardians consent to dental care from T0 + 45 s on."""
WALL_CLOCK = re.compile(rb'"timestamp":"[^"]*"')


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def consent(
    registry: ConsentRegistry, cid: str, child: str, kinds: set[AgencyKind], **at: dt.datetime
) -> None:
    grant = ConsentGrant(
        consent_id=cid, child=child, purpose=Purpose.SIP, agency_kinds=frozenset(kinds),
        given_by="guardian", guardians=("guardian",), valid_from=at["valid_from"],
    )  # fmt: skip
    registry.record(grant, now=at["now"])


def seeded(settings: Settings, clock: Callable[[], dt.datetime]) -> tuple[Sambus, list[str]]:
    """The app on ``settings`` and its 50 children, each consented for social services and BU-hälsan."""
    app = bootstrap(settings, bootstrap_servers="unused:9092", clock=clock)
    children = [app.pseudonymizer.of(personnummer(n)) for n in range(50)]
    for n, child in enumerate(children):
        app.registry.set_custody(child, Custody.SOLE, ("guardian",), at=T0 - dt.timedelta(days=2))
        kinds = {AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN}
        consent(app.registry, f"c{n}", child, kinds, valid_from=T0 - dt.timedelta(days=1), now=T0)
    return app, children


async def workload(settings: Settings) -> list[bytes]:
    clock = Clock()
    app, children = seeded(settings, clock)
    stages = {stage.name: stage for stage in app.build_stages()}
    topics = app.topics
    sources = [
        record(topics.agency_events("school"), n, v, None, ()) for n, v in enumerate(events(600, "cmp"))
    ]
    intents = as_records(await run_stage(stages["intake"], sources), topics.intents)
    pending = as_records(await run_stage(stages["delivery"], intents), topics.parked)
    lines: list[bytes] = []
    for round_ in range(1, ROUNDS + 1):
        clock.now = T0 + dt.timedelta(seconds=10 * round_)
        for n in DENTAL_FROM_NOW.get(round_, ()):
            since = T0 - dt.timedelta(seconds=5)
            consent(app.registry, f"d{n}", children[n], {AgencyKind.DENTAL}, valid_from=since, now=clock.now)
        for n in DENTAL_LATER.get(round_, ()):
            later = T0 + dt.timedelta(seconds=45)
            consent(app.registry, f"f{n}", children[n], {AgencyKind.DENTAL}, valid_from=later, now=clock.now)
        made = await run_stage(stages["parked"], pending)
        lines.extend(f"{round_} {o.topic} {o.key!r} {o.value!r} {o.headers!r}".encode() for o in made)
        pending = as_records(made, topics.parked_recheck)
        print(f"round {round_}: {len(made)} records made, {len(pending)} of them parked again")
    app.engine.dispose()
    return lines


def fresh_settings(out: Path, name: str, **extra: Any) -> Settings:  # noqa: ANN401 - Settings' fields
    """Settings with the fixed pseudonym key, on a new database ``out/<name>.db`` at the newest schema."""
    out.mkdir(parents=True, exist_ok=True)
    db = out / f"{name}.db"
    db.unlink(missing_ok=True)
    settings = Settings(
        topic_prefix="cmp.", database_url=f"sqlite:///{db}", pseudonym_key=SecretStr("ab" * 32),
        instance_id="cmp1", **extra,
    )  # fmt: skip
    engine = create_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    return settings


def main(out: Path) -> None:
    settings = fresh_settings(out, "parked-outputs", parked_expire_after_s=60.0, parked_recheck_s=10.0)
    lines = asyncio.run(workload(settings))
    write_digests(out, settings, lines)


def write_digests(out: Path, settings: Settings, lines: list[bytes]) -> None:
    """Write ``lines`` (the records) and the ledger's rows to ``out``; print their SHA-256."""
    engine = sa.create_engine(settings.database_url)
    with engine.connect() as conn:
        ledger = [
            f"{table} {tuple(row)!r}".encode()
            for table in ("ledger_entries", "ledger_head")
            for row in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY rowid"))  # noqa: S608 - fixed names
        ]
    engine.dispose()
    records = b"\n".join(lines)
    (out / "records.txt").write_bytes(records)
    rows = b"\n".join(ledger)
    (out / "ledger.txt").write_bytes(rows)
    masked = hashlib.sha256(WALL_CLOCK.sub(b'"timestamp":"-"', records)).hexdigest()
    print(f"{len(lines)} records, sha256 (Bundle timestamps masked) {masked}")
    print(f"{len(ledger)} ledger rows, sha256 {hashlib.sha256(rows).hexdigest()}")


if __name__ == "__main__":
    warnings.simplefilter("ignore", ResourceWarning)  # the stages' Kafka clients are made, never started
    main(Path(sys.argv[1]))
