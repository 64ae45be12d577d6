"""Social services answers a Task as the unit that was given it: the municipality by organisation number, or a
unit of its own (the adult unit, vuxenenhet, invited to a hand-over meeting) by HSA-id."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sambus.adapters import translate_message
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.identifiers import HSA_ID_SYSTEM, ORGANISATION_NUMBER_SYSTEM

ADULT_UNIT = "SE2120002080-VUX1"
SOCIAL = "212000-2080"
ANSWER = {
    "processId": "p-1",
    "taskId": "t-1",
    "status": "accepted",
    "answerTo": {"organisationNumber": SOCIAL},
}


def _answer(unit: dict[str, str]) -> dict[str, Any]:
    event = {
        "type": "se.sambus.social.task-answered.v1",
        "id": "e-1",
        "source": "test",
        "time": "2026-11-20T09:00:00+01:00",
        "data": {"child": {"civicNo": "201012245674"}, **ANSWER, **unit},
    }
    [intent] = translate_message(json.dumps(event).encode())
    return intent.bundle


def test_the_adult_unit_answers_by_its_hsa_id() -> None:
    bundle = _answer({"hsaId": ADULT_UNIT})

    header = bundle["entry"][0]["resource"]
    [task] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task"]
    assert task["owner"]["identifier"] == {"system": HSA_ID_SYSTEM, "value": ADULT_UNIT}
    assert header["sender"]["identifier"] == {"system": HSA_ID_SYSTEM, "value": ADULT_UNIT}
    assert task["requester"]["identifier"] == {"system": ORGANISATION_NUMBER_SYSTEM, "value": SOCIAL}


def test_social_services_still_answers_by_organisation_number() -> None:
    bundle = _answer({"organisationNumber": SOCIAL})

    [task] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task"]
    assert task["owner"]["identifier"] == {"system": ORGANISATION_NUMBER_SYSTEM, "value": SOCIAL}


@pytest.mark.parametrize("unit", [{}, {"hsaId": ADULT_UNIT, "organisationNumber": SOCIAL}])
def test_the_answering_unit_is_named_exactly_once(unit: dict[str, str]) -> None:
    with pytest.raises(InvalidEventError, match="exactly one of organisationNumber or hsaId"):
        _answer(unit)
