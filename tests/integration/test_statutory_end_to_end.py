"""Statutory bases on the real broker: an LVU placement and a suicide-risk request without guardian consent.

Social services assess that OSL 26:9 allows telling health and dental care of an LVU placement, and BUP of a
suicide-risk request before it; the events carry who assessed. Nobody has consented: health care, dental
care and BUP still get their messages, and the ledger names the secrecy broken (OSL 26:1), the provision
breaking it and the assessor.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sambus.consent.compliance import Compliance, LedgerQuery
from sambus.contracts.topics import Header
from tests.integration.conftest import Running
from tests.present import day, moment

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CHILD = "20120315-0006"
ASSESSMENT = {"provision": "OSL 26:9", "assessedBy": "handlaggare-4711"}


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


async def test_an_lvu_placement_reaches_health_and_dental_care_on_its_provision(running: Running) -> None:
    social = running.topics.agency_events("social")
    await running.send(
        social,
        _social(
            "suicide-risk-assessment-requested",
            "suicide-risk-1",
            {
                "organisationNumber": "212000-2080",
                "performer": {"hsaId": "SE2321000206-1002"},
                "secrecyAssessment": ASSESSMENT,
            },
        ),
    )
    await running.send(
        social,
        _social(
            "placement-started",
            "placement-lvu-1",
            {
                "placingMunicipality": "1980",
                "legalBasis": "lvu",
                "hiddenResidence": False,  # answered: an LVU placement's residence waits for it
                "notify": [{"hsaId": "SE2321000206-1001"}, {"hsaId": "SE2321000206-1003"}],
                "form": "family_home",
                "start": day(-1),
                "residence": {
                    "line": ["Storgatan 1"],
                    "postalCode": "722 11",
                    "city": "Västerås",
                    "municipality": "1980",
                },
                "secrecyAssessment": ASSESSMENT,
            },
        ),
    )

    for recipient, event in (
        ("vastmanland-bup", b"suicide-risk-assessment-requested"),
        ("vastmanland-bu-halsan", b"placement-started"),
        ("vastmanland-folktandvarden", b"placement-started"),
    ):
        [delivered] = await running.read(running.topics.deliver(recipient), count=1)
        assert dict(delivered.headers)[Header.EVENT_CODE] == event
        assert dict(delivered.headers)[Header.DECISION] == b"permit", f"{recipient} waits for consent"
    compliance = Compliance(running.app.ledger.engine)
    entries = [e for e in compliance.select(LedgerQuery()) if e.legal_basis.startswith("OSL 26:9")]
    assert {e.recipient_id for e in entries} == {
        "vastmanland-bup",
        "vastmanland-bu-halsan",
        "vastmanland-folktandvarden",
    }
    for entry in entries:
        assert entry.outcome == "permit"
        assert "breaks OSL 26:1 (socialtjänst)" in entry.legal_basis
        assert "handlaggare-4711" in entry.reason
        assert entry.rule_id in {"placement-on-provision", "suicide-risk-on-provision"}
        assert entry in compliance.select(LedgerQuery(legal_basis=entry.legal_basis)), "matched exactly"
