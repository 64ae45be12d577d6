"""What the domain asks of each process's messages: recipients, deadlines, labels, residence, ids."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from sambus.adapters import translate_message
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.fhir import (
    AGENCY_KIND_SYSTEM,
    DATA_CATEGORY_SYSTEM,
    PURPOSE_SYSTEM,
    ROUTING_ADDRESS_SYSTEM,
    EventCode,
)
from sambus.contracts.fhir.codes import (
    CONFIDENTIALITY_SYSTEM,
    PROCESS_ID_SYSTEM,
    SWEDISH_SECURITY_SYSTEM,
    TASK_ID_SYSTEM,
)
from sambus.contracts.identifiers import (
    HSA_ID_SYSTEM,
    ORGANISATION_NUMBER_SYSTEM,
    PERSONNUMMER_SYSTEM,
    SAMORDNINGSNUMMER_SYSTEM,
)
from sambus.contracts.intent import Intent

ASSEMBLED = dt.datetime(2027, 1, 1, 12, 0, tzinfo=dt.UTC)


def _translate(event: dict[str, Any]) -> Intent:
    [intent] = translate_message(json.dumps(event).encode(), clock=lambda: ASSEMBLED)
    return intent


def _resources(intent: Intent, kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in intent.bundle["entry"] if e["resource"]["resourceType"] == kind]


def _by_url(intent: Intent) -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in intent.bundle["entry"]}


def _owners(intent: Intent) -> list[tuple[str, str]]:
    return [
        (t["owner"]["identifier"]["system"], t["owner"]["identifier"]["value"])
        for t in _resources(intent, "Task")
    ]


def test_health_exam_request_becomes_two_correlated_task_and_service_request_pairs(example):
    intent = _translate(example("social.health-exam-requested"))
    tasks = _resources(intent, "Task")
    requests = _by_url(intent)

    # The child lives in Köping (1983): the units near it are asked; the municipality is in no other field.
    assert _owners(intent) == [
        (ROUTING_ADDRESS_SYSTEM, "primary_care@1983"),
        (ROUTING_ADDRESS_SYSTEM, "dental@1983"),
    ]
    assert "1983" not in json.dumps(
        [e for e in intent.bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    )
    assert [t["code"]["coding"][0]["code"] for t in tasks] == ["health-examination", "dental-examination"]
    assert {t["groupIdentifier"]["value"] for t in tasks} == {intent.message_id}
    for task in tasks:
        request = requests[task["basedOn"][0]["reference"]]
        assert "focus" not in task
        assert request["resourceType"] == "ServiceRequest"
        assert request["performer"] == [task["owner"]]
        assert request["requisition"] == {"system": PROCESS_ID_SYSTEM, "value": intent.message_id}


def test_named_exam_units_are_owners_by_their_hsa_id(example):
    intent = _translate(
        example(
            "social.health-exam-requested",
            healthCare={"hsaId": "SE2321000206-1001"},
            dentalCare={"hsaId": "SE2321000206-1003"},
        )
    )

    assert _owners(intent) == [(HSA_ID_SYSTEM, "SE2321000206-1001"), (HSA_ID_SYSTEM, "SE2321000206-1003")]


def test_lvu32_order_carries_its_due_date(example):
    intent = _translate(example("social.lvu32-exam-ordered", orderedOn="2026-11-20", due="2026-12-18"))
    [task] = _resources(intent, "Task")
    [request] = _resources(intent, "ServiceRequest")

    assert task["restriction"]["period"]["end"] == "2026-12-18"
    assert request["occurrencePeriod"]["end"] == "2026-12-18"


@pytest.mark.parametrize(("ordered", "due"), [("2026-11-20", "2026-12-19"), ("2026-11-20", "2026-11-19")])
def test_lvu32_order_due_later_than_four_weeks_or_before_the_order_is_refused(example, ordered, due):
    with pytest.raises(InvalidEventError) as caught:
        _translate(example("social.lvu32-exam-ordered", orderedOn=ordered, due=due))

    assert caught.value.field == "data.due"
    assert "four weeks" in caught.value.problem


@pytest.mark.parametrize("source", ["school", "ehr"])
def test_report_of_concern_goes_to_social_services_where_the_child_lives(example, source):
    intent = _translate(example(f"{source}.concern-reported", residenceMunicipality="1983"))
    [patient] = _resources(intent, "Patient")

    assert _owners(intent) == [(ROUTING_ADDRESS_SYSTEM, "social_services@1983")]
    assert patient["address"] == [{"district": "1983"}]
    assert intent.event is EventCode.CONCERN_REPORTED


def test_placement_residence_is_only_in_the_patient_address_and_a_tagged_organisation(example):
    intent = _translate(example("social.placement-started"))
    [patient] = _resources(intent, "Patient")
    text_outside = json.dumps(
        [
            e["resource"]
            for e in intent.bundle["entry"]
            if e["resource"]["resourceType"] not in {"Patient", "Organization"}
        ]
    )
    [school_unit] = _resources(intent, "Organization")

    assert patient["address"][0]["city"] == "Västerås"
    assert "Storgatan" not in text_outside
    assert "19800002" not in text_outside
    assert school_unit["meta"]["tag"] == [{"system": DATA_CATEGORY_SYSTEM, "code": "residence"}]
    for task in _resources(intent, "Task"):
        references = [i["valueReference"]["reference"] for i in task["input"] if "valueReference" in i]
        assert references == [f"urn:uuid:{school_unit['id']}"]


def test_acute_placement_is_due_for_joint_planning_within_two_weeks(example):
    intent = _translate(example("social.placement-started", acute=True, start="2026-11-19"))

    assert {t["restriction"]["period"]["end"] for t in _resources(intent, "Task")} == {"2026-12-03"}


def test_a_protected_child_labels_every_resource_very_restricted(example):
    intent = _translate(example("social.placement-started"))

    assert intent.security == ("V", "skyddadFolkbokforing")
    for entry in intent.bundle["entry"][1:]:
        labels = entry["resource"]["meta"]["security"]
        assert {"system": CONFIDENTIALITY_SYSTEM, "code": "V"} in labels
        assert {"system": SWEDISH_SECURITY_SYSTEM, "code": "skyddadFolkbokforing"} in labels


def test_an_unprotected_child_has_no_labels(example):
    intent = _translate(example("social.placement-changed"))

    assert intent.security == ()
    assert all("security" not in e["resource"].get("meta", {}) for e in intent.bundle["entry"])


def test_hidden_residence_is_restricted_and_carries_a_flag_the_tasks_focus_on(example):
    intent = _translate(example("social.hidden-residence-decided"))
    [flag] = _resources(intent, "Flag")

    assert intent.security == ("R",)
    assert flag["status"] == "active"
    assert {t["focus"]["reference"] for t in _resources(intent, "Task")} == {f"urn:uuid:{flag['id']}"}
    assert _owners(intent) == [(HSA_ID_SYSTEM, "SE2321000206-1001"), (HSA_ID_SYSTEM, "SE2321000206-1003")]


def test_a_resent_event_makes_the_same_message(example):
    event = example("social.sip-initiated")

    assert _translate(event).bundle == _translate(event).bundle
    assert _translate({**event, "id": "another"}).message_id != _translate(event).message_id


def test_follow_up_events_carry_the_process_id_as_correlation_and_group_identifier(example):
    intent = _translate(example("sip.meeting-scheduled", processId="process-42"))

    assert intent.correlation_id == "process-42"
    assert {t["groupIdentifier"]["value"] for t in _resources(intent, "Task")} == {"process-42"}


def test_a_first_message_is_its_own_process(example):
    intent = _translate(example("school.sip-initiated"))

    assert intent.correlation_id == intent.message_id
    assert {t["groupIdentifier"]["value"] for t in _resources(intent, "Task")} == {intent.message_id}


def test_sip_plan_marks_the_lead_coordinator_and_each_agency_action(example):
    intent = _translate(example("sip.plan-established"))
    [plan] = _resources(intent, "CarePlan")

    lead = {
        "type": "Organization",
        "identifier": {"system": ORGANISATION_NUMBER_SYSTEM, "value": "212000-2080"},
    }
    assert plan["author"] == lead
    assert plan["extension"][0]["valueReference"] == lead
    actions = [a["detail"]["code"]["coding"][0]["code"] for a in plan["activity"]]
    assert actions == ["school_support", "treatment", "family_support", "sip-follow-up"]
    assert plan["activity"][-1]["detail"]["scheduledPeriod"] == {"start": "2027-03-03"}
    assert {t["focus"]["reference"] for t in _resources(intent, "Task")} == {f"urn:uuid:{plan['id']}"}


def test_a_samordningsnummer_is_accepted_with_its_own_identifier_system(example):
    intent = _translate(example("school.newly-arrived-referral", child={"civicNo": "20120375-0003"}))
    [patient] = _resources(intent, "Patient")

    assert patient["identifier"][0]["system"] == SAMORDNINGSNUMMER_SYSTEM


def test_an_inbound_fhir_consent_becomes_the_same_message_as_the_json_event(example):
    fhir = _translate(example("ehr.fhir-consent"))
    [consent] = _resources(fhir, "Consent")

    assert fhir.event is EventCode.CONSENT_RECORDED
    assert consent["identifier"][0]["value"] == "samtycke-bu-2026-8"
    assert consent["performer"][0]["identifier"]["value"] == "198004121235"


def test_an_inbound_fhir_consent_without_a_purpose_is_refused(example):
    event = example("ehr.fhir-consent")
    del event["data"]["provision"]["purpose"]

    with pytest.raises(InvalidEventError) as caught:
        _translate(event)

    assert "Consent.provision.purpose" in caught.value.problem


def test_an_inbound_fhir_consent_may_carry_its_purpose_as_a_category_code(example):
    event = example("ehr.fhir-consent")
    purpose = event["data"]["provision"].pop("purpose")
    event["data"]["category"] = [{"coding": purpose}]

    [consent] = _resources(_translate(event), "Consent")

    assert consent["provision"]["purpose"] == purpose


def test_an_inbound_fhir_consent_naming_two_purposes_is_refused(example):
    event = example("ehr.fhir-consent")
    event["data"]["category"] = [{"coding": [{"system": PURPOSE_SYSTEM, "code": "information_sharing"}]}]

    with pytest.raises(InvalidEventError) as caught:
        _translate(event)

    assert "more than one purpose" in caught.value.problem


def test_an_inbound_fhir_consent_without_policy_or_policy_rule_is_refused(example):
    event = example("ehr.fhir-consent")
    del event["data"]["policy"]

    with pytest.raises(InvalidEventError) as caught:
        _translate(event)

    assert "ppc-1" in caught.value.problem


def test_a_consent_states_its_purpose_in_provision_and_is_categorised_as_patient_consent(example):
    [consent] = _resources(_translate(example("social.consent-recorded")), "Consent")

    assert consent["category"] == [
        {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}
    ]
    assert consent["provision"]["purpose"] == [{"system": PURPOSE_SYSTEM, "code": "sip"}]
    assert consent["policy"]


def test_a_consent_names_its_recipients_as_organisations_and_its_legal_text(example):
    [consent] = _resources(_translate(example("social.consent-recorded")), "Consent")
    kinds = {
        f"#{o['id']}": o["type"][0]["coding"][0]
        for o in consent["contained"]
        if o["resourceType"] == "Organization"
    }

    assert [kinds[a["reference"]["reference"]]["code"] for a in consent["provision"]["actor"]] == [
        "school",
        "bu_halsan",
        "dental",
    ]
    assert {c["system"] for c in kinds.values()} == {AGENCY_KIND_SYSTEM}
    assert ROUTING_ADDRESS_SYSTEM not in json.dumps(consent)
    assert consent["policy"] == [
        {"authority": "https://www.riksdagen.se", "uri": "https://rkrattsbaser.gov.se/sfst?bet=2009:400"}
    ]


def test_an_inbound_fhir_consent_may_name_a_kind_by_routing_address_as_sambus_did_before(example):
    event = example("ehr.fhir-consent")
    del event["data"]["contained"]
    event["data"]["provision"]["actor"][0]["reference"] = {
        "identifier": {"system": ROUTING_ADDRESS_SYSTEM, "value": "school"}
    }

    [consent] = _resources(_translate(event), "Consent")
    [fresh] = _resources(_translate(example("ehr.fhir-consent")), "Consent")

    assert consent["provision"]["actor"] == fresh["provision"]["actor"]
    assert consent["contained"] == fresh["contained"]


def test_an_inbound_fhir_consent_may_name_people_by_the_older_riv_ta_oid(example):
    event = example("ehr.fhir-consent")
    event["data"]["patient"]["identifier"]["system"] = "urn:oid:1.2.752.129.2.1.3.1"
    event["data"]["performer"][0]["identifier"]["system"] = "1.2.752.129.2.1.3.1"

    intent = _translate(event)

    [patient] = _resources(intent, "Patient")
    [consent] = _resources(intent, "Consent")
    assert patient["identifier"][0] == {"system": PERSONNUMMER_SYSTEM, "value": "201203150006"}
    assert consent["performer"][0]["identifier"] == {"system": PERSONNUMMER_SYSTEM, "value": "198004121235"}


def test_an_inbound_fhir_consent_naming_the_child_by_another_system_is_refused(example):
    event = example("ehr.fhir-consent")
    event["data"]["patient"]["identifier"]["system"] = "urn:oid:1.2.752.29.4.19"

    with pytest.raises(InvalidEventError) as caught:
        _translate(event)

    assert "Consent.patient" in caught.value.problem


def test_the_header_names_the_requesting_organisation_as_sender_and_responsible(example):
    intent = _translate(example("sip.closed"))
    header = intent.bundle["entry"][0]["resource"]
    requesters = {json.dumps(t["requester"], sort_keys=True) for t in _resources(intent, "Task")}

    assert len(requesters) == 1
    assert header["sender"] == header["responsible"] == json.loads(requesters.pop())
    assert header["sender"]["identifier"]["system"] != ROUTING_ADDRESS_SYSTEM


def test_a_message_without_a_requesting_organisation_names_no_sender(example):
    header = _translate(example("social.consent-recorded")).bundle["entry"][0]["resource"]

    assert "sender" not in header


def test_every_task_carries_its_id_as_a_stable_identifier_and_an_answer_is_that_task_updated(example):
    answer = _translate(example("social.task-answered", taskId="task-received"))
    [task] = _resources(answer, "Task")

    assert task["id"] == "task-received"
    assert task["identifier"] == [{"system": TASK_ID_SYSTEM, "value": "task-received"}]
    assert task["status"] == "accepted"
    assert "output" not in task
    assert "authoredOn" not in task
    assert task["lastModified"] == example("social.task-answered")["time"]


def test_a_lifted_hidden_residence_flag_keeps_the_decisions_start_and_ends_at_the_lift(example):
    [flag] = _resources(_translate(example("social.hidden-residence-lifted")), "Flag")
    [without_start] = _resources(
        _translate(example("social.hidden-residence-lifted", validFrom=None)), "Flag"
    )

    assert flag["status"] == "inactive"
    assert flag["period"] == {"start": "2026-11-20T10:00:00+01:00", "end": "2027-03-01T08:00:00+01:00"}
    assert without_start["period"] == {"end": "2027-03-01T08:00:00+01:00"}


def test_a_lift_that_says_the_decision_started_after_it_is_refused(example):
    with pytest.raises(InvalidEventError) as caught:
        _translate(example("social.hidden-residence-lifted", validFrom="2027-03-02T08:00:00+01:00"))

    assert str(caught.value) == "data.validFrom: must be before at (the lift)"
