"""Answers go back to the party that asked, on the real broker, from the agencies' own events.

Each test walks one Västmanland process from its first event to its last answer through the adapters, the
delivery stage and the process state, and reads every delivery topic of the directory: each message reaches
exactly the organisations the agreement names, and nobody else.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest

from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.topics import Header
from tests.integration.conftest import Running
from tests.present import day, moment

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CHILD = "201203150006"
SOCIAL = "212000-2080"
"""Västerås social services (organisation number)."""
BU_HALSAN = "SE2321000206-1001"
BUP = "SE2321000206-1002"
DENTAL = "SE2321000206-1003"
VC = "SE2321000206-1006"
"""Västerås vårdcentral Centrum: examines placed children (lag 2017:209)."""
QUIET_S = 6.0
"""How long a topic must stay quiet after the expected records before "nobody else" is believed."""
DELIVERY_WAIT_S = 90.0
"""The longest wait for the expected deliveries: the read ends as soon as they are in, so only a failing
test waits this long; a loaded machine (stages joining their groups, new topics) can take over 30 s."""


def event(kind: str, name: str, event_id: str, data: dict[str, Any]) -> bytes:
    """An agency event as the bytes its system would send, happening now (no deadline of it falls due)."""
    return json.dumps(
        {
            "type": f"se.sambus.{kind}.{name}.v1",
            "id": event_id,
            "source": f"{kind}-test",
            "time": moment(),
            "data": {"child": {"civicNo": CHILD}, **data},
        }
    ).encode()


class Deliveries:
    """Every record on every delivery topic of the directory, read from the start each time."""

    def __init__(self, running: Running) -> None:
        self._running = running
        self._topics = {
            running.topics.deliver(r.topic_suffix): r.id for r in running.app.directory.recipients
        }

    async def all(self, expected: int) -> list[tuple[str, str, dict[str, Any]]]:
        """(recipient, event code, message) of every delivery, once ``expected`` and a quiet spell passed."""
        records = await self._running.read(*self._topics, count=expected, timeout=DELIVERY_WAIT_S)
        if len(records) != expected:
            # Say why when it is known: an event the adapters refused (e.g. a personnummer whose check digit
            # does not match its date) is dead-lettered, and nothing is delivered for it.
            dead = await self._running.read(self._running.topics.dlq, count=10, timeout=1)
            reasons = [(dict(r.headers).get("sambus-dlq-reason") or b"").decode() for r in dead]
            raise AssertionError(f"{len(records)} deliveries, expected {expected}; dead letters: {reasons}")
        more = await self._running.read(*self._topics, count=expected + 1, timeout=QUIET_S)
        return [
            (self._topics[r.topic], dict(r.headers)[Header.EVENT_CODE].decode(), json.loads(r.value))
            for r in more
        ]

    async def who(self, expected: int) -> Counter[tuple[str, str]]:
        """How many messages of which event each recipient received."""
        return Counter((recipient, code) for recipient, code, _ in await self.all(expected))


def task_of(message: dict[str, Any]) -> dict[str, Any]:
    [task] = [e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "Task"]
    return task


def addressed_to(message: dict[str, Any]) -> tuple[str, str]:
    """The endpoint and the receiver's identifier value in the message's header."""
    [destination] = message["entry"][0]["resource"]["destination"]
    return destination["endpoint"], destination["receiver"]["identifier"]["value"]


async def received(deliveries: Deliveries, expected: int, recipient: str, code: str) -> dict[str, Any]:
    """The one message of ``code`` that ``recipient`` received."""
    [message] = [m for r, c, m in await deliveries.all(expected) if (r, c) == (recipient, code)]
    return message


async def no_dead_letters(running: Running) -> None:
    dead = await running.read(running.topics.dlq, count=1, timeout=1)
    assert [dict(r.headers).get("sambus-dlq-reason") for r in dead] == []


async def test_2017_209_statements_reach_social_services_and_nobody_else(running: Running) -> None:
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, purpose=Purpose.INFORMATION_SHARING)
    deliveries = Deliveries(running)
    social, ehr = running.topics.agency_events("social"), running.topics.agency_events("ehr")

    await running.send(
        social,
        event(
            "social",
            "health-exam-requested",
            "req-1",
            {"organisationNumber": SOCIAL, "healthCare": {"hsaId": VC}, "dentalCare": {"hsaId": DENTAL}},
        ),
    )
    assert await deliveries.who(2) == {
        ("vastmanland-vc-vasteras", "health-exam-requested"): 1,
        ("vastmanland-folktandvarden", "health-exam-requested"): 1,
    }
    request = await received(deliveries, 2, "vastmanland-vc-vasteras", "health-exam-requested")
    process_id = task_of(request)["groupIdentifier"]["value"]

    for unit, statement, event_id in ((VC, "mental_physical", "st-1"), (DENTAL, "oral", "st-2")):
        await running.send(
            ehr,
            event(
                "ehr",
                "health-exam-completed",
                event_id,
                {
                    "processId": process_id,
                    "hsaId": unit,
                    "statement": statement,
                    "documentId": f"doc-{event_id}",
                    "answerTo": {"organisationNumber": SOCIAL},
                },
            ),
        )

    assert await deliveries.who(4) == {
        ("vastmanland-vc-vasteras", "health-exam-requested"): 1,
        ("vastmanland-folktandvarden", "health-exam-requested"): 1,
        ("vasteras-socialtjanst", "health-exam-completed"): 2,
    }
    statements = [m for r, c, m in await deliveries.all(4) if c == "health-exam-completed"]
    assert {addressed_to(m) for m in statements} == {("urn:sambus:recipient:vasteras-socialtjanst", SOCIAL)}
    assert {task_of(m)["owner"]["identifier"]["value"] for m in statements} == {VC, DENTAL}
    assert {task_of(m)["status"] for m in statements} == {"completed"}
    await no_dead_letters(running)
    process = running.app.processes.get(process_id)
    assert process is not None
    assert process.state == "statements-complete"


async def test_lvu32_result_reaches_the_ordering_board_and_nobody_else(running: Running) -> None:
    deliveries = Deliveries(running)

    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "lvu32-exam-ordered",
            "order-1",
            {
                "organisationNumber": SOCIAL,
                "orderedOn": day(),
                "due": day(28),
                "performer": {"hsaId": VC},
            },
        ),
    )
    order = await received(deliveries, 1, "vastmanland-vc-vasteras", "lvu32-exam-ordered")
    process_id = task_of(order)["groupIdentifier"]["value"]

    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "lvu32-exam-completed",
            "result-1",
            {
                "processId": process_id,
                "hsaId": VC,
                "documentId": "lvu32-2026-009",
                "answerTo": {"organisationNumber": SOCIAL},
            },
        ),
    )

    assert await deliveries.who(2) == {
        ("vastmanland-vc-vasteras", "lvu32-exam-ordered"): 1,
        ("vasteras-socialtjanst", "lvu32-exam-completed"): 1,
    }
    result = await received(deliveries, 2, "vasteras-socialtjanst", "lvu32-exam-completed")
    assert addressed_to(result) == ("urn:sambus:recipient:vasteras-socialtjanst", SOCIAL)
    await no_dead_letters(running)
    process = running.app.processes.get(process_id)
    assert process is not None
    assert (process.state, process.parties) == ("completed", {"vastmanland-vc-vasteras": "completed"})


async def test_a_placement_notice_status_goes_back_to_the_placing_social_services(running: Running) -> None:
    running.consent(
        CHILD, AgencyKind.BU_HALSAN, AgencyKind.SOCIAL_SERVICES, purpose=Purpose.INFORMATION_SHARING
    )
    deliveries = Deliveries(running)
    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "placement-started",
            "place-1",
            {
                "placingMunicipality": "1980",
                "legalBasis": "sol",
                "notify": [{"hsaId": BU_HALSAN}],
                "form": "family_home",
                "start": day(),
                "residence": {
                    "line": ["Storgatan 1"],
                    "postalCode": "722 10",
                    "city": "Västerås",
                    "municipality": "1980",
                },
            },
        ),
    )
    notice = await received(deliveries, 1, "vastmanland-bu-halsan", "placement-started")

    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "task-status",
            "status-1",
            {
                "processId": task_of(notice)["groupIdentifier"]["value"],
                "taskId": task_of(notice)["id"],
                "status": "accepted",
                "hsaId": BU_HALSAN,
                "answerTo": {"organisationNumber": SOCIAL},
            },
        ),
    )

    assert await deliveries.who(2) == {
        ("vastmanland-bu-halsan", "placement-started"): 1,
        ("vasteras-socialtjanst", "task-status-changed"): 1,
    }
    status = await received(deliveries, 2, "vasteras-socialtjanst", "task-status-changed")
    assert addressed_to(status) == ("urn:sambus:recipient:vasteras-socialtjanst", SOCIAL)
    assert task_of(status)["status"] == "accepted"
    await no_dead_letters(running)


async def test_social_services_answer_to_a_care_sip_goes_to_the_inviting_unit(running: Running) -> None:
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN)
    deliveries = Deliveries(running)
    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "sip-initiated",
            "sip-1",
            {
                "hsaId": BU_HALSAN,
                "unitKind": "bu_halsan",
                "reason": "mental_health",
                "invite": [{"organisationNumber": SOCIAL}],
            },
        ),
    )
    invitation = await received(deliveries, 1, "vasteras-socialtjanst", "sip-initiated")

    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "task-answered",
            "answer-1",
            {
                "processId": task_of(invitation)["groupIdentifier"]["value"],
                "taskId": task_of(invitation)["id"],
                "status": "accepted",
                "organisationNumber": SOCIAL,
                "answerTo": {"hsaId": BU_HALSAN},
            },
        ),
    )

    assert await deliveries.who(2) == {
        ("vasteras-socialtjanst", "sip-initiated"): 1,
        ("vastmanland-bu-halsan", "task-status-changed"): 1,
    }
    answer = await received(deliveries, 2, "vastmanland-bu-halsan", "task-status-changed")
    assert addressed_to(answer) == ("urn:sambus:recipient:vastmanland-bu-halsan", BU_HALSAN)
    await no_dead_letters(running)


async def test_a_school_named_by_its_unit_code_gets_the_placement_and_its_answer_goes_back(
    running: Running,
) -> None:
    running.consent(CHILD, AgencyKind.SCHOOL, AgencyKind.SOCIAL_SERVICES, purpose=Purpose.INFORMATION_SHARING)
    deliveries = Deliveries(running)
    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "placement-started",
            "place-2",
            {
                "placingMunicipality": "1980",
                "legalBasis": "lvu",
                "hiddenResidence": False,  # answered: an LVU placement's residence waits for it
                "notify": [{"schoolUnitCode": "19800002"}],
                "form": "hvb",
                "start": day(),
                "residence": {
                    "line": ["Storgatan 1"],
                    "postalCode": "722 10",
                    "city": "Västerås",
                    "municipality": "1980",
                },
            },
        ),
    )
    notice = await received(deliveries, 1, "vasteras-skola-sodra", "placement-started")

    await running.send(
        running.topics.agency_events("school"),
        event(
            "school",
            "task-status",
            "school-status-1",
            {
                "processId": task_of(notice)["groupIdentifier"]["value"],
                "taskId": task_of(notice)["id"],
                "status": "accepted",
                "schoolUnitCode": "19800002",
                "answerTo": {"organisationNumber": SOCIAL},
            },
        ),
    )

    assert await deliveries.who(2) == {
        ("vasteras-skola-sodra", "placement-started"): 1,
        ("vasteras-socialtjanst", "task-status-changed"): 1,
    }
    status = await received(deliveries, 2, "vasteras-socialtjanst", "task-status-changed")
    assert task_of(status)["owner"]["identifier"]["value"] == "19800002"
    await no_dead_letters(running)


async def test_bup_is_invited_to_a_school_sip_only_once_it_stated_a_care_contact(running: Running) -> None:
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, AgencyKind.BUP, AgencyKind.SCHOOL)
    deliveries = Deliveries(running)
    school = running.topics.agency_events("school")
    sip = {
        "schoolUnitCode": "19800002",
        "initiatedBy": "student_health",
        "reason": "mental_health",
        "invite": [{"organisationNumber": SOCIAL}, {"hsaId": BUP}],
    }

    await running.send(school, event("school", "sip-initiated", "sip-a", sip))

    assert await deliveries.who(2) == {
        ("vasteras-socialtjanst", "sip-initiated"): 1,
        ("vasteras-skola-sodra", "delivery-denied"): 1,
    }

    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "care-contact-stated",
            "contact-1",
            {"hsaId": BUP, "active": True, "at": moment(days=-90)},
        ),
    )
    pseudonym = running.app.pseudonymizer.of(CHILD)
    for _ in range(100):
        if running.app.processes.active(pseudonym, "vastmanland-bup"):
            break
        await asyncio.sleep(0.1)
    assert running.app.processes.active(pseudonym, "vastmanland-bup")

    await running.send(school, event("school", "sip-initiated", "sip-b", sip))
    assert await deliveries.who(4) == {
        ("vasteras-socialtjanst", "sip-initiated"): 2,
        ("vasteras-skola-sodra", "delivery-denied"): 1,
        ("vastmanland-bup", "sip-initiated"): 1,
    }
    invitation = await received(deliveries, 4, "vastmanland-bup", "sip-initiated")

    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "task-status",
            "bup-accepts",
            {
                "processId": task_of(invitation)["groupIdentifier"]["value"],
                "taskId": task_of(invitation)["id"],
                "status": "accepted",
                "hsaId": BUP,
                "answerTo": {"schoolUnitCode": "19800002"},
            },
        ),
    )
    assert await deliveries.who(5) == {
        ("vasteras-socialtjanst", "sip-initiated"): 2,
        ("vasteras-skola-sodra", "delivery-denied"): 1,
        ("vastmanland-bup", "sip-initiated"): 1,
        ("vasteras-skola-sodra", "task-status-changed"): 1,
    }
    await no_dead_letters(running)


async def test_investigation_records_reach_the_asking_social_services_and_nobody_else(
    running: Running,
) -> None:
    deliveries = Deliveries(running)
    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "investigation-info-requested",
            "inv-1",
            {"organisationNumber": SOCIAL, "recipients": [{"hsaId": BU_HALSAN}, {"hsaId": DENTAL}]},
        ),
    )
    assert await deliveries.who(2) == {
        ("vastmanland-bu-halsan", "investigation-info-requested"): 1,
        ("vastmanland-folktandvarden", "investigation-info-requested"): 1,
    }
    requests = {r: m for r, c, m in await deliveries.all(2)}

    for unit, recipient in ((BU_HALSAN, "vastmanland-bu-halsan"), (DENTAL, "vastmanland-folktandvarden")):
        await running.send(
            running.topics.agency_events("ehr"),
            event(
                "ehr",
                "investigation-info-provided",
                f"records-{unit}",
                {
                    "processId": task_of(requests[recipient])["groupIdentifier"]["value"],
                    "hsaId": unit,
                    "taskId": task_of(requests[recipient])["id"],
                    "documentIds": [f"journal-{unit}"],
                    "answerTo": {"organisationNumber": SOCIAL},
                },
            ),
        )

    assert await deliveries.who(4) == {
        ("vastmanland-bu-halsan", "investigation-info-requested"): 1,
        ("vastmanland-folktandvarden", "investigation-info-requested"): 1,
        ("vasteras-socialtjanst", "investigation-info-provided"): 2,
    }
    await no_dead_letters(running)
