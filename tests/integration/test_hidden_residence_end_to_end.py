"""Hidden residence on the real broker, from the agencies' own events to what each recipient reads.

Social services record the guardians' consent, decide that the child's residence is hidden (LVU 14 §) and
then tell the school and health and dental care of a placement. Every step goes through the adapters, the
consent registry (fed from the messages themselves), the secrecy rules and the ledger: the school, which
shows what it receives to the guardians, must get the placement without any residence-revealing data,
while health care, which needs it, gets it; the EHRs are told to block the guardians' access first.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sambus.consent.compliance import Compliance, LedgerQuery
from sambus.contracts.fhir.codes import (
    ACT_CODE_SYSTEM,
    CONFIDENTIALITY_SYSTEM,
    DATA_CATEGORY_SYSTEM,
    RESIDENCE_TAG,
)
from sambus.contracts.topics import Header, Topics
from sambus.router.routing.directory import PACKAGED_DIRECTORY
from sambus.router.settings import Settings
from tests.integration.conftest import Running
from tests.present import day, moment

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CHILD = "20120315-0006"
SCHOOL_ORGNR = "212000-1959"
SOCIAL = {"organisationNumber": "212000-2080"}
BU_HALSAN = {"hsaId": "SE2321000206-1001"}
DENTAL = {"hsaId": "SE2321000206-1003"}
SCHOOL = {"organisationNumber": SCHOOL_ORGNR}
STREET = "Storgatan 1"
CASE_KEY = b"case-4711"
"""The social services system's own case id: one key per child keeps its events in order."""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The example directory, with Södra skolan reachable by organisation number.

    The directory does not say Södra skolan faces the guardians: a school does, by its kind.
    """
    directory = yaml.safe_load(PACKAGED_DIRECTORY.read_text(encoding="utf-8"))
    for recipient in directory["recipients"]:
        if recipient["id"] == "vasteras-skola-sodra":
            recipient["identifiers"].append({"system": "urn:oid:2.5.4.97", "value": SCHOOL_ORGNR})
    path = tmp_path / "directory.yaml"
    path.write_text(yaml.safe_dump(directory, allow_unicode=True), encoding="utf-8")
    return settings.model_copy(update={"directory": path})


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


def _resources(value: bytes) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in json.loads(value)["entry"]]


def _reveals_residence(resources: list[dict[str, Any]]) -> bool:
    tagged = any(
        tag.get("system") == DATA_CATEGORY_SYSTEM and tag.get("code") == RESIDENCE_TAG
        for resource in resources
        for tag in resource.get("meta", {}).get("tag", ())
    )
    addressed = any(r["resourceType"] == "Patient" and r.get("address") for r in resources)
    return tagged or addressed or STREET in json.dumps(resources, ensure_ascii=False)


async def test_the_guardian_facing_school_never_sees_the_hidden_residence(running: Running) -> None:
    topics: Topics = running.topics
    social_events = topics.agency_events("social")
    await running.send(
        social_events,
        _event(
            "custody-updated",
            "custody-1",
            {
                "guardians": ["19800412-1235", "19820907-2340"],
                "custody": "joint",
                "at": moment(days=-19),
            },
        ),
        key=CASE_KEY,
    )
    await running.send(
        social_events,
        _event(
            "consent-recorded",
            "consent-1",
            {
                "consentId": "samtycke-1",
                "purpose": "information_sharing",
                "agencyKinds": ["school", "bu_halsan", "dental"],
                "givenBy": "guardian",
                "guardians": ["19800412-1235", "19820907-2340"],
                "validFrom": moment(days=-19),
            },
        ),
        key=CASE_KEY,
    )
    await running.send(
        social_events,
        _event(
            "hidden-residence-decided",
            "hidden-1",
            {
                **SOCIAL,
                "decisionId": "beslut-2026-117",
                "validFrom": moment(days=-18, hours=-23),
                "notify": [BU_HALSAN, DENTAL],
            },
            time=NOW,  # the units acknowledge the block hours after it: not during this test
        ),
        key=CASE_KEY,
    )
    await running.send(
        social_events,
        _event(
            "placement-started",
            "placement-1",
            {
                "placingMunicipality": "1980",
                "legalBasis": "lvu",
                "notify": [SCHOOL, BU_HALSAN],
                "form": "family_home",
                "acute": True,
                "start": day(-1),
                "residence": {
                    "line": [STREET],
                    "postalCode": "722 11",
                    "city": "Västerås",
                    "municipality": "1980",
                },
                "schoolUnitCode": "19800002",
            },
        ),
        key=CASE_KEY,
    )

    school = await running.read(topics.deliver("vasteras-skola-sodra"), count=1)
    health = await running.read(topics.deliver("vastmanland-bu-halsan"), count=2)
    dental = await running.read(topics.deliver("vastmanland-folktandvarden"), count=1)

    codes = {
        name: [dict(r.headers)[Header.EVENT_CODE].decode() for r in records]
        for name, records in {"school": school, "health": health, "dental": dental}.items()
    }
    assert codes == {
        "school": ["placement-started"],
        "health": ["hidden-residence-decided", "placement-started"],
        "dental": ["hidden-residence-decided"],
    }
    [to_school] = school
    assert dict(to_school.headers)[Header.DECISION] == b"permit_redacted"
    assert not _reveals_residence(_resources(to_school.value))
    assert any(r["resourceType"] == "Task" for r in _resources(to_school.value)), (
        "the placement itself arrives"
    )
    assert _reveals_residence(_resources(health[1].value)), "health care needs to know where the child lives"
    for record in (*school, *health, *dental):
        security = {(x["system"], x["code"]) for x in json.loads(record.value)["meta"]["security"]}
        assert {(CONFIDENTIALITY_SYSTEM, "R"), (ACT_CODE_SYSTEM, "NOPAT")} <= security, "labelled R + NOPAT"
        assert CHILD.replace("-", "") not in (record.key or b"").decode()
        assert not any(CHILD.replace("-", "").encode() in value for _, value in record.headers)

    [school_decision] = Compliance(running.app.ledger.engine).select(
        LedgerQuery(recipient_id="vasteras-skola-sodra")
    )
    assert (school_decision.outcome, school_decision.rule_id) == ("permit_redacted", "placement-information")
    assert school_decision.removed, "the ledger names the fields removed"
