"""Custody and withdrawal on the real broker, from the agencies' own events: only current guardians consent.

A school invites BU-hälsan to a SIP; social services record custody, then consents. A foster parent's
consent releases nothing; the two guardians' separate records, together, release the invitation exactly
once; after a withdrawal the next invitation is refused for the withdrawal and the school is told; the
ledger says why at each step.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from sambus.consent.compliance import Compliance, LedgerQuery
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.topics import Header
from sambus.router.settings import Settings
from tests.integration.conftest import Running, sip_event
from tests.present import moment

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CHILD = "20120315-0006"
MOTHER = "19800412-1235"
FATHER = "19820907-2340"
FOSTER_PARENT = "19700404-0106"
BU_HALSAN = {"hsaId": "SE2321000206-1001"}
CASE_KEY = b"case-custody-1"
INITIATOR = "vasteras-skola-sodra"
"""The school that sends every sip_event (school unit 19800002)."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Parked messages are checked every half second."""
    return settings.model_copy(update={"parked_recheck_s": 0.5})


def _social(kind: str, event_id: str, data: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "type": f"se.sambus.social.{kind}.v1",
            "id": event_id,
            "source": "socialtjanst-vasteras",
            "time": moment(),
            "data": {"child": {"civicNo": CHILD}, **data},
        }
    ).encode("utf-8")


def _consent(event_id: str, *signers: str) -> bytes:
    return _social(
        "consent-recorded",
        event_id,
        {
            "consentId": event_id,
            "purpose": "sip",
            "agencyKinds": ["bu_halsan"],
            "givenBy": "guardian",
            "guardians": list(signers),
            "validFrom": moment(days=-19),
        },
    )


async def _custody(running: Running, form: str, *guardians: str) -> None:
    await running.send(
        running.topics.agency_events("social"),
        _social(
            "custody-updated",
            "custody-1",
            {"guardians": list(guardians), "custody": form, "at": moment(days=-19)},
        ),
        key=CASE_KEY,
    )


async def _registry_says(running: Running, text: str) -> None:
    """Wait until the registry, fed from social services' events, answers with ``text`` for BU-hälsan."""
    child = running.app.pseudonymizer.of(CHILD.replace("-", ""))
    reason = ""
    for _ in range(300):
        answer = running.app.registry.consent_in_force(
            child=child, purpose=Purpose.SIP, agency_kind=AgencyKind.BU_HALSAN, at=dt.datetime.now(dt.UTC)
        )
        reason = answer.reason
        if text in reason:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the registry still says {reason!r}")


def _reasons(running: Running) -> list[tuple[str, str]]:
    found = Compliance(running.app.ledger.engine).select(LedgerQuery(recipient_id="vastmanland-bu-halsan"))
    return [(entry.outcome, entry.reason) for entry in found]


async def test_a_foster_parents_consent_releases_nothing(running: Running) -> None:
    """The placed child's mother has sole custody; the foster parent it lives with signs a consent."""
    social = running.topics.agency_events("social")
    await _custody(running, "sole", MOTHER)
    await running.send(social, _consent("samtycke-familjehem", FOSTER_PARENT), key=CASE_KEY)
    await _registry_says(running, "not a current guardian")
    await running.send(running.topics.agency_events("school"), sip_event("sip-1", CHILD, BU_HALSAN))

    [parked] = await running.read(running.topics.parked, count=1)
    assert dict(parked.headers)[Header.DECISION] == b"await_consent"
    await asyncio.sleep(2)
    assert await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=1, timeout=2) == []
    [(outcome, reason)] = _reasons(running)[:1]
    assert outcome == "await_consent"
    assert "not a current guardian" in reason


async def test_two_guardians_separate_records_release_the_sip_once(running: Running) -> None:
    social = running.topics.agency_events("social")
    deliver = running.topics.deliver("vastmanland-bu-halsan")
    await _custody(running, "joint", MOTHER, FATHER)
    await running.send(social, _consent("samtycke-mor", MOTHER), key=CASE_KEY)
    await _registry_says(running, "1 gave it")
    await running.send(running.topics.agency_events("school"), sip_event("sip-2", CHILD, BU_HALSAN))
    await running.read(running.topics.parked, count=1)
    await asyncio.sleep(1.5)
    assert await running.read(deliver, count=1, timeout=1) == [], "one of two joint guardians is not enough"

    await running.send(social, _consent("samtycke-far", FATHER), key=CASE_KEY)

    delivered = await running.read(deliver, count=2, timeout=8)
    assert len(delivered) == 1, "the invitation is released exactly once"
    assert dict(delivered[0].headers)[Header.DECISION] == b"permit"
    permits = [reason for outcome, reason in _reasons(running) if outcome == "permit"]
    assert len(permits) == 1
    assert "samtycke-far + samtycke-mor" in permits[0]


async def test_a_withdrawal_denies_the_next_message_and_tells_the_initiator(running: Running) -> None:
    """After the guardian withdraws, the next invitation is refused for the withdrawal, not parked."""
    social = running.topics.agency_events("social")
    school = running.topics.agency_events("school")
    await _custody(running, "sole", MOTHER)
    await running.send(social, _consent("samtycke-mor", MOTHER), key=CASE_KEY)
    await _registry_says(running, "a guardian's consent samtycke-mor")
    await running.send(school, sip_event("sip-before", CHILD, BU_HALSAN))
    [before] = await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=1)
    assert dict(before.headers)[Header.DECISION] == b"permit"

    withdrawal = _social(
        "consent-withdrawn", "withdrawal-1", {"consentId": "samtycke-mor", "at": moment(days=-1)}
    )
    await running.send(social, withdrawal, key=CASE_KEY)
    await _registry_says(running, "withdrawn")
    await running.send(school, sip_event("sip-after", CHILD, BU_HALSAN))

    [told] = await running.read(running.topics.deliver(INITIATOR), count=1)
    assert dict(told.headers)[Header.EVENT_CODE] == b"delivery-denied"
    assert "withdrawn" in told.value.decode("utf-8")
    assert CHILD.replace("-", "") not in told.value.decode("utf-8")
    assert len(await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=2, timeout=3)) == 1
    assert await running.read(running.topics.parked, count=1, timeout=1) == []
    outcomes = [outcome for outcome, _ in _reasons(running)]
    assert outcomes == ["permit", "deny"]
    assert _reasons(running)[1][1].startswith("withdrawn: consent samtycke-mor")


async def test_with_custody_unknown_a_parents_consent_releases_nothing(running: Running) -> None:
    """No custody event has reached sambus: a consent signed by the mother does not count (fails closed)."""
    await running.send(
        running.topics.agency_events("social"), _consent("samtycke-okand", MOTHER), key=CASE_KEY
    )
    await _registry_says(running, "custody is not known")
    await running.send(running.topics.agency_events("school"), sip_event("sip-4", CHILD, BU_HALSAN))

    [parked] = await running.read(running.topics.parked, count=1)
    assert dict(parked.headers)[Header.DECISION] == b"await_consent"
    await asyncio.sleep(2)
    assert await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=1, timeout=2) == []
    [(outcome, reason)] = _reasons(running)[:1]
    assert outcome == "await_consent"
    assert "custody is not known" in reason


async def test_a_specially_appointed_guardian_consents_and_the_parent_no_longer_does(
    running: Running,
) -> None:
    """Särskilt förordnad vårdnadshavare: the appointed guardian replaces the parents and consents."""
    social = running.topics.agency_events("social")
    deliver = running.topics.deliver("vastmanland-bu-halsan")
    await _custody(running, "specially_appointed", FOSTER_PARENT)
    await running.send(social, _consent("samtycke-mor-ersatt", MOTHER), key=CASE_KEY)
    await _registry_says(running, "not a current guardian")
    await running.send(running.topics.agency_events("school"), sip_event("sip-5", CHILD, BU_HALSAN))
    await running.read(running.topics.parked, count=1)
    await asyncio.sleep(1.5)
    assert await running.read(deliver, count=1, timeout=1) == [], (
        "the replaced parent's consent counts for nothing"
    )

    await running.send(social, _consent("samtycke-forordnad", FOSTER_PARENT), key=CASE_KEY)

    [delivered] = await running.read(deliver, count=1, timeout=30)
    assert dict(delivered.headers)[Header.DECISION] == b"permit"
    assert any("samtycke-forordnad" in reason for outcome, reason in _reasons(running) if outcome == "permit")
