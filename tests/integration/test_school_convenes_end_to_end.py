"""Västmanland: a school without Cosmic Link convenes its SIP with social services' help, on the real broker.

From the school's initiative to the last answer: the relay (social services of the school's municipality)
gets one request to convene, naming the invitees and the school; it answers the school, schedules the
meeting in Cosmic Link (the school gets its meeting Task through the relay), and BU-hälsan's answer to the
meeting goes back to social services. Every delivery topic is read: nobody else receives anything.
"""

from __future__ import annotations

import asyncio

import pytest
from fhir.resources.R4B.bundle import Bundle

from sambus.contracts.agencies import AgencyKind
from sambus.contracts.topics import Header
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
from tests.present import moment

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

SCHOOL = {"schoolUnitCode": "19800001"}
"""Norra skolan, Västerås: no Cosmic Link."""


async def test_a_school_without_cosmic_link_convenes_its_sip_through_social_services(
    running: Running,
) -> None:
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN, AgencyKind.SCHOOL)
    deliveries = Deliveries(running)

    await running.send(
        running.topics.agency_events("school"),
        event(
            "school",
            "sip-initiated",
            "norra-sip-1",
            {
                **SCHOOL,
                "initiatedBy": "student_health",
                "reason": "school_attendance",
                "invite": [{"hsaId": BU_HALSAN}],
            },
        ),
    )
    assert await deliveries.who(1) == {("vasteras-socialtjanst", "sip-initiated"): 1}
    convene = await received(deliveries, 1, "vasteras-socialtjanst", "sip-initiated")
    Bundle.model_validate(convene)
    task = task_of(convene)
    assert task["code"]["coding"][0]["code"] == "sip-convene"
    assert [i["valueReference"]["identifier"]["value"] for i in task["input"]] == [BU_HALSAN, "19800001"]
    process_id = task["groupIdentifier"]["value"]

    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "task-answered",
            "convene-accepted",
            {
                "processId": process_id,
                "taskId": task["id"],
                "status": "accepted",
                "organisationNumber": SOCIAL,
                "answerTo": SCHOOL,
            },
        ),
    )
    await running.send(
        running.topics.agency_events("social"),
        event(
            "sip",
            "meeting-scheduled",
            "meeting-1",
            {
                "processId": process_id,
                "organizer": {"organisationNumber": SOCIAL},
                "participants": [SCHOOL, {"hsaId": BU_HALSAN}],
                "start": moment(days=13, hours=4),
            },
        ),
    )
    assert await deliveries.who(4) == {
        ("vasteras-socialtjanst", "sip-initiated"): 1,
        ("vasteras-skola-norra", "task-status-changed"): 1,
        ("vastmanland-bu-halsan", "sip-meeting-scheduled"): 1,
        ("vasteras-socialtjanst", "sip-meeting-scheduled"): 1,  # for the school, through its relay
    }
    relayed = [
        r
        for r in await running.read(running.topics.deliver("vasteras-socialtjanst"), count=2)
        if dict(r.headers)[Header.EVENT_CODE] == b"sip-meeting-scheduled"
    ]
    assert [dict(r.headers)["sambus-relayed-for"] for r in relayed] == [b"vasteras-skola-norra"]
    meeting = await received(deliveries, 4, "vastmanland-bu-halsan", "sip-meeting-scheduled")

    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "task-status",
            "meeting-accepted",
            {
                "processId": process_id,
                "taskId": task_of(meeting)["id"],
                "status": "accepted",
                "hsaId": BU_HALSAN,
                "answerTo": {"organisationNumber": SOCIAL},
            },
        ),
    )
    assert await deliveries.who(5) == {
        ("vasteras-socialtjanst", "sip-initiated"): 1,
        ("vasteras-skola-norra", "task-status-changed"): 1,
        ("vastmanland-bu-halsan", "sip-meeting-scheduled"): 1,
        ("vasteras-socialtjanst", "sip-meeting-scheduled"): 1,
        ("vasteras-socialtjanst", "task-status-changed"): 1,
    }
    await no_dead_letters(running)
    answered = {"vasteras-socialtjanst": "accepted", "vastmanland-bu-halsan": "accepted"}
    for _ in range(100):
        process = running.app.processes.get(process_id)
        if process is not None and process.parties == answered:
            break
        await asyncio.sleep(0.1)
    assert process is not None
    assert (process.state, process.parties) == ("meeting-scheduled", answered)
