"""A newly arrived child without personnummer or samordningsnummer, on the real broker.

An asylum-seeking child known only by an LMA number is placed (SoL) and offered the 2017:209 examination, as
any placed child: the consent recorded under the LMA number lets the placement notices through; health care
and dental care get the examination requests; health care's statement goes back to the social services
that asked. Another child whose national reservnummer is written with the very same characters is a
different child: its placement waits for its own consent. No Kafka key, header or log line carries either
number.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.fhir.message import deterministic_id
from sambus.contracts.identifiers import (
    LMA_NUMBER_SYSTEM,
    NATIONAL_RESERVE_NUMBER_SYSTEM,
    child_key,
)
from sambus.contracts.topics import Header
from tests.integration.conftest import Running

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

NUMBER = "12-345678"
LMA_CHILD = {"lmaNumber": NUMBER, "birthDate": "2013-05-02"}
RESERVE_CHILD = {"reserveNumber": {"value": NUMBER}, "birthDate": "2012-01-09"}
GUARDIAN = "19800412-1235"  # a särskilt förordnad vårdnadshavare of an unaccompanied child
SOURCE = "socialtjanst-vasteras"
EXAM_REQUEST = "exam-lma-1"


def _event(source: str, kind: str, event_id: str, data: dict[str, Any], *, at: dt.datetime) -> bytes:
    return json.dumps(
        {
            "type": f"se.sambus.{kind}.v1",
            "id": event_id,
            "source": source,
            "time": at.isoformat(),
            "data": data,
        }
    ).encode("utf-8")


def _placement(child: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    return {
        "child": child,
        "placingMunicipality": "1980",
        "legalBasis": "sol",
        "notify": [{"hsaId": "SE2321000206-1001"}, {"hsaId": "SE2321000206-1003"}],
        "form": "hvb",
        "start": at.date().isoformat(),
        "residence": {
            "line": ["Storgatan 1"],
            "postalCode": "722 11",
            "city": "Västerås",
            "municipality": "1980",
        },
    }


async def _until(condition: Callable[[], bool], timeout: float = 60) -> None:
    """Wait (bounded) for ``condition``: the consent registry stage records facts on its own consumer."""
    for _ in range(int(timeout * 5)):
        if condition():
            return
        await asyncio.sleep(0.2)
    pytest.fail("the consent registry did not record the consent in time")


def _patient_identifiers(record: ConsumerRecord[bytes, bytes]) -> list[dict[str, str]]:
    bundle = json.loads(record.value)
    return [
        identifier
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "Patient"
        for identifier in entry["resource"]["identifier"]
    ]


def _event_code(record: ConsumerRecord[bytes, bytes]) -> bytes:
    return dict(record.headers)[Header.EVENT_CODE]


async def test_an_lma_child_is_placed_and_examined_and_never_taken_for_another(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sambus")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    social = running.topics.agency_events("social")
    ehr = running.topics.agency_events("ehr")
    send = running.send
    await send(
        social,
        _event(
            SOURCE,
            "social.custody-updated",
            "custody-lma-1",
            {
                "child": LMA_CHILD,
                "guardians": [GUARDIAN],
                "custody": "sole",
                "at": (now - dt.timedelta(days=3)).isoformat(),
            },
            at=now - dt.timedelta(days=3),
        ),
    )
    await send(
        social,
        _event(
            SOURCE,
            "social.consent-recorded",
            "consent-lma-1",
            {
                "child": LMA_CHILD,
                "consentId": "samtycke-lma-1",
                "purpose": "information_sharing",
                "agencyKinds": ["bu_halsan", "dental", "social_services"],
                "givenBy": "guardian",
                "guardians": [GUARDIAN],
                "validFrom": (now - dt.timedelta(days=2)).isoformat(),
            },
            at=now - dt.timedelta(days=2),
        ),
    )
    lma_child = running.app.pseudonymizer.of(child_key(LMA_NUMBER_SYSTEM, NUMBER))
    await _until(
        lambda: (
            running.app.registry.covers(
                child=lma_child, purpose=Purpose.INFORMATION_SHARING, agency_kind=AgencyKind.DENTAL, at=now
            )
            is not None
        )
    )
    await send(
        social,
        _event(SOURCE, "social.placement-started", "placement-lma-1", _placement(LMA_CHILD, now), at=now),
    )
    await send(
        social,
        _event(SOURCE, "social.placement-started", "placement-rv-1", _placement(RESERVE_CHILD, now), at=now),
    )
    await send(
        social,
        _event(
            SOURCE,
            "social.health-exam-requested",
            EXAM_REQUEST,
            {
                "child": LMA_CHILD,
                "organisationNumber": "212000-2080",
                "healthCare": {"hsaId": "SE2321000206-1001"},
                "dentalCare": {"hsaId": "SE2321000206-1003"},
            },
            at=now,
        ),
    )

    bu_halsan = running.topics.deliver("vastmanland-bu-halsan")
    dental = running.topics.deliver("vastmanland-folktandvarden")
    to_health = await running.read(bu_halsan, count=2)
    to_dental = await running.read(dental, count=2)

    assert sorted(_event_code(r) for r in to_health) == [b"health-exam-requested", b"placement-started"]
    assert sorted(_event_code(r) for r in to_dental) == [b"health-exam-requested", b"placement-started"]

    process = deterministic_id(SOURCE, EXAM_REQUEST)
    await send(
        ehr,
        _event(
            "cosmic-region-vastmanland",
            "ehr.health-exam-completed",
            "statement-lma-1",
            {
                "processId": process,
                "child": LMA_CHILD,
                "hsaId": "SE2321000206-1001",
                "statement": "mental_physical",
                "documentId": "utlatande-lma-1",
                "answerTo": {"organisationNumber": "212000-2080"},
            },
            at=now + dt.timedelta(minutes=5),
        ),
    )
    to_social = await running.read(running.topics.deliver("vasteras-socialtjanst"), count=3)
    assert sorted(_event_code(r) for r in to_social) == [
        b"delivery-waiting",  # to BU-hälsan
        b"delivery-waiting",  # to dental care
        b"health-exam-completed",
    ]
    waiting = [r for r in to_social if _event_code(r) == b"delivery-waiting"]
    for notice in waiting:
        assert b"placement-rv-1" in notice.value, "the reservnummer child's placement waits for its consent"

    # Nothing else arrived: the reservnummer child's notices did not ride on the LMA child's consent.
    later = await running.read(bu_halsan, dental, count=5, timeout=3)
    assert len(later) == 4
    assert len(await running.read(running.topics.deliver("vasteras-socialtjanst"), count=4, timeout=3)) == 3

    lma_records = [*to_health, *to_dental, *[r for r in to_social if _event_code(r) != b"delivery-waiting"]]
    for record in lma_records:
        assert _patient_identifiers(record) == [{"system": LMA_NUMBER_SYSTEM, "value": NUMBER}]
    lma_key = running.app.pseudonymizer.of(child_key(LMA_NUMBER_SYSTEM, NUMBER)).encode()
    reserve_key = running.app.pseudonymizer.of(child_key(NATIONAL_RESERVE_NUMBER_SYSTEM, NUMBER)).encode()
    assert lma_key != reserve_key
    assert {r.key for r in lma_records} == {lma_key}
    assert {r.key for r in waiting} == {reserve_key}
    digits = NUMBER.replace("-", "")
    for record in [*lma_records, *waiting]:
        assert NUMBER.encode() not in record.key
        assert digits.encode() not in record.key
        for _, value in record.headers:
            assert NUMBER.encode() not in value
            assert digits.encode() not in value
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert NUMBER not in logged
    assert digits not in logged
