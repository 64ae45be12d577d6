"""The hand-over meeting to adult care on the real broker: called before 18, answered to the caller.

Social services call the joint meeting where the young person's units hand over to adult care (Västmanland
"Övergång från barn till vuxen": the transition is secured in a joint meeting). Adult social services (by
kind and municipality), adult psychiatry and BUP each get their own Task, due on the meeting day; adult
psychiatry's acceptance goes back to social services only. Nobody else receives anything.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.fhir.message import deterministic_id
from sambus.contracts.fhir.task import task_id_for
from sambus.contracts.identifiers import HSA_ID_SYSTEM
from sambus.contracts.topics import Header
from tests.children import personnummer_aged
from tests.integration.conftest import Running

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CHILD = personnummer_aged(17)
"""Seventeen and a half on any day (born 2010-12-24, its meeting a month ahead was refused from 2028-11)."""
PSYCHIATRY = "SE2321000206-1007"
INVITED = ("vasteras-vuxenenhet", "vastmanland-vuxenpsykiatri", "vastmanland-bup")
OTHERS = (
    "vasteras-socialtjanst",
    "vastmanland-bu-halsan",
    "vastmanland-vuxenhabilitering",
    "vastmanland-habilitering",
)


def _event(source: str, kind: str, event_id: str, data: dict[str, Any], at: dt.datetime) -> bytes:
    return json.dumps(
        {
            "type": f"se.sambus.{kind}.v1",
            "id": event_id,
            "source": source,
            "time": at.isoformat(),
            "data": {"child": {"civicNo": CHILD}, **data},
        }
    ).encode("utf-8")


def _tasks(record: ConsumerRecord[bytes, bytes]) -> list[dict[str, Any]]:
    bundle = json.loads(record.value)
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task"]


async def test_a_hand_over_meeting_reaches_the_adult_units_and_the_answer_goes_to_the_caller(
    running: Running,
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    meeting = now + dt.timedelta(days=30)
    running.consent(
        CHILD,
        AgencyKind.ADULT_SOCIAL_SERVICES,
        AgencyKind.ADULT_PSYCHIATRY,
        AgencyKind.BUP,
        AgencyKind.SOCIAL_SERVICES,
        purpose=Purpose.INFORMATION_SHARING,
    )
    await running.send(
        running.topics.agency_events("social"),
        _event(
            "socialtjanst-vasteras",
            "social.handover-meeting-called",
            "handover-1",
            {
                "caller": {"organisationNumber": "212000-2080"},
                "meeting": meeting.isoformat(),
                "invite": [
                    {"kind": "adult_social_services", "municipality": "1980"},
                    {"hsaId": PSYCHIATRY},
                    {"hsaId": "SE2321000206-1002"},
                ],
            },
            now,
        ),
    )

    for recipient in INVITED:
        [delivered] = await running.read(running.topics.deliver(recipient), count=1)
        assert dict(delivered.headers)[Header.EVENT_CODE] == b"handover-meeting-called"
        assert dict(delivered.headers)[Header.DECISION] == b"permit", f"{recipient} waits for consent"
        [task] = _tasks(delivered)
        assert task["code"]["coding"][0]["code"] == "handover-meeting"
        assert task["restriction"]["period"]["end"].startswith(meeting.date().isoformat())
        assert task["requester"]["identifier"]["value"] == "212000-2080"

    process = deterministic_id("socialtjanst-vasteras", "handover-1")
    await running.send(
        running.topics.agency_events("ehr"),
        _event(
            "cosmic-region-vastmanland",
            "ehr.task-status",
            "handover-1-accepted",
            {
                "processId": process,
                "taskId": task_id_for(process, {"system": HSA_ID_SYSTEM, "value": PSYCHIATRY}),
                "status": "accepted",
                "hsaId": PSYCHIATRY,
                "answerTo": {"organisationNumber": "212000-2080"},
            },
            now + dt.timedelta(minutes=5),
        ),
    )

    [answer] = await running.read(running.topics.deliver("vasteras-socialtjanst"), count=1)
    assert dict(answer.headers)[Header.EVENT_CODE] == b"task-status-changed"
    [answered] = _tasks(answer)
    assert (answered["status"], answered["owner"]["identifier"]["value"]) == ("accepted", PSYCHIATRY)

    # Each invited unit got its one message; the caller only the answer; nobody else anything.
    for recipient in INVITED:
        assert len(await running.read(running.topics.deliver(recipient), count=2, timeout=2)) == 1
    told = await running.read(*(running.topics.deliver(r) for r in OTHERS), count=2, timeout=3)
    assert [dict(r.headers)[Header.EVENT_CODE] for r in told] == [b"task-status-changed"]
