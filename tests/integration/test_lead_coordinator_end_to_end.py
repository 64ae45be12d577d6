"""The SIP's lead coordinator (huvudansvarig) as a named person and role, and its change, on the real broker.

Social services of Västerås initiates a SIP with BU-hälsan and a school; the plan (sent by Cosmic Link, on the
EHR topic) names a social worker at social services as huvudansvarig; later the SIP meeting hands the role to
a nurse at BU-hälsan. Every participant receives the plan and the change, each with the coordinator as a
``PractitionerRole`` (role, id, agency; no name), and nobody else receives anything.
"""

from __future__ import annotations

from typing import Any

import pytest

from sambus.contracts.agencies import AgencyKind
from sambus.contracts.fhir.codes import (
    LEAD_COORDINATOR_PERSON_EXTENSION,
    STAFF_ROLE_SYSTEM,
    STAFF_USER_ID_SYSTEM,
)
from sambus.contracts.identifiers import HSA_ID_SYSTEM
from tests.integration.conftest import Running
from tests.integration.test_answers_end_to_end import (
    BU_HALSAN,
    CHILD,
    SOCIAL,
    Deliveries,
    event,
    no_dead_letters,
    received,
    task_of,
)
from tests.present import day

SINCE = day(24)
"""From when the new lead coordinator acts (a date ahead of the day the test runs)."""
FOLLOW_UP = day(103)
"""The plan's follow-up: ahead, so no follow-up reminder races the reads."""

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

SCHOOL = "19800002"
"""Västerås, Södra skolan (takes part in SIP through Cosmic Link itself)."""
NURSE = "SE2321000206-P0042"
"""The BU-hälsan nurse's own HSA-id."""
PARTICIPANTS = [{"organisationNumber": SOCIAL}, {"hsaId": BU_HALSAN}, {"schoolUnitCode": SCHOOL}]
EVERY_PARTICIPANT = ("vasteras-socialtjanst", "vastmanland-bu-halsan", "vasteras-skola-sodra")


def resource(message: dict[str, Any], kind: str) -> dict[str, Any]:
    [found] = [e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == kind]
    return found


def coordinator(message: dict[str, Any]) -> tuple[str, list[tuple[str, str]], str, str | None]:
    """The coordinator's role, ids, agency and start in a delivered message."""
    role = resource(message, "PractitionerRole")
    [code] = role["code"][0]["coding"]
    assert code["system"] == STAFF_ROLE_SYSTEM
    return (
        code["code"],
        [(i["system"], i["value"]) for i in role.get("identifier", [])],
        role["organization"]["identifier"]["value"],
        role.get("period", {}).get("start"),
    )


async def test_the_lead_coordinator_is_named_in_the_plan_and_its_change_reaches_every_participant(
    running: Running,
) -> None:
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN, AgencyKind.SCHOOL)
    deliveries = Deliveries(running)

    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "sip-initiated",
            "vasteras-sip-1",
            {
                "organisationNumber": SOCIAL,
                "reason": "mental_health",
                "invite": [{"hsaId": BU_HALSAN}, {"schoolUnitCode": SCHOOL}],
            },
        ),
    )
    invitation = await received(deliveries, 2, "vastmanland-bu-halsan", "sip-initiated")
    process_id = task_of(invitation)["groupIdentifier"]["value"]
    sip = {"processId": process_id, "organizer": {"organisationNumber": SOCIAL}, "participants": PARTICIPANTS}

    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "sip",
            "plan-established",
            "vasteras-plan-1",
            {
                **sip,
                "leadCoordinator": {"organisationNumber": SOCIAL},
                "leadCoordinatorPerson": {"role": "social_worker", "userId": "ifo-handlaggare-41"},
                "activities": [
                    {"agency": {"hsaId": BU_HALSAN}, "action": "treatment"},
                    {"agency": {"schoolUnitCode": SCHOOL}, "action": "school_support"},
                ],
                "followUp": FOLLOW_UP,
            },
        ),
    )
    plans = {r: m for r, c, m in await deliveries.all(5) if c == "sip-plan-established"}
    assert sorted(plans) == sorted(EVERY_PARTICIPANT)
    for plan in plans.values():
        care_plan = resource(plan, "CarePlan")
        [person_ref] = [
            x["valueReference"]["reference"]
            for x in care_plan["extension"]
            if x["url"] == LEAD_COORDINATOR_PERSON_EXTENSION
        ]
        assert person_ref in {e["fullUrl"] for e in plan["entry"]}
        assert coordinator(plan) == (
            "social_worker",
            [(STAFF_USER_ID_SYSTEM, f"{SOCIAL}|ifo-handlaggare-41")],
            SOCIAL,
            None,
        )

    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "sip",
            "lead-coordinator-changed",
            "vasteras-lead-2",
            {
                **sip,
                "leadCoordinator": {"hsaId": BU_HALSAN},
                "leadCoordinatorPerson": {"role": "nurse", "hsaId": NURSE},
                "since": SINCE,
            },
        ),
    )
    assert await deliveries.who(8) == {
        ("vastmanland-bu-halsan", "sip-initiated"): 1,
        ("vasteras-skola-sodra", "sip-initiated"): 1,
        **dict.fromkeys(((r, "sip-plan-established") for r in EVERY_PARTICIPANT), 1),
        **dict.fromkeys(((r, "sip-lead-coordinator-changed") for r in EVERY_PARTICIPANT), 1),
    }
    changes = [m for _, c, m in await deliveries.all(8) if c == "sip-lead-coordinator-changed"]
    for change in changes:
        task = task_of(change)
        assert task["code"]["coding"][0]["code"] == "sip-participation"  # the participant's one SIP Task
        assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == (
            "in-progress",
            "sip-lead-coordinator-changed",
        )
        assert task["groupIdentifier"]["value"] == process_id
        assert task["focus"]["reference"] in {e["fullUrl"] for e in change["entry"]}
        assert coordinator(change) == ("nurse", [(HSA_ID_SYSTEM, NURSE)], BU_HALSAN, SINCE)
    await no_dead_letters(running)


async def test_a_lead_coordinator_outside_the_sip_is_refused_at_the_boundary(running: Running) -> None:
    """A change naming an agency that does not take part is not made into a message at all."""
    deliveries = Deliveries(running)
    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "sip",
            "lead-coordinator-changed",
            "vasteras-lead-bad",
            {
                "processId": "p-1",
                "organizer": {"organisationNumber": SOCIAL},
                "participants": [{"organisationNumber": SOCIAL}],
                "leadCoordinator": {"hsaId": BU_HALSAN},
                "leadCoordinatorPerson": {"role": "nurse"},
                "since": SINCE,
            },
        ),
    )
    [dead] = await running.read(running.topics.dlq, count=1, timeout=90)
    assert b"lead coordinator must be a participant" in dict(dead.headers)["sambus-dlq-reason"]
    assert await deliveries.who(0) == {}
