"""What intake, delivery, processes and parked write over a varied workload, fixed key and clock: two trees
compared byte for byte.

    PYTHONPATH=<tree>/src .venv/bin/python bench/delivery_outputs.py OUTDIR

The 68 contract examples (``contracts/examples``) and 300 school SIPs (``bench_pipeline.events``) for 50
children whose registry facts vary by child (sole and joint custody, a consent signed by one or both
guardians, withdrawn, not yet valid, naming one organisation or one process, the child's objection, hidden
residence, sekretessmarkering, secrecy against the guardians, none at all). The whole pipeline runs twice,
each time on a fresh database, with the delivery stage's batches of 500 and of 37: intake, processes
(first, so that answers find the processes they answer), delivery, then the parked stage once its records
are due. Writes ``records-<batch>.txt`` (every record each stage made: stage, topic, key, headers, value;
what a handler raised) and ``ledger-<batch>.txt`` (the ledger's entries and head, and the registry's
tables) and prints their SHA-256. The Bundles' ``timestamp`` (translation time, the wall
clock) is masked in the digest, and the registry's ``recorded_at`` of a residence release (the wall clock);
nothing else is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import sys
import warnings
from pathlib import Path

import sqlalchemy as sa
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import events
from bench_stage_cpu import Record, as_records, record, run_stage
from common import personnummer

from sambus.consent import ConsentGrant
from sambus.consent.registry import OBJECTION, Protection
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.registry_facts import Custody
from sambus.router.kafka.records import Outgoing
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.service.schema import create_engine, upgrade
from sambus.router.settings import Settings
from sambus.router.stages.transactional import TransactionalStage

T0 = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
EXAMPLES = Path(__file__).resolve().parent.parent / "contracts" / "examples"
WALL_CLOCK = re.compile(rb'"timestamp":"[^"]*"')
REGISTRY_TABLES = ("consents", "custody", "protections", "residence_releases", "children", "care_contacts")
KINDS = frozenset({AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN})


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def seed(app: Sambus) -> None:
    """Registry facts that vary with the child's number (its remainder by 13)."""
    day = dt.timedelta(days=1)
    for n in range(50):
        child = app.pseudonymizer.of(personnummer(n))
        case = n % 13
        guardians: tuple[str, ...] = ("guardian-a", "guardian-b") if case in {1, 2} else ("guardian-a",)
        custody = Custody.JOINT if case in {1, 2} else Custody.SOLE
        if case != 12:  # noqa: PLR2004 - the child without custody recorded
            app.registry.set_custody(child, custody, guardians, at=T0 - 3 * day)
        signed = ("guardian-a",) if case == 1 else guardians
        grant: dict[str, object] = {
            "consent_id": f"c{n}", "child": child, "purpose": Purpose.SIP, "agency_kinds": KINDS,
            "given_by": "guardian", "guardians": signed, "valid_from": T0 - day,
        }  # fmt: skip
        if case == 4:  # noqa: PLR2004
            grant["valid_from"] = T0 + day
        elif case == 5:  # noqa: PLR2004
            grant["organisations"] = (("urn:oid:1.2.752.29.4.19", "SE2321000206-1001"),)
        elif case == 6:  # noqa: PLR2004
            grant["process_id"] = "some-other-process"
        if case != 11:  # noqa: PLR2004 - the child without consent
            app.registry.record(ConsentGrant(**grant), now=T0 - day)  # type: ignore[arg-type]
        if case == 3:  # noqa: PLR2004
            app.registry.withdraw(f"c{n}", at=T0 - dt.timedelta(hours=1), child=child)
        elif case == 7:  # noqa: PLR2004
            objection = ConsentGrant(
                consent_id=f"o{n}", child=child, purpose=Purpose.SIP, agency_kinds=KINDS, given_by=OBJECTION,
                valid_from=T0 - dt.timedelta(hours=2),
            )  # fmt: skip
            app.registry.record(objection, now=T0 - day)
        elif case in {8, 9, 10}:
            kind = {
                8: Protection.HIDDEN_RESIDENCE, 9: Protection.SEKRETESSMARKERING,
                10: Protection.SECRET_FROM_GUARDIANS,
            }[case]  # fmt: skip
            app.registry.protect(f"p{n}", child=child, kind=kind, valid_from=T0 - 2 * day)


def caught(stage: TransactionalStage, errors: list[bytes]) -> None:
    """``stage``'s handler noting what it raises for a record in ``errors`` (as output, not to stop)."""
    handler = stage._handler  # noqa: SLF001 - the stage's own handler, wrapped

    async def handle(one: Record) -> list[Outgoing]:
        try:
            return await handler(one)
        except Exception as exc:  # noqa: BLE001 - every error is an output compared
            errors.append(f"{stage.name} error {one.offset} {type(exc).__name__}: {exc}".encode())
            return []

    stage._handler = handle  # noqa: SLF001


def lines_of(stage: str, made: list[Outgoing]) -> list[bytes]:
    return [f"{stage} {o.topic} {o.key!r} {o.value!r} {o.headers!r}".encode() for o in made]


async def workload(settings: Settings, batch: int) -> list[bytes]:
    clock = Clock()
    app = bootstrap(settings, bootstrap_servers="unused:9092", clock=clock)
    seed(app)
    stages = {stage.name: stage for stage in app.build_stages()}
    stages["delivery"]._max_batch = batch  # noqa: SLF001 - the batch size compared
    errors: list[bytes] = []
    for stage in stages.values():
        caught(stage, errors)
    topics = app.topics
    values = [p.read_bytes() for p in sorted(EXAMPLES.glob("*.json"))] + events(300, "out")
    sources = [record(topics.agency_events("school"), n, v, None, ()) for n, v in enumerate(values)]
    lines: list[bytes] = []
    intake = await run_stage(stages["intake"], sources)
    lines += lines_of("intake", intake)
    intents = as_records(intake, topics.intents)
    lines += lines_of("processes", await run_stage(stages["processes"], intents))
    delivered = await run_stage(stages["delivery"], intents)
    lines += lines_of("delivery", delivered)
    clock.now = T0 + dt.timedelta(seconds=11)
    lines += lines_of("parked", await run_stage(stages["parked"], as_records(delivered, topics.parked)))
    app.engine.dispose()
    return lines + errors


def tables(url: str) -> list[bytes]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [
            f"{table} {tuple(row)!r}".encode()
            for table in ("ledger_entries", "ledger_head", *REGISTRY_TABLES)
            for row in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY rowid"))  # noqa: S608 - fixed names
        ]
        released = {
            f"residence_releases {tuple(row)!r}".encode(): f"residence_releases {tuple(row)[:-1]!r}".encode()
            for row in conn.execute(sa.text("SELECT * FROM residence_releases ORDER BY rowid"))
        }
    engine.dispose()
    return [released.get(row, row) for row in rows]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for batch in (500, 37):
        db = out / f"delivery-outputs-{batch}.db"
        db.unlink(missing_ok=True)
        settings = Settings(
            topic_prefix="cmp.", database_url=f"sqlite:///{db}", pseudonym_key=SecretStr("ab" * 32),
            instance_id="cmp1", parked_recheck_s=10.0,
        )  # fmt: skip
        engine = create_engine(settings.database_url)
        upgrade(engine)
        engine.dispose()
        lines = asyncio.run(workload(settings, batch))
        records = b"\n".join(lines)
        (out / f"records-{batch}.txt").write_bytes(records)
        entries = tables(settings.database_url)
        rows = b"\n".join(entries)
        (out / f"ledger-{batch}.txt").write_bytes(rows)
        masked = hashlib.sha256(WALL_CLOCK.sub(b'"timestamp":"-"', records)).hexdigest()
        counts = {s: sum(line.startswith(f"{s} ".encode()) for line in lines) for s in ("intake", "delivery")}
        print(f"batch {batch}: {len(lines)} records {counts}, sha256 (Bundle timestamps masked) {masked}")
        digest = hashlib.sha256(rows).hexdigest()
        print(f"batch {batch}: {len(entries)} ledger and registry rows, sha256 {digest}")


if __name__ == "__main__":
    warnings.simplefilter("ignore", ResourceWarning)  # the stages' Kafka clients are made, never started
    main(Path(sys.argv[1]))
