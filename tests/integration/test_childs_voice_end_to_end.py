"""The child's own voice on the real broker: an assessed 16-year-old's own consent releases a statement.

Social services ask the region to examine a placed 16-year-old (lag 2017:209, no consent needed for the
request). Health care answers with the mental and physical statement, which rests on consent. The
guardians have not consented; the young person has, and a professional assessed her mature enough: from
the county's age (15 in Västmanland) that consent counts, and the statement reaches social services.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sambus.consent.compliance import Compliance, LedgerQuery
from sambus.contracts.topics import Header
from tests.integration.conftest import Running
from tests.present import moment

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CHILD = "20100505-0107"
SOCIAL = "212000-2080"
HEALTH = "SE2321000206-1005"
CASE_KEY = b"case-voice-1"


def _event(source: str, kind: str, event_id: str, data: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "type": f"se.sambus.{kind}.v1",
            "id": event_id,
            "source": source,
            "time": moment(),
            "data": {"child": {"civicNo": CHILD}, **data},
        }
    ).encode("utf-8")


async def test_an_assessed_sixteen_year_olds_consent_releases_the_statement(running: Running) -> None:
    social = running.topics.agency_events("social")
    await running.send(
        social,
        _event(
            "socialtjanst-vasteras",
            "social.consent-recorded",
            "consent-own",
            {
                "consentId": "samtycke-egen",
                "purpose": "information_sharing",
                "agencyKinds": ["social_services"],
                "givenBy": "child",
                "maturityAssessedBy": "kurator-17",
                "validFrom": moment(days=-19),
            },
        ),
        key=CASE_KEY,
    )
    await running.send(
        social,
        _event(
            "socialtjanst-vasteras",
            "social.health-exam-requested",
            "exam-1",
            {
                "organisationNumber": SOCIAL,
                "healthCare": {"hsaId": HEALTH},
                "dentalCare": {"hsaId": "SE2321000206-1003"},
            },
        ),
        key=CASE_KEY,
    )
    [request] = await running.read(running.topics.deliver("vastmanland-vc-kopings"), count=1)
    task = next(
        e["resource"] for e in json.loads(request.value)["entry"] if e["resource"]["resourceType"] == "Task"
    )
    process_id = task["groupIdentifier"]["value"]

    await running.send(
        running.topics.agency_events("ehr"),
        _event(
            "cosmic-region-vastmanland",
            "ehr.health-exam-completed",
            "statement-1",
            {
                "processId": process_id,
                "hsaId": HEALTH,
                "statement": "mental_physical",
                "documentId": "utlatande-1",
                "answerTo": {"organisationNumber": SOCIAL},
            },
        ),
        key=CASE_KEY,
    )

    [statement] = await running.read(running.topics.deliver("vasteras-socialtjanst"), count=1, timeout=60)
    assert dict(statement.headers)[Header.EVENT_CODE] == b"health-exam-completed"
    assert dict(statement.headers)[Header.DECISION] == b"permit"
    [entry] = Compliance(running.app.ledger.engine).select(LedgerQuery(recipient_id="vasteras-socialtjanst"))
    assert "the child's own consent samtycke-egen" in entry.reason
    assert "maturity assessed by kurator-17" in entry.reason
