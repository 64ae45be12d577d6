"""Projection: each invited agency gets the header, its own Task and the Patient; no other agency's Task."""

from __future__ import annotations

import copy
import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from sambus.adapters import translate_message
from sambus.contracts.errors import InvalidIntentError
from sambus.contracts.identifiers import HSA_ID_SYSTEM, ORGANISATION_NUMBER_SYSTEM
from sambus.router.routing.projection import Referrals, for_recipient, tasks

OWNERS = [
    (ORGANISATION_NUMBER_SYSTEM, "212000-2080"),
    (HSA_ID_SYSTEM, "SE2321000206-1001"),
    (HSA_ID_SYSTEM, "SE2321000206-1003"),
]


@pytest.fixture
def bundle(sip_event) -> dict:
    [intent] = translate_message(json.dumps(sip_event()).encode("utf-8"))
    return intent.bundle


def _project(bundle: dict, index: int, recipient_id: str = "recipient-a") -> dict:
    return for_recipient(
        bundle, tasks(bundle)[index], recipient_id=recipient_id, recipient_name="Recipient A"
    )


def test_tasks_finds_each_focal_task_with_its_owner(bundle):
    found = tasks(bundle)

    assert [(t.owner_system, t.owner_value) for t in found] == OWNERS
    for task in found:
        assert task.resource["resourceType"] == "Task"
        assert task.full_url == f"urn:uuid:{task.resource['id']}"


def test_tasks_ignores_resources_the_header_does_not_focus_on(bundle):
    bundle["entry"][0]["resource"]["focus"] = bundle["entry"][0]["resource"]["focus"][:1]

    assert [(t.owner_system, t.owner_value) for t in tasks(bundle)] == OWNERS[:1]


@pytest.mark.parametrize("index", range(3))
def test_projection_holds_only_the_header_the_task_and_its_patient(bundle, index):
    task = tasks(bundle)[index]

    projected = for_recipient(bundle, task, recipient_id="recipient-a", recipient_name="Recipient A")

    types = [e["resource"]["resourceType"] for e in projected["entry"]]
    assert types == ["MessageHeader", "Task", "Patient"]
    assert projected["entry"][1]["resource"] == task.resource
    patient_url = task.resource["for"]["reference"]
    assert projected["entry"][2]["fullUrl"] == patient_url


@pytest.mark.parametrize("index", range(3))
def test_projection_leaves_out_the_other_agencies_tasks(bundle, index):
    projected = _project(bundle, index)

    text = json.dumps(projected)
    for other, (_, value) in enumerate(OWNERS):
        if other != index:
            assert value not in text
            assert tasks(bundle)[other].full_url not in text


def test_header_destination_names_the_recipient(bundle):
    task = tasks(bundle)[1]

    projected = for_recipient(bundle, task, recipient_id="vastmanland-bu-halsan", recipient_name="BU-hälsan")

    [destination] = projected["entry"][0]["resource"]["destination"]
    assert destination["name"] == "BU-hälsan"
    assert destination["endpoint"] == "urn:sambus:recipient:vastmanland-bu-halsan"
    assert destination["receiver"]["identifier"] == {"system": HSA_ID_SYSTEM, "value": "SE2321000206-1001"}


def test_header_focus_points_to_the_recipients_task(bundle):
    task = tasks(bundle)[2]

    projected = for_recipient(bundle, task, recipient_id="recipient-a", recipient_name="A")

    assert projected["entry"][0]["resource"]["focus"] == [{"reference": task.full_url}]


def test_header_keeps_the_event_and_gets_its_own_id(bundle):
    projected = _project(bundle, 0)
    original_header = bundle["entry"][0]
    header = projected["entry"][0]

    assert header["resource"]["eventCoding"] == original_header["resource"]["eventCoding"]
    assert header["resource"]["id"] != original_header["resource"]["id"]
    assert header["fullUrl"] == f"urn:uuid:{header['resource']['id']}"


def test_projected_bundle_id_differs_per_recipient_and_is_deterministic(bundle):
    ids = {_project(bundle, i, recipient_id=f"recipient-{i}")["id"] for i in range(3)}

    assert len(ids) == 3
    assert bundle["id"] not in ids
    assert _project(bundle, 0, "recipient-0")["id"] == _project(bundle, 0, "recipient-0")["id"]


@pytest.mark.parametrize("index", range(3))
def test_projected_bundle_is_a_valid_fhir_message(bundle, index):
    parsed = Bundle.model_validate(_project(bundle, index))

    assert parsed.type == "message"
    assert parsed.entry[0].resource.get_resource_type() == "MessageHeader"
    assert len(parsed.entry) == 3


def test_projection_does_not_change_the_intent(bundle):
    before = copy.deepcopy(bundle)

    projected = _project(bundle, 0)
    projected["entry"][1]["resource"]["status"] = "cancelled"

    assert bundle == before


def _without_header(bundle: dict) -> dict:
    bundle["entry"] = bundle["entry"][1:]
    return bundle


def _header_last(bundle: dict) -> dict:
    bundle["entry"] = [*bundle["entry"][1:], bundle["entry"][0]]
    return bundle


def _no_owner(bundle: dict) -> dict:
    del bundle["entry"][1]["resource"]["owner"]
    return bundle


def _owner_without_identifier(bundle: dict) -> dict:
    bundle["entry"][2]["resource"]["owner"] = {"reference": "Organization/1"}
    return bundle


def _owner_without_value(bundle: dict) -> dict:
    del bundle["entry"][3]["resource"]["owner"]["identifier"]["value"]
    return bundle


def _not_a_bundle(bundle: dict) -> dict:
    bundle["resourceType"] = "Task"
    return bundle


def _not_a_message(bundle: dict) -> dict:
    bundle["type"] = "collection"
    return bundle


def _no_entries(bundle: dict) -> dict:
    del bundle["entry"]
    return bundle


def _empty_entries(bundle: dict) -> dict:
    bundle["entry"] = []
    return bundle


@pytest.mark.parametrize(
    ("breaks", "problem"),
    [
        (_not_a_bundle, "message Bundle"),
        (_not_a_message, "message Bundle"),
        (_no_entries, "message Bundle"),
        (_empty_entries, "MessageHeader"),
        (_without_header, "MessageHeader"),
        (_header_last, "MessageHeader"),
        (_no_owner, "owner identifier"),
        (_owner_without_identifier, "owner identifier"),
        (_owner_without_value, "owner identifier"),
    ],
)
def test_invalid_intents_are_refused(bundle, breaks, problem):
    with pytest.raises(InvalidIntentError, match=problem):
        tasks(breaks(bundle))


def test_projection_of_an_invalid_intent_is_refused(bundle):
    task = tasks(bundle)[0]

    with pytest.raises(InvalidIntentError, match="MessageHeader"):
        for_recipient(_without_header(bundle), task, recipient_id="recipient-a", recipient_name="A")


def _with_a_care_plan(bundle: dict, practitioner: str) -> dict:
    """``bundle`` with a CarePlan (naming a lead ``practitioner``) that the first Task is based on and that
    the second Task reaches only through the first (``partOf``), which is not followed."""
    bundle = copy.deepcopy(bundle)
    first, second, _ = tasks(bundle)
    bundle["entry"] += [
        {
            "fullUrl": "urn:uuid:careplan",
            "resource": {
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "subject": first.resource["for"],
                "author": {"reference": f"urn:uuid:{practitioner}"},
            },
        },
        {"fullUrl": "urn:uuid:lead", "resource": {"resourceType": "Practitioner", "id": "lead"}},
        {"fullUrl": "urn:uuid:other", "resource": {"resourceType": "Practitioner", "id": "other"}},
    ]
    first.resource["basedOn"] = [{"reference": "urn:uuid:careplan"}]
    second.resource["partOf"] = [{"reference": first.full_url}]
    return bundle


def test_referrals_shared_by_the_recipients_of_a_bundle_project_as_without(bundle):
    chained = _with_a_care_plan(bundle, "lead")
    alone = [
        for_recipient(chained, task, recipient_id=f"r{n}", recipient_name="R")
        for n, task in enumerate(tasks(chained))
    ]
    referrals = Referrals(chained)
    order = [2, 0, 1, 0]
    shared = {
        n: for_recipient(
            chained, tasks(chained)[n], recipient_id=f"r{n}", recipient_name="R", referrals=referrals
        )
        for n in order
    }

    assert [e["fullUrl"] for e in alone[0]["entry"][2:]] == [
        alone[0]["entry"][2]["fullUrl"],
        "urn:uuid:careplan",
        "urn:uuid:lead",
    ]
    assert "urn:uuid:careplan" not in [e["fullUrl"] for e in alone[1]["entry"]], (
        "another Task is not followed"
    )
    for n in order:
        assert shared[n] == alone[n]


def test_referrals_made_for_another_bundle_are_not_used(bundle):
    chained = _with_a_care_plan(bundle, "lead")
    elsewhere = _with_a_care_plan(bundle, "other")
    referrals = Referrals(elsewhere)
    task = tasks(elsewhere)[0]
    for_recipient(elsewhere, task, recipient_id="r0", recipient_name="R", referrals=referrals)

    projected = for_recipient(
        chained, tasks(chained)[0], recipient_id="r0", recipient_name="R", referrals=referrals
    )

    urls = [e["fullUrl"] for e in projected["entry"]]
    assert "urn:uuid:lead" in urls
    assert "urn:uuid:other" not in urls
