"""Parked messages on the real broker: released by a consent, expired with a notice; denials are told."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle

from sambus.consent.ledger import entries
from sambus.contracts.agencies import AgencyKind
from sambus.contracts.topics import Header
from sambus.router.settings import Settings
from tests.integration.conftest import Running, sip_event

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CHILD = "201203150006"
DENTAL = {"hsaId": "SE2321000206-1003"}
BUP = {"hsaId": "SE2321000206-1002"}
SCHOOL_TOPIC = "vasteras-skola-sodra"  # the initiator: school unit 19800002 in every sip_event


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Parked messages are checked every half second and expire after fifteen seconds.

    Four seconds was too short once each read also watched the pipeline's progress (a second consumer): the
    message expired while the test read what it had to before giving the consent."""
    return settings.model_copy(update={"parked_recheck_s": 0.5, "parked_expire_after_s": 15.0})


@pytest.fixture
def parking(running: Running) -> Running:
    """sambus running with those settings."""
    return running


def _ledger(running: Running) -> list[tuple[str, str, str]]:
    with sa.create_engine(running.app.settings.database_url).connect() as conn:
        query = sa.select(entries.c.recipient_id, entries.c.outcome, entries.c.rule_id).order_by(
            entries.c.seq
        )
        rows = conn.execute(query).all()
    return [(r, o, rule) for r, o, rule in rows]


def _notice(value: bytes) -> tuple[str, str, str]:
    bundle = Bundle.model_validate(json.loads(value))
    header, communication, outcome = (entry.resource for entry in bundle.entry)
    assert header.response is None, "a notice is not a response to a message the initiator sent"
    return header.eventCoding.code, communication.about[0].identifier.value, outcome.issue[0].diagnostics


async def test_a_parked_message_is_released_when_consent_arrives(parking: Running) -> None:
    await parking.send(parking.topics.agency_events("school"), sip_event("p-1", "20120315-0006", DENTAL))
    [parked] = await parking.read(parking.topics.parked, count=1)
    assert dict(parked.headers)[Header.DECISION] == b"await_consent"
    deliver = parking.topics.deliver("vastmanland-folktandvarden")
    # A fixed 2 s window (quiet=0): the parked message expires soon, so this read must not wait longer.
    assert await parking.read(deliver, count=1, timeout=2, quiet=0) == []
    [waiting] = await parking.read(parking.topics.deliver(SCHOOL_TOPIC), count=1)
    event, about, text = _notice(waiting.value)
    assert event == "delivery-waiting", "the school is told at once that its invitation waits"
    assert about == json.loads(parked.value)["identifier"]["value"]  # the event the school sent
    assert "Folktandvården Västmanland" in text
    assert "a consent for sip covering dental" in text, "the notice names the consent that is missing"
    assert CHILD not in waiting.value.decode()
    assert "20120315" not in waiting.value.decode()

    parking.consent(CHILD, AgencyKind.DENTAL)

    [delivered] = await parking.read(deliver, count=1)
    headers = dict(delivered.headers)
    assert headers[Header.DECISION] == b"permit"
    assert headers[Header.MESSAGE_ID] == dict(parked.headers)[Header.MESSAGE_ID]
    assert json.loads(delivered.value)["id"] == json.loads(parked.value)["id"]
    assert delivered.key == parked.key
    assert _ledger(parking) == [
        ("vastmanland-folktandvarden", "await_consent", "sip-consent"),
        ("vastmanland-folktandvarden", "permit", "sip-consent"),
    ]
    told = await parking.read(parking.topics.deliver(SCHOOL_TOPIC), count=2)
    assert [_notice(r.value)[0] for r in told] == ["delivery-waiting", "delivery-released"]
    assert "Folktandvården Västmanland" in _notice(told[1].value)[2]
    assert "guardian" not in told[1].value.decode(), "the release names no consent or custody"


async def test_a_parked_message_expires_and_the_initiator_is_told(parking: Running) -> None:
    await parking.send(parking.topics.agency_events("school"), sip_event("p-2", "20120315-0006", DENTAL))
    [parked] = await parking.read(parking.topics.parked, count=1)

    waiting, told = await parking.read(parking.topics.deliver(SCHOOL_TOPIC), count=2, timeout=30)

    assert _notice(waiting.value)[0] == "delivery-waiting"
    event, about, text = _notice(told.value)
    assert event == "parked-expired"
    assert about == json.loads(parked.value)["identifier"]["value"]  # the event the school sent
    assert "Folktandvården Västmanland" in text
    assert "expired" in text
    assert dict(told.headers)[Header.EVENT_CODE] == b"parked-expired"
    assert CHILD not in told.value.decode()
    assert await parking.read(parking.topics.deliver("vastmanland-folktandvarden"), count=1, timeout=1) == []
    assert ("vastmanland-folktandvarden", "deny", "parked-expired") in _ledger(parking)


async def test_a_denied_recipient_is_told_to_the_initiator(parking: Running) -> None:
    # BUP without an active care contact may not be invited to a SIP.
    await parking.send(parking.topics.agency_events("school"), sip_event("p-3", "20120315-0006", BUP))

    [told] = await parking.read(parking.topics.deliver(SCHOOL_TOPIC), count=1)

    event, _, text = _notice(told.value)
    assert event == "delivery-denied"
    assert "BUP" in text
    assert "active care contact" in text
    assert await parking.read(parking.topics.deliver("vastmanland-bup"), count=1, timeout=1) == []
