"""The parked stage reads the consent registry once per batch, and again when a record falls due later."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord
from tests.unit.test_delivery_batch_facts import (
    DENTAL,
    NOW,
    PSEUDONYMIZER,
    TOPICS,
    Ledger,
    _delivery,
    _example,
    _record,
    _sip,
    engine,
    registry,
)

from sambus.consent import ConsentPolicy, ConsentRegistry
from sambus.contracts.fhir.registry import registry_facts
from sambus.contracts.registry_facts import Custody
from sambus.contracts.topics import Header, RecordHeaders
from sambus.router.routing.directory import RoutingDirectory
from sambus.router.stages.parked import ParkedHandler

__all__ = ["engine", "registry"]  # fixtures

RECHECK = dt.timedelta(seconds=10)


async def _parked(
    registry: ConsentRegistry, event: dict[str, Any], *, at: dt.datetime, offset: int
) -> ConsumerRecord:
    """The parked record the delivery stage makes of ``event`` at ``at`` for dental care (no consent yet)."""
    delivery = _delivery(registry)
    delivery._clock = lambda: at  # noqa: SLF001 - the time the message was parked
    [parked] = [out for out in await delivery(_record(event, 0)) if out.topic == TOPICS.parked]
    assert RecordHeaders.of(parked.headers).text(Header.RECIPIENT) == DENTAL
    return parked.as_consumed(offset=offset, timestamp=int(at.timestamp() * 1000))


class Clock:
    """The parked stage's clock; its sleep moves it on and runs what happens meanwhile."""

    def __init__(self, at: dt.datetime) -> None:
        self.now = at
        self.meanwhile: list[Any] = []

    def __call__(self) -> dt.datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)
        while self.meanwhile:
            self.meanwhile.pop(0)()


def _handler(
    registry: ConsentRegistry,
    clock: Clock,
    ledger: Ledger,
    expire_after: dt.timedelta = dt.timedelta(days=14),
) -> ParkedHandler:
    return ParkedHandler(
        topics=TOPICS,
        directory=RoutingDirectory.load(),
        policy=ConsentPolicy(registry),
        ledger=ledger,
        clock=clock,
        expire_after=expire_after,
        recheck=RECHECK,
        sleep=clock.sleep,
        batch_facts=registry,
    )


async def _batch(handler: ParkedHandler, batch: list[ConsumerRecord]) -> list[list[str]]:
    """Handle ``batch`` as the stage does; the topics each record went to."""
    await handler.prepare(batch)
    made = [[out.topic for out in await handler(record)] for record in batch]
    handler.before_commit()
    handler.after_commit()
    return made


def _consent(engine: sa.Engine) -> None:
    """The delivery stage records the guardians' consent (another process: a registry of its own)."""
    elsewhere = ConsentRegistry(engine, PSEUDONYMIZER)
    elsewhere.apply(registry_facts(json.loads(_record(_example("social.consent-recorded"), 0).value)))


@pytest.mark.asyncio
async def test_a_consent_recorded_while_a_parked_message_waits_for_its_check_releases_it_then(
    registry, engine
) -> None:
    """The batch's facts were read for its first record; the second falls due later, after a consent came:
    it is decided by facts read once it was due, as when every record read its own."""
    first = await _parked(registry, _sip("sip-1"), at=NOW, offset=0)
    second = await _parked(registry, _sip("sip-2"), at=NOW + dt.timedelta(seconds=60), offset=1)
    clock = Clock(NOW + RECHECK)  # the first is due now, the second in 60 s
    clock.meanwhile.append(lambda: _consent(engine))
    ledger = Ledger()

    made = await _batch(_handler(registry, clock, ledger), [first, second])

    assert made[0] == [TOPICS.parked_recheck]  # no consent yet: checked again later
    assert TOPICS.deliver("vastmanland-folktandvarden") in made[1], made[1]
    assert [r.outcome for r in ledger.records if r.recipient_id == DENTAL] == ["permit"]


@pytest.mark.asyncio
async def test_a_batch_of_due_records_reads_each_registry_table_once(registry, engine) -> None:
    civic = [f"20120315-00{n}" for n in ("06", "14", "22")]
    for number in civic:
        registry.set_custody(
            PSEUDONYMIZER.of(number.replace("-", "")),
            Custody.SOLE,
            (PSEUDONYMIZER.of("198004121235"),),
            at=NOW - dt.timedelta(days=2),
        )
    batch = [
        await _parked(registry, _sip(f"sip-{n}", number), at=NOW, offset=n) for n, number in enumerate(civic)
    ]
    batch = [dataclasses.replace(record, offset=n) for n, record in enumerate(batch)]
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    clock = Clock(NOW + RECHECK)  # every record is due

    made = await _batch(_handler(registry, clock, Ledger()), batch)

    assert made == [[TOPICS.parked_recheck]] * 3
    assert len(statements) == 5  # children, custody, protections, consents, releases: once for 3 children
