"""A school's SIP initiative becomes one FHIR message: a Task inviting each named agency."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from sambus.adapters import translate_message
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.events import SipReason
from sambus.contracts.fhir import EVENT_SYSTEM, SOURCE_EVENT_SYSTEM, TASK_SYSTEM, EventCode
from sambus.contracts.identifiers import HSA_ID_SYSTEM, ORGANISATION_NUMBER_SYSTEM, PERSONNUMMER_SYSTEM

CHILD = "201203150006"


ASSEMBLED = dt.datetime(2027, 1, 1, 12, 0, tzinfo=dt.UTC)


def _translate(event: dict) -> list:
    return translate_message(json.dumps(event).encode("utf-8"), clock=lambda: ASSEMBLED)


def _resources(bundle: dict, resource_type: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def _by_full_url(bundle: dict) -> dict[str, dict]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def test_sip_initiated_becomes_one_intent(sip_event):
    intents = _translate(sip_event())

    assert len(intents) == 1
    intent = intents[0]
    assert intent.event is EventCode.SIP_INITIATED
    assert intent.child_personnummer == CHILD
    assert intent.bundle["id"] == intent.message_id
    assert intent.correlation_id == intent.message_id


def test_bundle_is_a_valid_fhir_message(sip_event):
    [intent] = _translate(sip_event())

    bundle = Bundle.model_validate(intent.bundle)

    assert bundle.type == "message"
    assert bundle.entry[0].resource.get_resource_type() == "MessageHeader"
    assert bundle.identifier.system == SOURCE_EVENT_SYSTEM
    assert bundle.identifier.value == "skolsystem-vasteras|event-1"


def test_message_header_comes_first_with_the_sip_initiated_event(sip_event):
    [intent] = _translate(sip_event())
    header = intent.bundle["entry"][0]["resource"]

    assert header["resourceType"] == "MessageHeader"
    assert header["eventCoding"] == {"system": EVENT_SYSTEM, "code": "sip-initiated"}
    assert header["source"]["name"] == "skolsystem-vasteras"


def test_header_focuses_on_every_task(sip_event):
    [intent] = _translate(sip_event())
    header = intent.bundle["entry"][0]["resource"]
    task_urls = [e["fullUrl"] for e in intent.bundle["entry"] if e["resource"]["resourceType"] == "Task"]

    assert [f["reference"] for f in header["focus"]] == task_urls


@pytest.mark.parametrize(
    "invite",
    [
        [{"hsaId": "SE2321000206-1001"}],
        [{"organisationNumber": "212000-2080"}, {"hsaId": "SE2321000206-1001"}],
        [
            {"organisationNumber": "212000-2080"},
            {"hsaId": "SE2321000206-1001"},
            {"hsaId": "SE2321000206-1003"},
        ],
    ],
)
def test_one_sip_invitation_task_per_invitee(sip_event, invite):
    [intent] = _translate(sip_event(data={"invite": invite}))
    tasks = _resources(intent.bundle, "Task")

    assert len(tasks) == len(invite)
    for task in tasks:
        assert task["status"] == "requested"
        assert task["code"]["coding"][0]["system"] == TASK_SYSTEM
        assert task["code"]["coding"][0]["code"] == "sip-participation"


@pytest.mark.parametrize(
    ("invitee", "system", "value"),
    [
        ({"hsaId": "SE2321000206-1001"}, HSA_ID_SYSTEM, "SE2321000206-1001"),
        ({"organisationNumber": "212000-2080"}, ORGANISATION_NUMBER_SYSTEM, "212000-2080"),
        ({"organisationNumber": "2120002080"}, ORGANISATION_NUMBER_SYSTEM, "212000-2080"),
    ],
)
def test_task_owner_is_the_invited_agency(sip_event, invitee, system, value):
    [intent] = _translate(sip_event(data={"invite": [invitee]}))
    [task] = _resources(intent.bundle, "Task")

    assert task["owner"]["identifier"] == {"system": system, "value": value}
    assert task["owner"]["type"] == "Organization"


def test_task_is_for_the_patient_identified_by_personnummer(sip_event):
    [intent] = _translate(sip_event())
    resources = _by_full_url(intent.bundle)
    [patient] = _resources(intent.bundle, "Patient")

    assert patient["identifier"] == [{"system": PERSONNUMMER_SYSTEM, "value": CHILD}]
    for task in _resources(intent.bundle, "Task"):
        assert resources[task["for"]["reference"]] is patient


@pytest.mark.parametrize("reason", [r.value for r in SipReason])
def test_reason_category_is_carried_on_every_task(sip_event, reason):
    [intent] = _translate(sip_event(data={"reason": reason}))

    for task in _resources(intent.bundle, "Task"):
        assert task["reasonCode"]["coding"][0]["code"] == reason


def test_requester_is_the_school_unit(sip_event):
    [intent] = _translate(sip_event())

    for task in _resources(intent.bundle, "Task"):
        assert task["requester"]["identifier"]["value"] == "19800001"


def test_same_event_twice_gives_the_same_bundle(sip_event):
    [first] = _translate(sip_event())
    [second] = _translate(sip_event())

    assert first == second
    assert first.bundle == second.bundle


def test_binary_binding_and_plain_json_give_the_same_ids(sip_event):
    event = sip_event()
    headers = [(f"ce_{k}", event[k].encode()) for k in ("type", "id", "source", "time")]
    [binary] = translate_message(json.dumps(event["data"]).encode(), headers)
    [plain] = _translate(event)

    assert binary.message_id == plain.message_id


@pytest.mark.parametrize(("field", "other"), [("id", "event-2"), ("source", "another-school-system")])
def test_a_different_event_gives_a_different_message(sip_event, field, other):
    [first] = _translate(sip_event())
    [second] = _translate(sip_event(**{field: other}))

    assert first.message_id != second.message_id
    first_ids = {e["resource"]["id"] for e in first.bundle["entry"]}
    second_ids = {e["resource"]["id"] for e in second.bundle["entry"]}
    assert first_ids.isdisjoint(second_ids)


def test_ids_do_not_collide_when_source_or_id_contain_a_pipe(sip_event):
    # Two different events (different source systems) must never share a message id: the ledger and the
    # delivery topics are idempotent on it, so a collision silently drops one child's invitations.
    [first] = _translate(sip_event(source="school|a", id="1"))
    [second] = _translate(sip_event(source="school", id="a|1"))

    assert first.message_id != second.message_id


def test_resource_ids_are_unique_and_full_urls_match(sip_event):
    [intent] = _translate(sip_event())
    entries = intent.bundle["entry"]

    assert len({e["fullUrl"] for e in entries}) == len(entries)
    for entry in entries:
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"


def test_the_same_agency_invited_twice_does_not_give_two_entries_with_one_full_url(sip_event):
    # FHIR bdl-7: fullUrl must be unique in a Bundle. A repeated invitee must be refused or merged.
    invite = [{"hsaId": "SE2321000206-1001"}, {"hsaId": "SE2321000206-1001"}]
    try:
        intents = _translate(sip_event(data={"invite": invite}))
    except InvalidEventError as exc:
        refused_field = exc.field
    else:
        refused_field = None
        entries = intents[0].bundle["entry"]
    if refused_field is not None:
        assert refused_field.startswith("data.invite")
        return
    assert len({e["fullUrl"] for e in entries}) == len(entries)


@pytest.mark.parametrize(
    "invitee",
    [
        {"hsaId": "SE2321000206-1001", "organisationNumber": "212000-2080"},
        {},
        {"hsaId": None, "organisationNumber": None},
    ],
)
def test_invitee_must_be_named_by_exactly_one_identifier(sip_event, invitee):
    with pytest.raises(
        InvalidEventError, match="exactly one of hsaId, organisationNumber or schoolUnitCode"
    ) as caught:
        _translate(sip_event(data={"invite": [{"hsaId": "SE2321000206-1003"}, invitee]}))

    assert caught.value.field == "data.invite.1"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"comment": "free text could carry a name"}, "data.<key>"),
        ({"child": {"civicNo": CHILD, "givenName": "Alva"}}, "data.child.<key>"),
        ({"invite": [{"hsaId": "SE2321000206-1001", "name": "BUP"}]}, "data.invite.0.<key>"),
    ],
)
def test_unknown_fields_are_refused(sip_event, data, field):
    with pytest.raises(InvalidEventError, match="Extra inputs are not permitted") as caught:
        _translate(sip_event(data=data))

    assert caught.value.field == field
    assert not {"comment", "givenName", "name"} & set(str(caught.value).replace(".", " ").split()), (
        "a key the contract does not declare is not repeated (the sender chose it)"
    )


@pytest.mark.parametrize("reason", ["", "Mental_Health", "the child is sad", "other "])
def test_reason_must_be_a_category(sip_event, reason):
    with pytest.raises(InvalidEventError) as caught:
        _translate(sip_event(data={"reason": reason}))

    assert caught.value.field == "data.reason"


@pytest.mark.parametrize("code", ["1980001", "198000011", "1980000A", "", "1980-001"])
def test_school_unit_code_must_have_eight_digits(sip_event, code):
    with pytest.raises(InvalidEventError, match="eight digits") as caught:
        _translate(sip_event(data={"schoolUnitCode": code}))

    assert caught.value.field == "data.schoolUnitCode"


def test_at_most_ten_invitees(sip_event):
    invite = [{"hsaId": f"SE2321000206-{n}"} for n in range(11)]

    with pytest.raises(InvalidEventError) as caught:
        _translate(sip_event(data={"invite": invite}))

    assert caught.value.field == "data.invite"
