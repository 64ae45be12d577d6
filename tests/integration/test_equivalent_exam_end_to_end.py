"""Lag (2017:209) on the real broker: a placed child's equivalent examination closes its request reminder.

Västmanland's agreement: social services finds out whether a health examination is already done and
assesses whether it is equivalent to the examination for placed children; only then does it notify the
region. ``social.equivalent-health-exam-exists`` is that assessment. Sent while the child's placement waits
for its request, it closes the reminder, nobody receives anything and the ledger records it as the reason;
sent when no placement waits (here: a second time), it is refused, the ledger says so and only the sender
is told. Events happen now, so no deadline falls due while the test reads.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from sambus.consent.compliance import Compliance, LedgerQuery
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.router.stages.deadlines import deadlines
from tests.integration.conftest import Running
from tests.integration.test_answers_end_to_end import BU_HALSAN, CHILD, SOCIAL
from tests.integration.walks import Walk
from tests.present import day

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

RESIDENCE = {"line": ["Storgatan 1"], "postalCode": "722 10", "city": "Västerås", "municipality": "1980"}
EQUIVALENT = {"organisationNumber": SOCIAL, "assessedBy": "ifo-handlaggare-41", "examinedOn": day(-60)}
WAIT_S = 60.0


def _reminder_closed(running: Running) -> bool | None:
    """Whether the placement's 2017:209 request deadline is closed (``None``: not opened yet)."""
    with running.app.deadlines._engine.connect() as conn:  # noqa: SLF001 - the test reads the table itself
        row = conn.execute(
            sa.select(deadlines.c.closed_at).where(deadlines.c.name == "health-exam-request")
        ).first()
    return None if row is None else row.closed_at is not None


async def _until(condition, what: str) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    ends = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < ends, f"waited {WAIT_S:.0f} s for {what}"
        await asyncio.sleep(0.2)


def _entries(running: Running) -> list:
    return [
        e
        for e in Compliance(running.app.ledger.engine).select(LedgerQuery())
        if e.rule_id == "equivalent-health-exam"
    ]


async def test_an_equivalent_examination_closes_the_reminder_and_a_second_statement_is_refused(
    running: Running,
) -> None:
    running.consent(
        CHILD, AgencyKind.BU_HALSAN, AgencyKind.SOCIAL_SERVICES, purpose=Purpose.INFORMATION_SHARING
    )
    walk = Walk(running)
    await walk.send(
        "social",
        "placement-started",
        "placed",
        {
            "placingMunicipality": "1980",
            "legalBasis": "sol",
            "notify": [{"hsaId": BU_HALSAN}],
            "form": "family_home",
            "start": day(),
            "residence": RESIDENCE,
        },
    )
    await walk.expect({("vastmanland-bu-halsan", "placement-started"): 1})
    await _until(lambda: _reminder_closed(running) is False, "the placement's request reminder")

    await walk.send("social", "equivalent-health-exam-exists", "equivalent", EQUIVALENT)
    await _until(lambda: _reminder_closed(running) is True, "the reminder to close")
    await _until(lambda: len(_entries(running)) == 1, "the ledger entry")
    [entry] = _entries(running)
    assert (entry.outcome, entry.recipient_id) == ("permit", "sambus-registry")
    assert "equivalent examination exists" in entry.reason
    assert "ifo-handlaggare-41" in entry.reason
    await walk.expect({})  # nobody received anything for the assessment

    await walk.send("social", "equivalent-health-exam-exists", "equivalent-again", EQUIVALENT)
    await walk.expect({("vasteras-socialtjanst", "delivery-denied"): 1})
    refusal = walk.message("vasteras-socialtjanst", "delivery-denied")
    text = refusal["entry"][1]["resource"]["payload"][0]["contentString"]
    assert "no placement of this child waits for its 2017:209 health-examination request" in text
    await _until(lambda: len(_entries(running)) == 2, "the refusal's ledger entry")
    assert sorted(e.outcome for e in _entries(running)) == ["deny", "permit"]
    await walk.no_dead_letters()
