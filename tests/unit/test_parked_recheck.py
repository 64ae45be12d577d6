"""A parked message goes round its checks unchanged but for its check time, until a consent or its expiry.

What the parked stage's trimmed record reading must keep: the record parked again byte for byte with only
its next check time new, a consent given between two checks releasing the message at the next, and the
expiry still firing (and the next check never set past it).
"""

from __future__ import annotations

import datetime as dt

import pytest
from aiokafka.structs import ConsumerRecord
from tests.unit.test_delivery_batch_facts import DENTAL, NOW, TOPICS, Ledger, _sip, engine, registry
from tests.unit.test_parked_batch_facts import RECHECK, Clock, _consent, _handler, _parked

from sambus.contracts.fhir import EventCode
from sambus.contracts.topics import Header, RecordHeaders
from sambus.router.kafka.parked_headers import epoch_ms
from sambus.router.kafka.records import Outgoing
from sambus.router.stages.parked import ParkedHandler

__all__ = ["engine", "registry"]  # fixtures


async def _check(handler: ParkedHandler, record: ConsumerRecord) -> list[Outgoing]:
    """One record in a batch of its own, as the stage handles it."""
    await handler.prepare([record])
    made = await handler(record)
    handler.before_commit()
    handler.after_commit()
    return made


def _parked_again(record: ConsumerRecord, made: list[Outgoing], check_at: dt.datetime) -> ConsumerRecord:
    """``made`` is ``record`` parked again: its bytes and headers, but its check time now ``check_at``."""
    [again] = made
    assert again.topic == TOPICS.parked_recheck
    assert (again.key, again.value) == (record.key, record.value)
    before = RecordHeaders.of(record.headers)
    assert again.headers == (
        *before.without({Header.PARKED_CHECK_AT}),
        (Header.PARKED_CHECK_AT, epoch_ms(check_at)),
    )
    return again.as_consumed(offset=record.offset + 1)


def _event(made: list[Outgoing]) -> list[str | None]:
    return [RecordHeaders.of(out.headers).text(Header.EVENT_CODE) for out in made]


@pytest.mark.asyncio
async def test_a_consent_given_between_two_checks_releases_the_message_at_the_next(registry, engine) -> None:
    parked = await _parked(registry, _sip("sip-1"), at=NOW, offset=0)
    clock = Clock(NOW)
    ledger = Ledger()
    handler = _handler(registry, clock, ledger, dt.timedelta(days=14))

    first = await _check(handler, parked)  # waits for its check time, then finds no consent
    assert clock.now == NOW + RECHECK
    again = _parked_again(parked, first, NOW + 2 * RECHECK)
    assert ledger.records == []  # nothing decided for good yet

    clock.meanwhile.append(lambda: _consent(engine))  # given while the message waits for its next check
    released = await _check(handler, again)

    assert clock.now == NOW + 2 * RECHECK  # released at that next check, not one later
    assert released[0].topic == TOPICS.deliver(DENTAL), released
    assert _event(released)[1:] == [EventCode.DELIVERY_RELEASED]
    assert [(r.recipient_id, r.outcome) for r in ledger.records] == [(DENTAL, "permit")]


@pytest.mark.asyncio
async def test_a_message_that_waited_its_time_expires_and_its_initiator_is_told(registry) -> None:
    """Checked every 10 s for 25 s: the last check is set at the expiry, not past it, and denies it."""
    parked = await _parked(registry, _sip("sip-2"), at=NOW, offset=0)
    clock = Clock(NOW)
    ledger = Ledger()
    handler = _handler(registry, clock, ledger, dt.timedelta(seconds=25))

    once = _parked_again(parked, await _check(handler, parked), NOW + 2 * RECHECK)
    twice = _parked_again(once, await _check(handler, once), NOW + dt.timedelta(seconds=25))
    expired = await _check(handler, twice)

    assert clock.now == NOW + dt.timedelta(seconds=25)
    assert _event(expired) == [EventCode.PARKED_EXPIRED]
    assert [(r.recipient_id, r.outcome, r.rule_id) for r in ledger.records] == [
        (DENTAL, "deny", "parked-expired")
    ]
