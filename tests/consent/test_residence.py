"""Residence-revealing data in a Bundle, and what the EHR is told when hidden residence starts and ends."""

from __future__ import annotations

import datetime as dt

from fhir.resources.R4B.bundle import Bundle

from sambus.consent import guardian_access_message, guardian_access_notice, redact, residence_paths
from sambus.contracts.fhir import EventCode
from sambus.contracts.fhir.codes import DATA_CATEGORY_SYSTEM
from sambus.contracts.registry_facts import HiddenResidenceDecided, HiddenResidenceLifted

from .messages import bundle, reveals_residence

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def test_the_patients_address_and_tagged_resources_are_found():
    message = bundle(tagged=2, plain=2)

    assert residence_paths(message) == ("entry[1].resource.address", "entry[2]", "entry[3]")
    assert not reveals_residence(redact(message, residence_paths(message)))


def test_references_to_a_removed_resource_go_with_it():
    """The validator's warning: a redacted placement kept a Task.input naming the removed school unit."""
    message = bundle(tagged=1, plain=1)
    message["entry"][2]["fullUrl"] = "urn:uuid:school-unit"
    message["entry"][3]["resource"].update(
        {
            "input": [
                {"type": {"text": "kept"}, "valueString": "x"},
                {"type": {"text": "school"}, "valueReference": {"reference": "urn:uuid:school-unit"}},
            ],
            "focus": {"reference": "urn:uuid:school-unit"},
        }
    )

    paths = residence_paths(message)
    redacted = redact(message, paths)

    assert paths == (
        "entry[1].resource.address",
        "entry[2]",
        "entry[3].resource.input[1]",
        "entry[3].resource.focus",
    )
    [task] = [e["resource"] for e in redacted["entry"] if e["resource"]["resourceType"] == "Task"]
    assert task["input"] == [{"type": {"text": "kept"}, "valueString": "x"}]
    assert "focus" not in task
    assert "urn:uuid:school-unit" not in repr(redacted)


def test_a_list_emptied_by_redaction_is_removed():
    """FHIR has no empty arrays: a Task whose only input named the removed resource loses ``input``."""
    message = bundle(tagged=1, plain=1)
    message["entry"][2]["fullUrl"] = "urn:uuid:school-unit"
    message["entry"][3]["resource"]["input"] = [
        {"type": {"text": "new-school-unit"}, "valueReference": {"reference": "urn:uuid:school-unit"}}
    ]

    redacted = redact(message, residence_paths(message))

    assert "input" not in redacted["entry"][2]["resource"]


def test_a_bundle_without_residence_data_has_no_paths():
    assert residence_paths(bundle(address=False, tagged=0)) == ()


def test_a_tag_from_another_system_is_not_residence():
    message = bundle(address=False, tagged=1)
    message["entry"][2]["resource"]["meta"]["tag"][0]["system"] = "http://example.org/other"

    assert residence_paths(message) == ()


def test_another_category_of_the_same_system_is_not_residence():
    message = bundle(address=False, tagged=1)
    message["entry"][2]["resource"]["meta"]["tag"] = [{"system": DATA_CATEGORY_SYSTEM, "code": "health"}]

    assert residence_paths(message) == ()


def test_odd_shapes_are_not_a_crash():
    assert residence_paths({}) == ()
    assert residence_paths({"entry": "x"}) == ()
    assert residence_paths({"entry": [1, {"resource": None}, {"resource": {"meta": "x"}}]}) == ()


def test_a_decision_blocks_guardian_access_for_its_period():
    notice = guardian_access_notice(
        HiddenResidenceDecided(
            decision_id="h-1", child="201203150006", valid_from=T0, valid_to=T0 + dt.timedelta(30)
        )
    )

    assert notice.event is EventCode.GUARDIAN_ACCESS_BLOCKED
    assert (notice.decision_id, notice.effective, notice.until) == ("h-1", T0, T0 + dt.timedelta(30))


def test_lifting_resumes_guardian_access():
    notice = guardian_access_notice(HiddenResidenceLifted(decision_id="h-1", child="201203150006", at=T0))

    assert notice.event is EventCode.GUARDIAN_ACCESS_RESUMED
    assert (notice.decision_id, notice.effective, notice.until) == ("h-1", T0, None)


def _decided():
    return HiddenResidenceDecided(
        decision_id="h-1", child="201203150006", valid_from=T0, valid_to=T0 + dt.timedelta(days=30)
    )


def test_the_block_message_is_a_valid_fhir_message_with_an_active_flag():
    message = guardian_access_message(guardian_access_notice(_decided()), timestamp=T0)

    Bundle.model_validate(message)
    header, flag, patient = (e["resource"] for e in message["entry"])
    assert header["eventCoding"]["code"] == "guardian-access-blocked"
    assert flag["resourceType"] == "Flag"
    assert flag["status"] == "active"
    assert flag["period"]["start"].startswith("2026-11-20")
    assert flag["period"]["end"].startswith("2026-12-20")
    assert flag["subject"]["reference"] == f"urn:uuid:{patient['id']}"
    assert residence_paths(message) == ()
    assert "address" not in patient


def test_the_resume_message_has_an_inactive_flag_ending_at_the_lift():
    lifted = HiddenResidenceLifted(decision_id="h-1", child="201203150006", at=T0 + dt.timedelta(days=3))

    message = guardian_access_message(guardian_access_notice(lifted), timestamp=T0)

    header, flag, _patient = (e["resource"] for e in message["entry"])
    assert header["eventCoding"]["code"] == "guardian-access-resumed"
    assert flag["status"] == "inactive"
    assert list(flag["period"]) == ["end"]
    assert flag["period"]["end"].startswith("2026-11-23T09:00:00")


def test_the_message_is_the_same_when_made_again():
    first = guardian_access_message(guardian_access_notice(_decided()), timestamp=T0)
    again = guardian_access_message(guardian_access_notice(_decided()), timestamp=T0)

    assert first == again
    assert (
        first["id"]
        != guardian_access_message(
            guardian_access_notice(HiddenResidenceLifted(decision_id="h-1", child="201203150006", at=T0)),
            timestamp=T0,
        )["id"]
    )
