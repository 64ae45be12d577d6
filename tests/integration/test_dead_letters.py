"""Malformed agency events land on sambus.dlq with their original bytes and a reason; nothing stops."""

from __future__ import annotations

import json

import pytest

from sambus.contracts.agencies import AgencyKind
from sambus.contracts.topics import Header
from sambus.router.kafka.dead_letters import open_sealed
from tests.integration.conftest import Running, sip_event

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

BU_HALSAN = {"hsaId": "SE2321000206-1001"}


def _missing_field() -> bytes:
    event = json.loads(sip_event("bad-3", "201203150006", BU_HALSAN))
    del event["data"]["schoolUnitCode"]
    return json.dumps(event).encode()


async def test_malformed_events_are_dead_lettered_and_the_consumer_keeps_running(running: Running) -> None:
    school = running.topics.agency_events("school")
    bad = {
        b"{not json": "not valid JSON",
        sip_event(
            "bad-2", "20120315-0007", BU_HALSAN
        ): "data.child.civicNo: the personnummer has a wrong check digit",
        _missing_field(): "data.schoolUnitCode: Field required",
    }
    for value in bad:
        await running.send(school, value, headers=[("origin", b"test")])
    running.consent("201203150014", AgencyKind.BU_HALSAN)
    await running.send(school, sip_event("good-1", "201203150014", BU_HALSAN))

    dead = await running.read(running.topics.dlq, count=3)
    [delivered] = await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=1)

    assert len(dead) == 3
    for record in dead:
        headers = dict(record.headers)
        original, original_headers = open_sealed(record.value, tuple(record.headers), running.app.dlq_cipher)
        assert original in bad, "the dead letter must carry the original bytes, sealed"
        assert record.value not in bad
        reason = headers[Header.DLQ_REASON].decode()
        assert bad[original] in reason
        assert headers[Header.DLQ_ERROR] == b"invalid_event"
        assert headers[Header.DLQ_SOURCE_TOPIC] == school.encode()
        assert int(headers[Header.DLQ_SOURCE_OFFSET]) >= 0
        assert dict(original_headers)["origin"] == b"test"
        assert "origin" not in headers
        assert "201203150007" not in reason
        assert "0007" not in reason
    assert dict(delivered.headers)[Header.DECISION] == b"permit"


async def test_intent_for_an_unknown_recipient_is_dead_lettered(running: Running) -> None:
    running.consent("201203150006", AgencyKind.BU_HALSAN)
    unknown = {"hsaId": "SE2321000206-9999"}

    await running.send(
        running.topics.agency_events("school"), sip_event("e-9", "201203150006", BU_HALSAN, unknown)
    )

    [dead] = await running.read(running.topics.dlq, count=1)
    [delivered] = await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=1)
    assert dead.topic == running.topics.dlq
    headers = dict(dead.headers)
    assert headers[Header.DLQ_ERROR] == b"unknown_recipient"
    assert b"organisation identifier" in headers[Header.DLQ_REASON]
    assert b"9999" not in headers[Header.DLQ_REASON], "the reason never repeats a value of the message"
    assert headers[Header.DLQ_SOURCE_TOPIC] == running.topics.intents.encode()
    assert dead.key is None, "a dead letter never carries a key (it could be a personal identity number)"
    assert dict(delivered.headers)[Header.RECIPIENT] == b"vastmanland-bu-halsan"
