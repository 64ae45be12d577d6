"""An LVU placement's residence waits for the hidden-residence answer, on the real broker.

Social services place a child under LVU and tell the school and BU-hälsan, before the board has answered
whether the residence is kept from the guardians (LVU 14 § second paragraph point 2). Nothing that reveals
where the child lives may go out yet: the notices wait (``await_answer`` in the ledger, with the reason),
and social services are told at once that they wait and for what. When the answer comes as the agencies'
own event, the notices go out: redacted for the guardian-facing school and labelled R + NOPAT when the
residence is hidden; as they are when it is not. A placement that carries the answer itself does not wait.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka.structs import ConsumerRecord

from sambus.consent.compliance import Compliance, LedgerQuery
from sambus.contracts.fhir.codes import ACT_CODE_SYSTEM, CONFIDENTIALITY_SYSTEM
from sambus.contracts.topics import Header
from sambus.router.routing.directory import PACKAGED_DIRECTORY
from sambus.router.settings import Settings
from tests.integration.conftest import Running
from tests.integration.test_protected_identity_end_to_end import dangling_references, reveals_residence
from tests.present import day, moment

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CHILD = "20120315-0006"
SCHOOL_ORGNR = "212000-1959"
SOCIAL = {"organisationNumber": "212000-2080"}
BU_HALSAN = {"hsaId": "SE2321000206-1001"}
SCHOOL = {"organisationNumber": SCHOOL_ORGNR}
GUARDIANS = ["19800412-1235", "19820907-2340"]
CASE_KEY = b"case-lvu-answer"
SOCIAL_TOPIC = "vasteras-socialtjanst"
"""The placing social services (requester ``social_services@1980``): the initiator told of the wait."""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """Södra skolan reachable by organisation number; parked messages checked every half second."""
    directory = yaml.safe_load(PACKAGED_DIRECTORY.read_text(encoding="utf-8"))
    for recipient in directory["recipients"]:
        if recipient["id"] == "vasteras-skola-sodra":
            recipient["identifiers"].append({"system": "urn:oid:2.5.4.97", "value": SCHOOL_ORGNR})
    path = tmp_path / "directory.yaml"
    path.write_text(yaml.safe_dump(directory, allow_unicode=True), encoding="utf-8")
    return settings.model_copy(update={"directory": path, "parked_recheck_s": 0.5})


NOW = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _event(kind: str, event_id: str, data: dict[str, Any], *, time: str | None = None) -> bytes:
    return json.dumps(
        {
            "type": f"se.sambus.social.{kind}.v1",
            "id": event_id,
            "source": "socialtjanst-vasteras",
            "time": time or moment(),
            "data": {"child": {"civicNo": CHILD}, **data},
        }
    ).encode("utf-8")


def _placement(**extra: Any) -> bytes:
    return _event(
        "placement-started",
        "placement-1",
        {
            "placingMunicipality": "1980",
            "legalBasis": "lvu",
            "notify": [SCHOOL, BU_HALSAN],
            "form": "family_home",
            "start": day(-1),
            "residence": {
                "line": ["Storgatan 1"],
                "postalCode": "722 11",
                "city": "Västerås",
                "municipality": "1980",
            },
            "schoolUnitCode": "19800002",
            **extra,
        },
    )


async def _custody_and_consent(running: Running) -> None:
    social = running.topics.agency_events("social")
    await running.send(
        social,
        _event(
            "custody-updated",
            "custody-1",
            {"guardians": GUARDIANS, "custody": "joint", "at": moment(days=-19)},
        ),
        key=CASE_KEY,
    )
    await running.send(
        social,
        _event(
            "consent-recorded",
            "consent-1",
            {
                "consentId": "samtycke-1",
                "purpose": "information_sharing",
                "agencyKinds": ["school", "bu_halsan"],
                "givenBy": "guardian",
                "guardians": GUARDIANS,
                "validFrom": moment(days=-19),
            },
        ),
        key=CASE_KEY,
    )


def _notice(record: ConsumerRecord[bytes, bytes]) -> tuple[str, str]:
    bundle = json.loads(record.value)
    communication = bundle["entry"][1]["resource"]
    return bundle["entry"][0]["resource"]["eventCoding"]["code"], communication["payload"][0]["contentString"]


def _labels(value: bytes) -> set[tuple[str, str]]:
    return {(x["system"], x["code"]) for x in json.loads(value).get("meta", {}).get("security", ())}


async def _waits(running: Running) -> None:
    """The placement is parked for both recipients, nothing is delivered, social services are told."""
    parked = await running.read(running.topics.parked, count=2)
    assert sorted(dict(r.headers)[Header.RECIPIENT] for r in parked) == [
        b"vasteras-skola-sodra",
        b"vastmanland-bu-halsan",
    ]
    assert {dict(r.headers)[Header.DECISION] for r in parked} == {b"await_answer"}
    told = await running.read(running.topics.deliver(SOCIAL_TOPIC), count=2)
    assert [_notice(r)[0] for r in told] == ["delivery-waiting", "delivery-waiting"]
    for record in told:
        text = _notice(record)[1]
        assert "answer whether the residence is hidden (LVU 14 §)" in text
        assert "Storgatan" not in text
        assert CHILD.replace("-", "") not in record.value.decode()
    for recipient in ("vasteras-skola-sodra", "vastmanland-bu-halsan"):
        assert await running.read(running.topics.deliver(recipient), count=1, timeout=2) == []
    waiting = [
        e
        for e in Compliance(running.app.ledger.engine).select(LedgerQuery())
        if e.event == "placement-started"
    ]
    assert {e.outcome for e in waiting} == {"await_answer"}
    assert all("LVU 14 §" in e.reason for e in waiting), "the ledger says why the placement waits"


async def test_the_placement_waits_and_goes_out_redacted_once_the_residence_is_hidden(
    running: Running,
) -> None:
    social = running.topics.agency_events("social")
    await _custody_and_consent(running)
    await running.send(social, _placement(), key=CASE_KEY)
    await _waits(running)

    await running.send(
        social,
        _event(
            "hidden-residence-decided",
            "hidden-1",
            {
                **SOCIAL,
                "decisionId": "beslut-2026-117",
                "validFrom": moment(hours=-23),
                "notify": [BU_HALSAN],
            },
            time=NOW,  # the units acknowledge the block hours after it: not during this test
        ),
        key=CASE_KEY,
    )

    [to_school] = await running.read(running.topics.deliver("vasteras-skola-sodra"), count=1)
    health = await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=2)
    assert dict(to_school.headers)[Header.DECISION] == b"permit_redacted"
    assert not reveals_residence(to_school.value), "the guardian-facing school learned where the child lives"
    assert not dangling_references(to_school.value)
    [placement] = [r for r in health if dict(r.headers)[Header.EVENT_CODE] == b"placement-started"]
    assert reveals_residence(placement.value), "health care needs the residence, hidden or not"
    for value in (to_school.value, placement.value):
        assert {(CONFIDENTIALITY_SYSTEM, "R"), (ACT_CODE_SYSTEM, "NOPAT")} <= _labels(value)
    told = await running.read(running.topics.deliver(SOCIAL_TOPIC), count=4)
    assert sorted(_notice(r)[0] for r in told) == ["delivery-released"] * 2 + ["delivery-waiting"] * 2


async def test_the_placement_goes_out_as_it_is_once_the_residence_is_not_hidden(running: Running) -> None:
    social = running.topics.agency_events("social")
    await _custody_and_consent(running)
    await running.send(social, _placement(), key=CASE_KEY)
    await _waits(running)

    await running.send(
        social,
        _event(
            "hidden-residence-not-needed",
            "not-hidden-1",
            {**SOCIAL, "decisionId": "beslut-2026-118", "at": moment(hours=-23)},
        ),
        key=CASE_KEY,
    )

    [to_school] = await running.read(running.topics.deliver("vasteras-skola-sodra"), count=1)
    [to_health] = await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=1)
    for record in (to_school, to_health):
        assert dict(record.headers)[Header.DECISION] == b"permit"
        assert reveals_residence(record.value)
        assert (ACT_CODE_SYSTEM, "NOPAT") not in _labels(record.value)


async def test_a_placement_that_carries_the_answer_does_not_wait(running: Running) -> None:
    await _custody_and_consent(running)
    await running.send(running.topics.agency_events("social"), _placement(hiddenResidence=True), key=CASE_KEY)

    [to_school] = await running.read(running.topics.deliver("vasteras-skola-sodra"), count=1)
    [to_health] = await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=1)

    assert dict(to_school.headers)[Header.DECISION] == b"permit_redacted"
    assert not reveals_residence(to_school.value)
    assert reveals_residence(to_health.value)
    for value in (to_school.value, to_health.value):
        assert {(CONFIDENTIALITY_SYSTEM, "R"), (ACT_CODE_SYSTEM, "NOPAT")} <= _labels(value)
    assert await running.read(running.topics.parked, count=1, timeout=2) == []
