"""The delivery stage reads the consent registry once per batch; a fact applied in a batch counts at once."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from sambus.adapters import translate_message
from sambus.consent import ConsentPolicy, ConsentRegistry, LedgerRecord, Pseudonymizer
from sambus.contracts.fhir.registry import registry_facts
from sambus.contracts.registry_facts import Custody
from sambus.contracts.topics import Topics
from sambus.router.cli.contracts import EXAMPLES_DIR
from sambus.router.kafka.records import Outgoing
from sambus.router.routing.directory import RoutingDirectory
from sambus.router.service.schema import upgrade
from sambus.router.stages.delivery import Delivery
from sambus.router.stages.intake import Intake

CHILD = "201203150006"
GUARDIANS = ("198004121235", "198209072340")  # who signs the example consent
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)  # the example consent holds from 08:00 UTC that day
TOPICS = Topics(prefix="t.")
PSEUDONYMIZER = Pseudonymizer(b"unit-test-pseudonym-key-0123456789abcdef")
DENTAL = "vastmanland-folktandvarden"  # invited by the SIP; only the example consent covers dental care


@pytest.fixture
def engine(tmp_path) -> Iterator[sa.Engine]:
    made = sa.create_engine("sqlite:///" + str(tmp_path / "r.db"))
    upgrade(made)
    yield made
    made.dispose()


@pytest.fixture
def registry(engine) -> ConsentRegistry:
    registry = ConsentRegistry(engine, PSEUDONYMIZER)
    registry.set_custody(
        PSEUDONYMIZER.of(CHILD),
        Custody.JOINT,
        tuple(PSEUDONYMIZER.of(g) for g in GUARDIANS),
        at=NOW - dt.timedelta(days=2),
    )
    return registry


def _feed(registry: ConsentRegistry):
    def feed(bundle: Mapping[str, Any]) -> None:
        facts = registry_facts(bundle)
        if facts:
            registry.apply(facts)

    return feed


class Ledger:
    """Keeps what the delivery stage appends, in order."""

    def __init__(self) -> None:
        self.records: list[LedgerRecord] = []

    def append(self, records: Sequence[LedgerRecord]) -> int:
        self.records.extend(records)
        return len(records)


def _delivery(registry: ConsentRegistry, ledger: Ledger | None = None) -> Delivery:
    return Delivery(
        topics=TOPICS,
        directory=RoutingDirectory.load(),
        policy=ConsentPolicy(registry),
        clock=lambda: NOW,
        ledger=ledger,
        registry_feed=_feed(registry),
        batch_facts=registry,
    )


async def _batch(delivery: Delivery, batch: list[ConsumerRecord]) -> list[list[Outgoing]]:
    """Handle ``batch`` as the stage does: prepare, each record, then the hooks of a commit."""
    await delivery.prepare(batch)
    made = [await delivery(record) for record in batch]
    delivery.before_commit()
    delivery.after_commit()
    return made


def _dental(ledger: Ledger) -> list[str]:
    """What was decided for dental care, message by message."""
    return [r.outcome for r in ledger.records if r.recipient_id == DENTAL]


def _record(event: dict[str, Any], offset: int) -> ConsumerRecord:
    [intent] = translate_message(json.dumps(event).encode("utf-8"))
    out = Intake(topics=TOPICS, pseudonymizer=PSEUDONYMIZER).intent_record(intent)
    return out.as_consumed(offset=offset, timestamp=1_763_629_200_000)


def _example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES_DIR / f"se.sambus.{name}.v1.json").read_text("utf-8"))
    return loaded


def _sip(event_id: str, civic_no: str = "20120315-0006") -> dict[str, Any]:
    return {
        "type": "se.sambus.school.sip-initiated.v1",
        "id": event_id,
        "source": "skolsystem-vasteras",
        "time": "2026-11-20T09:30:00+01:00",
        "data": {
            "child": {"civicNo": civic_no},
            "schoolUnitCode": "19800002",
            "initiatedBy": "student_health",
            "reason": "mental_health",
            "invite": [{"hsaId": "SE2321000206-1003"}],
        },
    }


@pytest.mark.asyncio
async def test_a_consent_applied_earlier_in_a_batch_is_seen_by_a_later_message_of_it(registry):
    ledger = Ledger()
    batch = [
        _record(_sip("sip-before"), 0),
        _record(_example("social.consent-recorded"), 1),
        _record(_sip("sip-after"), 2),
    ]

    await _batch(_delivery(registry, ledger), batch)  # the child's facts are read before the consent is in

    assert _dental(ledger) == ["await_consent", "permit"]


@pytest.mark.asyncio
async def test_a_withdrawal_applied_earlier_in_a_batch_stops_a_later_message_of_it(registry):
    ledger = Ledger()
    registry.apply(registry_facts(json.loads(_record(_example("social.consent-recorded"), 0).value)))
    withdrawal = _example("social.consent-withdrawn")
    withdrawal["time"] = withdrawal["data"]["at"] = "2026-11-20T10:30:00+01:00"  # before NOW
    batch = [_record(_sip("sip-before"), 1), _record(withdrawal, 2), _record(_sip("sip-after"), 3)]

    await _batch(_delivery(registry, ledger), batch)

    assert _dental(ledger) == ["permit", "deny"]


@pytest.mark.asyncio
async def test_a_custody_update_applied_earlier_in_a_batch_counts_for_a_later_message_of_it(registry):
    ledger = Ledger()
    registry.apply(registry_facts(json.loads(_record(_example("social.consent-recorded"), 0).value)))
    custody = _example("social.custody-updated")  # from 09:00+01:00, before both SIPs are decided
    custody["data"] |= {"custody": "sole", "guardians": ["19750101-1238"]}  # neither signer of the consent
    batch = [_record(_sip("sip-before"), 1), _record(custody, 2), _record(_sip("sip-after"), 3)]

    await _batch(_delivery(registry, ledger), batch)

    assert _dental(ledger) == ["permit", "await_consent"]  # signed by whom is no longer a guardian


@pytest.mark.asyncio
async def test_a_batch_reads_each_registry_table_once_whatever_its_size(registry, engine):
    ledger = Ledger()
    delivery = _delivery(registry, ledger)
    children = [f"2012031500{n}" for n in ("06", "14", "22", "30", "48")]
    civic = [f"{c[:8]}-{c[8:]}" for c in children]
    batch = [_record(_sip(f"sip-{n}", number), n) for n, number in enumerate(civic)]
    statements: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def seen(*args) -> None:
        statements.append(args[2])

    await delivery.prepare(batch)
    read_at_start = len(statements)
    for record in batch:
        await delivery(record)
    delivery.before_commit()
    delivery.after_commit()

    assert read_at_start == 5  # children, custody, protections, consents, releases: each once for 5 children
    assert len(statements) == read_at_start  # every decision was made from memory
    assert _dental(ledger) == ["await_consent"] * 5
    statements.clear()
    await delivery(batch[0])  # after the batch: the database is asked again
    assert any("FROM consents" in statement for statement in statements)
