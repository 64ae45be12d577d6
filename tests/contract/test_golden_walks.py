"""Golden process walks: agency events through sambus's own stages to what each recipient actually gets.

Each walk (``contracts/examples/walks/<name>/``) is a series of agency events; its ``golden/`` files hold the
records the delivery stage produces for each, with the routing directory, consent registry and secrecy rules
sambus ships (:mod:`sambus.router.dev.walk`). The tests read the recipient's side: one Task per (process,
recipient), the same id in every message, moving through FHIR R4's Task states.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import defaultdict
from typing import Any

import pytest

from sambus.contracts.fhir import DESTINATION_ENDPOINT_PREFIX, ROUTING_ADDRESS_SYSTEM
from sambus.contracts.fhir.codes import TASK_ID_SYSTEM
from sambus.router.cli.contracts import WALKS_DIR, walk_dirs, walk_documents
from sambus.router.dev.walk import ASSEMBLY_DELAY
from sambus.router.routing.directory import RoutingDirectory

pytestmark = pytest.mark.slow

R4_NEXT = {
    "requested": {"received", "accepted", "rejected", "cancelled", "in-progress", "failed"},
    "received": {"accepted", "rejected", "cancelled", "failed"},
    "accepted": {"in-progress", "ready", "cancelled", "failed"},
    "ready": {"in-progress", "cancelled", "failed"},
    "in-progress": {"in-progress", "on-hold", "completed", "cancelled", "failed"},
    "on-hold": {"in-progress", "cancelled", "failed"},
}
"""FHIR R4's Task state machine (http://hl7.org/fhir/R4/task.html#statemachine); ``in-progress`` may repeat
while ``businessStatus`` moves through the process's steps."""

Step = list[dict[str, Any]]


@pytest.fixture(scope="module")
def walked() -> dict[str, dict[str, Step]]:
    """Every walk, walked now: ``{walk: {event file: delivered records}}``."""
    return {
        walk.name: {name: json.loads(text) for name, text in walk_documents(walk).items()}
        for walk in walk_dirs()
    }


def _task(record: dict[str, Any]) -> dict[str, Any]:
    """The delivered message's focal Task (the header's one focus)."""
    entries = record["message"]["entry"]
    [focus] = entries[0]["resource"]["focus"]
    return next(e["resource"] for e in entries if e["fullUrl"] == focus["reference"])


def _history(steps: dict[str, Step]) -> dict[str, list[dict[str, Any]]]:
    """Each Task owner's Tasks, in the order the walk delivered them."""
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name in sorted(steps):
        for record in steps[name]:
            assert record["decision"] == "permit", (name, record["recipient"])
            task = _task(record)
            history[task["owner"]["identifier"]["value"]].append(task)
    return history


def _step(task: dict[str, Any]) -> str:
    return str(task["businessStatus"]["coding"][0]["code"])


def test_every_walk_delivers_exactly_its_golden_files(walked: dict[str, dict[str, Step]]):
    assert set(walked) == {"sip", "lvu32", "concern"}
    for walk, steps in walked.items():
        golden = WALKS_DIR / walk / "golden"
        assert {p.name for p in golden.glob("*.json")} == set(steps), walk
        for name, records in steps.items():
            assert json.loads((golden / name).read_text(encoding="utf-8")) == records, (
                f"{walk}/{name} changed; if intended, run `sambus contracts export --examples` and review"
            )


def test_the_sip_walk_moves_one_task_per_recipient_from_invitation_to_closure(
    walked: dict[str, dict[str, Step]],
):
    history = _history(walked["sip"])
    invited = [
        "requested",
        "accepted",
        "in-progress",
        "in-progress",
        "in-progress",
        "in-progress",
        "completed",
    ]

    assert (
        {owner: [t["status"] for t in tasks] for owner, tasks in history.items()}
        == {
            "212000-2080": invited,  # social services, invited by the school
            "SE2321000206-1001": invited,  # BU-hälsan, invited by the school
            "19800002": invited[2:],  # the school, a participant from the meeting on
        }
    )
    assert [_step(t) for t in history["212000-2080"]] == [
        "sip-invited",
        "task-accepted",
        "sip-meeting-scheduled",
        "sip-meeting-held",
        "sip-plan-established",
        "sip-followed-up",
        "sip-closed",
    ]
    for tasks in history.values():
        assert len({t["id"] for t in tasks}) == 1, "one Task per recipient, the same id in every message"
        assert all(t["identifier"] == [{"system": TASK_ID_SYSTEM, "value": t["id"]}] for t in tasks)
        assert {t["intent"] for t in tasks} == {"order"}
        assert {t["code"]["coding"][0]["code"] for t in tasks if "code" in t} == {"sip-participation"}
        for before, after in itertools.pairwise(tasks):
            assert after["status"] in R4_NEXT[before["status"]], (before["status"], after["status"])


def test_an_answer_goes_to_the_asker_as_the_answering_units_own_task_updated(
    walked: dict[str, dict[str, Step]],
):
    [invitation] = [
        r for r in walked["sip"]["03-sip-initiated.json"] if r["recipient"] == "vasteras-socialtjanst"
    ]
    [answer] = walked["sip"]["04-social-accepts.json"]
    header = answer["message"]["entry"][0]["resource"]

    assert answer["recipient"] == "vasteras-skola-sodra"
    assert _task(answer)["id"] == _task(invitation)["id"]
    assert _task(answer)["status"] == "accepted"
    assert "output" not in _task(answer)
    assert header["sender"]["identifier"] == {"system": "urn:oid:2.5.4.97", "value": "212000-2080"}


def test_a_result_is_the_requested_task_completed_with_its_statement(walked: dict[str, dict[str, Step]]):
    [tasks] = _history(walked["lvu32"]).values()
    ordered, accepted, completed = tasks
    [order] = walked["lvu32"]["01-exam-ordered.json"]
    request = next(
        e["resource"] for e in order["message"]["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
    )

    assert [t["status"] for t in tasks] == ["requested", "accepted", "completed"]
    assert ordered["id"] == accepted["id"] == completed["id"]
    assert ordered["code"] == completed["code"]
    assert ordered["basedOn"] == [{"reference": f"urn:uuid:{request['id']}"}]
    assert "focus" not in ordered, "Task.focus is what the Task acts on, never its ServiceRequest again"
    assert completed["output"] == [
        {
            "type": {
                "coding": [{"system": "https://sambus.se/fhir/CodeSystem/sambus-statement", "code": "lvu32"}]
            },
            "valueReference": {
                "type": "DocumentReference",
                "identifier": {
                    "system": "urn:sambus:source:cosmic-region-vastmanland",
                    "value": "lvu32-2026-017",
                },
            },
        }
    ]
    assert "authoredOn" in ordered
    assert "authoredOn" not in completed


def test_an_organisation_named_by_routing_address_gets_and_answers_its_own_task(
    walked: dict[str, dict[str, Step]],
):
    [report] = walked["concern"]["01-reported.json"]
    [answer] = walked["concern"]["02-received.json"]

    assert _task(report)["owner"]["identifier"] == {"system": "urn:oid:2.5.4.97", "value": "212000-2080"}
    assert _task(answer)["id"] == _task(report)["id"]
    assert answer["recipient"] == "vasteras-skola-sodra"
    assert [_task(report)["status"], _task(answer)["status"]] == ["requested", "accepted"]


def test_every_delivered_message_is_addressed_to_its_recipient_and_stamped_when_assembled(
    walked: dict[str, dict[str, Step]],
):
    directory = RoutingDirectory.load(None)
    for walk, steps in walked.items():
        for name, records in steps.items():
            event = json.loads((WALKS_DIR / walk / name).read_text(encoding="utf-8"))
            for record in records:
                message = record["message"]
                [destination] = message["entry"][0]["resource"]["destination"]
                recipient = directory.by_id(record["recipient"])
                first = recipient.identifiers[0]

                assert destination["endpoint"] == f"{DESTINATION_ENDPOINT_PREFIX}{recipient.id}"
                assert destination["receiver"]["identifier"] == {"system": first.system, "value": first.value}
                assert dt.datetime.fromisoformat(message["timestamp"]) == (
                    dt.datetime.fromisoformat(event["time"]) + ASSEMBLY_DELAY
                )
                assert ROUTING_ADDRESS_SYSTEM not in json.dumps(message), f"{walk}/{name}: a routing address"
