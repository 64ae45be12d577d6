"""Reports of concern (orosanmälan) with reporter, role and categories, on the real broker.

A school counsellor in Västerås reports concern about a child who lives in Köping, for substance use and
gambling: social services of Köping alone receives it, with every category and the reporter's role (no name,
no consent asked); Köping's answer goes back to the school. Social services of Köping in turn reports concern
about a child who lives in Västerås to Västerås's social services. Nobody else receives anything.
"""

from __future__ import annotations

from typing import Any

import pytest

from sambus.contracts.fhir.codes import (
    CONCERN_CATEGORY_INPUT,
    CONCERN_SYSTEM,
    REPORTER_INPUT,
    STAFF_ROLE_SYSTEM,
    STAFF_USER_ID_SYSTEM,
)
from tests.integration.conftest import Running
from tests.integration.test_answers_end_to_end import Deliveries, event, no_dead_letters, received, task_of

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

SCHOOL = "19800001"
"""Västerås, Norra skolan."""
KOPING = "212000-2056"


def inputs(task: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [i for i in task.get("input", []) if i["type"]["coding"][0]["code"] == code]


def categories(task: dict[str, Any]) -> list[str]:
    return [i["valueCodeableConcept"]["coding"][0]["code"] for i in inputs(task, CONCERN_CATEGORY_INPUT)]


def resource(message: dict[str, Any], full_url: str) -> dict[str, Any]:
    [found] = [e["resource"] for e in message["entry"] if e["fullUrl"] == full_url]
    return found


async def test_a_report_of_concern_carries_its_categories_and_reporter_to_the_home_municipality_only(
    running: Running,
) -> None:
    deliveries = Deliveries(running)  # no consent recorded: a report of concern needs none

    await running.send(
        running.topics.agency_events("school"),
        event(
            "school",
            "concern-reported",
            "norra-oro-1",
            {
                "schoolUnitCode": SCHOOL,
                "residenceMunicipality": "1983",
                "category": "substance_use",
                "additionalCategories": ["gambling"],
                "reporter": {"role": "school_counsellor", "userId": "kurator-norra-3"},
            },
        ),
    )
    report = await received(deliveries, 1, "koping-socialtjanst", "concern-reported")
    task = task_of(report)
    assert task["reasonCode"]["coding"] == [{"system": CONCERN_SYSTEM, "code": "substance_use"}]
    assert categories(task) == ["substance_use", "gambling"]
    [reporter] = inputs(task, REPORTER_INPUT)
    role = resource(report, reporter["valueReference"]["reference"])
    assert role["resourceType"] == "PractitionerRole"
    assert role["code"][0]["coding"] == [{"system": STAFF_ROLE_SYSTEM, "code": "school_counsellor"}]
    assert role["identifier"] == [{"system": STAFF_USER_ID_SYSTEM, "value": f"{SCHOOL}|kurator-norra-3"}]
    assert role["organization"]["identifier"]["value"] == SCHOOL

    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "task-answered",
            "koping-tar-emot",
            {
                "processId": task["groupIdentifier"]["value"],
                "taskId": task["id"],
                "status": "accepted",
                "organisationNumber": KOPING,
                "answerTo": {"schoolUnitCode": SCHOOL},
            },
        ),
    )
    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "concern-reported",
            "koping-oro-2",
            {
                "organisationNumber": KOPING,
                "residenceMunicipality": "1980",
                "category": "violence_at_home",
                "additionalCategories": ["parental_substance_use"],
                "reporter": {"role": "social_worker"},
            },
        ),
    )
    assert await deliveries.who(3) == {
        ("koping-socialtjanst", "concern-reported"): 1,
        ("vasteras-skola-norra", "task-status-changed"): 1,
        ("vasteras-socialtjanst", "concern-reported"): 1,
    }
    onward = await received(deliveries, 3, "vasteras-socialtjanst", "concern-reported")
    assert categories(task_of(onward)) == ["violence_at_home", "parental_substance_use"]
    await no_dead_letters(running)
