"""A school is named by its school unit code in every organisation field: as a placement-notice target, a SIP
invitee or participant, and as the asker an answer goes back to."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sambus.adapters import translate_message
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.fhir import SCHOOL_UNIT_SYSTEM

SCHOOL = {"schoolUnitCode": "19800001"}
CHILD = {"civicNo": "201203150006"}
RESIDENCE = {"line": ["Storgatan 1"], "postalCode": "722 10", "city": "Västerås", "municipality": "1980"}


def _tasks(name: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    event = {
        "type": f"se.sambus.{name}.v1",
        "id": "e-1",
        "source": "test",
        "time": "2026-11-20T09:00:00+01:00",
        "data": {"child": CHILD, **data},
    }
    [intent] = translate_message(json.dumps(event).encode())
    return [e["resource"] for e in intent.bundle["entry"] if e["resource"]["resourceType"] == "Task"]


def _school(reference: dict[str, Any]) -> bool:
    return reference["identifier"] == {"system": SCHOOL_UNIT_SYSTEM, "value": "19800001"}


@pytest.mark.parametrize(
    ("name", "data"),
    [
        (
            "social.placement-started",
            {
                "placingMunicipality": "1980",
                "legalBasis": "sol",
                "notify": [SCHOOL],
                "form": "family_home",
                "start": "2026-11-20",
                "residence": RESIDENCE,
            },
        ),
        (
            "social.sip-initiated",
            {"organisationNumber": "212000-2080", "reason": "development", "invite": [SCHOOL]},
        ),
        (
            "ehr.sip-initiated",
            {
                "hsaId": "SE2321000206-1001",
                "unitKind": "bu_halsan",
                "reason": "development",
                "invite": [SCHOOL],
            },
        ),
        (
            "sip.meeting-scheduled",
            {
                "processId": "p-1",
                "organizer": {"hsaId": "SE2321000206-1001"},
                "participants": [SCHOOL],
                "start": "2026-12-01T09:00:00+01:00",
            },
        ),
        (
            "social.investigation-info-requested",
            {"organisationNumber": "212000-2080", "recipients": [SCHOOL]},
        ),
    ],
)
def test_a_school_is_named_by_its_school_unit_code_as_the_owner(name, data) -> None:
    [task] = _tasks(name, data)

    assert _school(task["owner"])


@pytest.mark.parametrize(
    ("name", "data"),
    [
        (
            "ehr.task-status",
            {"processId": "p-1", "taskId": "t-1", "status": "accepted", "hsaId": "SE2321000206-1001"},
        ),
        ("social.task-answered", {"processId": "p-1", "taskId": "t-1", "status": "accepted"}),
    ],
)
def test_an_answer_can_go_back_to_a_school(name, data) -> None:
    if name.startswith("social"):
        data = {**data, "organisationNumber": "212000-2080"}

    [task] = _tasks(name, {**data, "answerTo": SCHOOL})

    assert _school(task["requester"])


def test_a_school_unit_code_has_eight_digits() -> None:
    with pytest.raises(InvalidEventError) as caught:
        _tasks(
            "social.sip-initiated",
            {
                "organisationNumber": "212000-2080",
                "reason": "development",
                "invite": [{"schoolUnitCode": "1980"}],
            },
        )

    assert caught.value.field == "data.invite.0.schoolUnitCode"


def _consents(name: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    event = {
        "type": f"se.sambus.{name}.v1",
        "id": "e-1",
        "source": "test",
        "time": "2026-11-20T09:00:00+01:00",
        "data": {"child": CHILD, **data},
    }
    [intent] = translate_message(json.dumps(event).encode())
    return [e["resource"] for e in intent.bundle["entry"] if e["resource"]["resourceType"] == "Consent"]


def test_a_school_records_a_consent_and_a_guardian_withdraws_it() -> None:
    [given] = _consents(
        "school.consent-recorded",
        {
            "consentId": "c-7",
            "purpose": "kontaktcenter_referral",
            "agencyKinds": ["kontaktcenter"],
            "givenBy": "guardian",
            "guardians": ["19800412-1235"],
            "validFrom": "2026-11-20T09:00:00+01:00",
        },
    )
    [withdrawn] = _consents(
        "school.consent-withdrawn",
        {
            "consentId": "c-7",
            "at": "2027-01-15T13:00:00+01:00",
            "withdrawnBy": "guardian",
            "guardians": ["19800412-1235"],
        },
    )

    assert given["status"] == "active"
    assert withdrawn["status"] == "inactive"
    assert [p["identifier"]["value"] for p in withdrawn["performer"]] == ["198004121235"]


def test_a_child_withdrawing_its_own_consent_is_the_performer() -> None:
    [withdrawn] = _consents(
        "social.consent-withdrawn",
        {"consentId": "c-7", "at": "2027-01-15T13:00:00+01:00", "withdrawnBy": "child"},
    )

    [performer] = withdrawn["performer"]
    assert performer["reference"] == withdrawn["patient"]["reference"]


@pytest.mark.parametrize(
    "who",
    [{"withdrawnBy": "guardian"}, {"withdrawnBy": "child", "guardians": ["19800412-1235"]}],
)
def test_who_withdrew_must_match_the_guardians_named(who) -> None:
    with pytest.raises(InvalidEventError, match="withdr"):
        _consents("social.consent-withdrawn", {"consentId": "c-7", "at": "2027-01-15T13:00:00+01:00", **who})
