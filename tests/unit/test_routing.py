"""Routing rules from the regional agreements, resolved in the example directory packaged with sambus."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from sambus.adapters import translate_message
from sambus.consent import Decision, DecisionRequest, LedgerRecord, Outcome
from sambus.contracts.errors import ConfigError, ProcessNotKnownError, RoutingError
from sambus.contracts.fhir import ROUTING_ADDRESS_SYSTEM, SCHOOL_UNIT_SYSTEM, EventCode
from sambus.contracts.fhir.codes import ACTIVE_CARE_CONTACT, TASK_ID_SYSTEM, TASK_INPUT_SYSTEM
from sambus.contracts.fhir.task import task_id_for
from sambus.contracts.identifiers import HSA_ID_SYSTEM, ORGANISATION_NUMBER_SYSTEM
from sambus.contracts.topics import Header, Topics
from sambus.router.cli.contracts import EXAMPLES_DIR
from sambus.router.routing.directory import RoutingDirectory
from sambus.router.routing.projection import tasks
from sambus.router.routing.rules import RELAYED_FOR_HEADER, RoutingRules
from sambus.router.stages.delivery import Delivery

DIRECTORY = RoutingDirectory.load()  # the example packaged with sambus
RULES = RoutingRules(DIRECTORY)


def _task(n: int, system: str, value: str, *, care_contact: bool | None = None) -> dict[str, Any]:
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": f"task-{n}",
        "status": "requested",
        "intent": "proposal",
        "for": {"reference": "urn:uuid:patient"},
        "owner": {"identifier": {"system": system, "value": value}},
    }
    if care_contact is not None:
        task["input"] = [
            {
                "type": {"coding": [{"system": TASK_INPUT_SYSTEM, "code": ACTIVE_CARE_CONTACT}]},
                "valueBoolean": care_contact,
            }
        ]
    return task


def message(
    *owners: dict[str, Any], district: str | None = "1980", message_id: str = "m-1"
) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "patient"}
    if district is not None:
        patient["address"] = [{"district": district}]
    return {
        "resourceType": "Bundle",
        "id": message_id,
        "type": "message",
        "entry": [
            {
                "fullUrl": "urn:uuid:header",
                "resource": {
                    "resourceType": "MessageHeader",
                    "focus": [{"reference": f"urn:uuid:{t['id']}"} for t in owners],
                },
            },
            *({"fullUrl": f"urn:uuid:{t['id']}", "resource": t} for t in owners),
            {"fullUrl": "urn:uuid:patient", "resource": patient},
        ],
    }


def address(n: int, value: str) -> dict[str, Any]:
    return _task(n, ROUTING_ADDRESS_SYSTEM, value)


def routes(event: EventCode, bundle: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    routing = RULES.route(event, bundle, tasks(bundle))
    assert routing.unroutable == []
    return [(r.recipient.id, r.via.id, r.refused) for r in routing.routes]


# Identifiers and routing addresses


def test_an_identifier_names_its_organisation_directly() -> None:
    bundle = message(_task(1, HSA_ID_SYSTEM, "SE2321000206-1001"))

    assert routes(EventCode.SIP_INITIATED, bundle) == [
        ("vastmanland-bu-halsan", "vastmanland-bu-halsan", None)
    ]


def test_a_routing_address_with_a_kommunkod_names_that_municipalitys_social_services() -> None:
    bundle = message(address(1, "social_services@1983"))

    assert routes(EventCode.SIP_INITIATED, bundle)[0][0] == "koping-socialtjanst"


def test_a_routing_address_without_kommunkod_uses_the_childs_municipality() -> None:
    assert routes(EventCode.SIP_INITIATED, message(address(1, "social_services"), district="1983"))[0][0] == (
        "koping-socialtjanst"
    )
    assert routes(EventCode.SIP_INITIATED, message(address(1, "social_services"), district="1980"))[0][0] == (
        "vasteras-socialtjanst"
    )


def test_a_regional_unit_is_found_by_county_part_when_the_municipality_has_none() -> None:
    # Surahammar (1907) has no vårdcentral of its own in the directory; it is in östra Västmanland.
    assert routes(EventCode.SIP_INITIATED, message(address(1, "primary_care"), district="1907"))[0][0] == (
        "vastmanland-vc-vasteras"
    )
    assert routes(EventCode.SIP_INITIATED, message(address(1, "primary_care"), district="1984"))[0][0] == (
        "vastmanland-vc-kopings"
    )


def test_a_routing_address_that_fits_several_organisations_is_refused() -> None:
    bundle = message(address(1, "primary_care"), district="1962")  # Norberg: in no county part

    routing = RULES.route(EventCode.SIP_INITIATED, bundle, tasks(bundle))

    [error] = routing.unroutable
    assert "several organisations" in str(error)
    assert "vastmanland-vc-kopings" in str(error)


def test_an_unknown_invitee_is_unroutable_while_the_others_are_routed() -> None:
    bundle = message(
        _task(1, HSA_ID_SYSTEM, "SE2321000206-9999"), _task(2, ORGANISATION_NUMBER_SYSTEM, "212000-2080")
    )

    routing = RULES.route(EventCode.SIP_INITIATED, bundle, tasks(bundle))

    assert [r.recipient.id for r in routing.routes] == ["vasteras-socialtjanst"]
    [error] = routing.unroutable
    assert "organisation identifier" in str(error)
    assert "9999" not in str(error), "the message's identifier is not repeated"


def test_an_unknown_agency_kind_in_a_routing_address_is_a_routing_error() -> None:
    with pytest.raises(RoutingError, match="agency kind sambus does not know") as caught:
        RULES.resolve(ROUTING_ADDRESS_SYSTEM, "hospital@1980")

    assert "hospital" not in str(caught.value)


# School without Cosmic Link


def test_a_school_without_cosmic_link_reaches_sip_through_social_services_of_its_municipality() -> None:
    bundle = message(_task(1, SCHOOL_UNIT_SYSTEM, "19800001"))

    assert routes(EventCode.SIP_INITIATED, bundle) == [
        ("vasteras-skola-norra", "vasteras-socialtjanst", None)
    ]


def test_a_school_with_cosmic_link_takes_its_sip_messages_itself() -> None:
    bundle = message(_task(1, SCHOOL_UNIT_SYSTEM, "19800002"))

    assert routes(EventCode.SIP_INITIATED, bundle) == [("vasteras-skola-sodra", "vasteras-skola-sodra", None)]


def test_a_school_without_cosmic_link_and_no_social_services_in_the_directory_goes_through_health_care() -> (
    None
):
    raw = DIRECTORY.model_dump(mode="json")
    raw["recipients"] = [r for r in raw["recipients"] if r["id"] != "vasteras-socialtjanst"]
    rules = RoutingRules(RoutingDirectory.model_validate(raw))
    bundle = message(_task(1, SCHOOL_UNIT_SYSTEM, "19800001"))

    [route] = rules.route(EventCode.SIP_INITIATED, bundle, tasks(bundle)).routes

    assert (route.recipient.id, route.via.id) == ("vasteras-skola-norra", "vastmanland-bu-halsan")


def test_a_school_without_cosmic_link_gets_non_sip_messages_directly() -> None:
    bundle = message(_task(1, SCHOOL_UNIT_SYSTEM, "19800001"))

    assert routes(EventCode.INVESTIGATION_INFO_REQUESTED, bundle)[0][1] == "vasteras-skola-norra"


# Specialist care only with an active care contact


@pytest.mark.parametrize(
    ("hsa_id", "unit"), [("SE2321000206-1002", "bup"), ("SE2321000206-1004", "habilitation")]
)
@pytest.mark.parametrize("care_contact", [None, False])
def test_specialist_care_without_an_active_care_contact_is_not_invited(hsa_id, unit, care_contact) -> None:
    bundle = message(_task(1, HSA_ID_SYSTEM, hsa_id, care_contact=care_contact))

    [(_, _, refused)] = routes(EventCode.SIP_INITIATED, bundle)

    assert refused is not None
    assert f"specialist care ({unit})" in refused
    assert "active care contact" in refused


def _invited_by(requester: tuple[str, str], *, care_contact: bool) -> dict[str, Any]:
    task = _task(1, HSA_ID_SYSTEM, "SE2321000206-1002", care_contact=care_contact)
    task["requester"] = {"identifier": {"system": requester[0], "value": requester[1]}}
    return message(task)


def test_specialist_care_is_invited_when_a_health_care_inviter_states_an_active_care_contact() -> None:
    bundle = _invited_by((HSA_ID_SYSTEM, "SE2321000206-1001"), care_contact=True)

    assert routes(EventCode.SIP_INITIATED, bundle) == [("vastmanland-bup", "vastmanland-bup", None)]


@pytest.mark.parametrize(
    "inviter", [(SCHOOL_UNIT_SYSTEM, "19800002"), (ORGANISATION_NUMBER_SYSTEM, "212000-2080")]
)
def test_a_care_contact_claimed_by_a_school_or_social_services_is_not_enough(inviter) -> None:
    [(_, _, refused)] = routes(EventCode.SIP_INITIATED, _invited_by(inviter, care_contact=True))

    assert refused is not None
    assert "stated by the care side" in refused


class _CareContacts:
    def __init__(self, *stated: tuple[str, str]) -> None:
        self.stated = set(stated)

    def active(self, child: str, unit: str) -> bool:
        return (child, unit) in self.stated


def test_specialist_care_that_stated_an_active_care_contact_is_invited_by_anyone() -> None:
    rules = RoutingRules(DIRECTORY, care_contacts=_CareContacts(("child-a", "vastmanland-bup")))
    bundle = _invited_by((SCHOOL_UNIT_SYSTEM, "19800002"), care_contact=False)

    for child, refused in (("child-a", False), ("child-b", True)):
        [route] = rules.route(EventCode.SIP_INITIATED, bundle, tasks(bundle), child=child).routes
        assert (route.refused is not None) is refused


# A newly arrived child's health examination (lag 2008:344)


@pytest.mark.parametrize(
    ("district", "school", "unit"),
    [
        (None, "19800001", "vastmanland-vc-vasteras"),  # not registered anywhere: near the school
        ("1983", "19800001", "vastmanland-vc-kopings"),  # where the child lives, when the message says so
    ],
)
def test_a_newly_arrived_childs_referral_goes_to_primary_care_where_it_lives_else_near_the_school(
    district, school, unit
) -> None:
    referral = address(1, "primary_care")
    referral["requester"] = {"identifier": {"system": SCHOOL_UNIT_SYSTEM, "value": school}}

    assert routes(EventCode.NEWLY_ARRIVED_HEALTH_REFERRAL, message(referral, district=district)) == [
        (unit, unit, None)
    ]


# Consultation (Västerbotten): only the child's current care contacts


def test_a_consultation_reaches_only_units_that_stated_an_active_care_contact_with_the_child() -> None:
    rules = RoutingRules(
        DIRECTORY,
        care_contacts=_CareContacts(("child-a", "vastmanland-vc-vasteras"), ("child-b", "vastmanland-bup")),
    )
    bundle = message(
        _task(1, HSA_ID_SYSTEM, "SE2321000206-1006"),  # vårdcentral: a care contact of child-a
        _task(2, HSA_ID_SYSTEM, "SE2321000206-1002"),  # BUP: of child-b only
        _task(3, HSA_ID_SYSTEM, "SE2321000206-1003", care_contact=True),  # a claim in a request: not enough
    )

    routing = rules.route(EventCode.CONSULTATION_REQUESTED, bundle, tasks(bundle), child="child-a")

    assert [(r.recipient.id, r.rule, r.refused is None) for r in routing.routes] == [
        ("vastmanland-vc-vasteras", "consultation-with-care-contact", True),
        ("vastmanland-bup", "consultation-needs-care-contact", False),
        ("vastmanland-folktandvarden", "consultation-needs-care-contact", False),
    ]
    assert "stated no active care contact" in str(routing.routes[1].refused)


def test_a_consultation_for_a_child_sambus_cannot_name_reaches_nobody() -> None:
    rules = RoutingRules(DIRECTORY, care_contacts=_CareContacts(("child-a", "vastmanland-vc-vasteras")))
    bundle = message(_task(1, HSA_ID_SYSTEM, "SE2321000206-1006"))

    [route] = rules.route(EventCode.CONSULTATION_REQUESTED, bundle, tasks(bundle)).routes

    assert route.refused is not None


# Lag (2017:209): health care and dental care of the region


def test_a_health_exam_request_goes_to_health_care_and_dental_care_of_the_childs_region() -> None:
    bundle = message(address(1, "health_care"), address(2, "dental"), district="1983")

    assert [r[0] for r in routes(EventCode.HEALTH_EXAM_REQUESTED, bundle)] == [
        "vastmanland-vc-kopings",
        "vastmanland-folktandvarden",
    ]


def test_a_health_exam_request_takes_the_unit_that_examines_placed_children_nearest_the_child() -> None:
    bundle = message(address(1, "health_care"), address(2, "dental"), district="1980")

    assert routes(EventCode.HEALTH_EXAM_REQUESTED, bundle)[0][0] == "vastmanland-vc-vasteras"


def test_a_health_exam_request_without_dental_care_is_a_routing_error() -> None:
    bundle = message(address(1, "health_care"), district="1980")

    with pytest.raises(RoutingError, match="health care and dental care"):
        RULES.route(EventCode.HEALTH_EXAM_REQUESTED, bundle, tasks(bundle))


def test_a_health_exam_request_to_another_region_is_a_routing_error() -> None:
    raw = DIRECTORY.model_dump(mode="json")
    raw["recipients"].append(
        {
            "id": "uppsala-ftv",
            "name": "Folktandvården Uppsala",
            "kind": "dental",
            "municipality": "0380",
            "identifiers": [{"system": HSA_ID_SYSTEM, "value": "SE2321000032-1"}],
        }
    )
    rules = RoutingRules(RoutingDirectory.model_validate(raw))
    bundle = message(address(1, "health_care"), _task(2, HSA_ID_SYSTEM, "SE2321000032-1"), district="1980")

    with pytest.raises(RoutingError, match="of the child's region"):
        rules.route(EventCode.HEALTH_EXAM_REQUESTED, bundle, tasks(bundle))


# Report of concern


def test_a_report_of_concern_goes_to_social_services_where_the_child_lives() -> None:
    # The school addressed its home municipality's social services, but the child lives in Köping.
    bundle = message(_task(1, ORGANISATION_NUMBER_SYSTEM, "212000-2080"), district="1983")

    assert routes(EventCode.CONCERN_REPORTED, bundle) == [
        ("koping-socialtjanst", "koping-socialtjanst", None)
    ]


def test_a_report_of_concern_without_the_childs_municipality_is_a_routing_error() -> None:
    bundle = message(address(1, "social_services"), district=None)

    with pytest.raises(RoutingError, match="names no residenceMunicipality") as caught:
        RULES.route(EventCode.CONCERN_REPORTED, bundle, tasks(bundle))

    assert "Patient.address" not in str(caught.value), "no inbound event has that field: name the event's"


def test_a_routing_address_without_a_municipality_asks_for_the_unit_not_a_fhir_field() -> None:
    with pytest.raises(RoutingError, match="name the unit itself") as caught:
        RULES.resolve(ROUTING_ADDRESS_SYSTEM, "social_services")

    assert "Patient.address" not in str(caught.value)


# Directory validation


def test_the_example_directory_is_valid_and_names_its_county_parts() -> None:
    assert DIRECTORY.by_id("vastmanland-habilitering").county == "19"
    assert DIRECTORY.by_id("vasteras-socialtjanst").county == "19"
    assert DIRECTORY.county_part_of("1983") == "vastra-vastmanland"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"county_part": "nowhere"}, "unknown county part 'nowhere'"),
        ({"county": "03"}, "municipality 1980 is not in county 03"),
        ({"capabilities": ["teleport"]}, "capabilities"),
        ({"delivery_topic": "vastmanland-bup"}, "share a delivery topic"),
    ],
)
def test_an_invalid_directory_is_refused_with_the_reason(tmp_path, change, problem) -> None:
    raw = DIRECTORY.model_dump(mode="json", exclude_none=True)
    raw["recipients"][0].update(change)
    path = tmp_path / "directory.yaml"
    path.write_text(json.dumps(raw), encoding="utf-8")

    with pytest.raises(ConfigError, match=problem):
        RoutingDirectory.load(path)


# The delivery stage with these rules


class _PermitAll:
    def decide(self, request: DecisionRequest) -> Decision:
        return Decision(Outcome.PERMIT, f"test permits {request.recipient_id}", "test", "test-permit", 1)


class _Ledger:
    def __init__(self) -> None:
        self.records: list[LedgerRecord] = []

    def append(self, records) -> int:
        self.records.extend(records)
        return len(records)


def _record(bundle: dict[str, Any], event: EventCode) -> ConsumerRecord:
    value = json.dumps(bundle).encode()
    return ConsumerRecord(
        topic="t.sambus.intents",
        partition=0,
        offset=3,
        timestamp=0,
        timestamp_type=0,
        key=b"child-pseudonym",
        value=value,
        checksum=None,
        serialized_key_size=15,
        serialized_value_size=len(value),
        headers=((Header.EVENT_CODE, str(event).encode()), (Header.MESSAGE_ID, b"m-1")),
    )


@pytest.fixture
def ledger() -> _Ledger:
    return _Ledger()


@pytest.fixture
def delivery(ledger: _Ledger) -> Delivery:
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    return Delivery(
        topics=Topics("t."), directory=DIRECTORY, policy=_PermitAll(), clock=lambda: now, ledger=ledger
    )


@pytest.mark.asyncio
async def test_a_relayed_sip_invitation_is_delivered_to_the_relay_and_says_for_whom(delivery) -> None:
    [out] = await delivery(
        _record(message(_task(1, SCHOOL_UNIT_SYSTEM, "19800001")), EventCode.SIP_INITIATED)
    )

    headers = dict(out.headers)
    assert out.topic == "t.deliver.vasteras-socialtjanst"
    assert headers[RELAYED_FOR_HEADER] == b"vasteras-skola-norra"
    assert headers[Header.RECIPIENT] == b"vasteras-skola-norra"


@pytest.mark.asyncio
async def test_a_routing_address_is_replaced_by_the_organisations_own_identifier(delivery) -> None:
    bundle = message(address(1, "health_care"), address(2, "dental"), district="1983")

    out = await delivery(_record(bundle, EventCode.HEALTH_EXAM_REQUESTED))

    owners = [
        e["resource"]["owner"]["identifier"]
        for record in out
        for e in json.loads(record.value)["entry"]
        if e["resource"]["resourceType"] == "Task"
    ]
    assert owners == [
        {"system": HSA_ID_SYSTEM, "value": "SE2321000206-1005"},
        {"system": HSA_ID_SYSTEM, "value": "SE2321000206-1003"},
    ]


@pytest.mark.asyncio
async def test_a_refused_specialist_invitation_is_not_delivered_and_the_denial_is_in_the_ledger(
    delivery, ledger
) -> None:
    out = await delivery(
        _record(message(_task(1, HSA_ID_SYSTEM, "SE2321000206-1002")), EventCode.SIP_INITIATED)
    )
    assert ledger.records == [], "decisions reach the ledger with the batch's transaction, not before"
    delivery.before_commit()

    assert [o.topic for o in out if "deliver" in o.topic] == []
    [record] = ledger.records
    assert (record.recipient_id, record.outcome, record.rule_id) == (
        "vastmanland-bup",
        "deny",
        "specialist-needs-care-contact",
    )


@pytest.mark.asyncio
async def test_an_aborted_batch_leaves_nothing_in_the_ledger(delivery, ledger) -> None:
    await delivery(_record(message(_task(1, HSA_ID_SYSTEM, "SE2321000206-1001")), EventCode.SIP_INITIATED))
    delivery.after_abort()
    delivery.before_commit()

    assert ledger.records == []


@pytest.mark.asyncio
async def test_a_message_breaking_a_message_wide_rule_is_dead_lettered(delivery) -> None:
    [dead] = await delivery(_record(message(address(1, "health_care")), EventCode.HEALTH_EXAM_REQUESTED))

    assert dead.topic == "t.sambus.dlq"
    assert dict(dead.headers)[Header.DLQ_ERROR] == b"unknown_recipient"


# Answers go back to the party that asked, as the process state recorded it


class _Asked:
    """The process state as a fake: process id -> [(task id, owner id, requester id)]."""

    def __init__(self, **processes: list[tuple[str, str, str]]) -> None:
        self.processes = processes

    def askers(self, process_id: str, *, answerer: str, task_id: str | None) -> frozenset[str] | None:
        known = self.processes.get(process_id)
        if known is None:
            return None
        rows = [row for row in known if task_id is None or row[0] == task_id]
        if task_id is not None and not rows:
            return None
        return frozenset(requester for _, owner, requester in rows if owner == answerer)


ASKED = _Asked(
    sip=[("t-bu", "vastmanland-bu-halsan", "vasteras-skola-sodra")],
    exam=[("t-vc", "vastmanland-vc-vasteras", "vasteras-socialtjanst")],
    relayed=[("t-bu", "vastmanland-bu-halsan", "vasteras-skola-norra")],
    twice=[
        ("t-1", "vastmanland-bu-halsan", "vasteras-socialtjanst"),
        ("t-2", "vastmanland-bu-halsan", "vasteras-skola-sodra"),
    ],
)
ANSWERS = RoutingRules(DIRECTORY, asked=ASKED)


def _answer(
    status: str,
    *,
    process: str = "sip",
    answerer: tuple[str, str] = (HSA_ID_SYSTEM, "SE2321000206-1001"),
    asker: tuple[str, str] | None = (SCHOOL_UNIT_SYSTEM, "19800002"),
    answered: str | None = None,
) -> dict[str, Any]:
    task = _task(1, *answerer)
    task["status"] = status
    task["groupIdentifier"] = {"value": process}
    if asker is not None:
        task["requester"] = {"identifier": {"system": asker[0], "value": asker[1]}}
    if answered is not None:
        task["output"] = [{"valueReference": {"type": "Task", "identifier": {"value": answered}}}]
    return message(task)


def answer_routes(event: EventCode, bundle: dict[str, Any]) -> list[tuple[str, str]]:
    routing = ANSWERS.route(event, bundle, tasks(bundle))
    assert routing.unroutable == []
    return [(r.recipient.id, r.via.id) for r in routing.routes]


def answer_refused(event: EventCode, bundle: dict[str, Any]) -> str:
    [error] = ANSWERS.route(event, bundle, tasks(bundle)).unroutable
    return str(error)


@pytest.mark.parametrize(
    "event",
    [EventCode.TASK_STATUS_CHANGED, EventCode.SIP_INVITATION_ANSWERED, EventCode.HEALTH_EXAM_COMPLETED],
)
def test_an_answer_goes_back_to_the_party_that_asked(event) -> None:
    assert answer_routes(event, _answer("accepted")) == [("vasteras-skola-sodra", "vasteras-skola-sodra")]


def test_an_answer_goes_to_the_asker_from_the_process_state_even_without_naming_it() -> None:
    bundle = _answer("completed", process="exam", answerer=(HSA_ID_SYSTEM, "SE2321000206-1006"), asker=None)

    assert answer_routes(EventCode.LVU32_EXAM_COMPLETED, bundle) == [
        ("vasteras-socialtjanst", "vasteras-socialtjanst")
    ]


def test_an_answer_never_goes_back_to_the_answering_unit() -> None:
    # The answer names the answering unit itself as the asker (what the adapters used to do).
    bundle = _answer("completed", process="exam", answerer=(HSA_ID_SYSTEM, "SE2321000206-1006"))
    bundle["entry"][1]["resource"]["requester"] = {
        "identifier": {"system": HSA_ID_SYSTEM, "value": "SE2321000206-1006"}
    }

    error = answer_refused(EventCode.HEALTH_EXAM_COMPLETED, bundle)

    assert "names vastmanland-vc-vasteras as the party that asked" in error
    assert "vasteras-socialtjanst asked" in error


def test_an_answer_from_a_unit_asked_nothing_in_the_process_is_refused() -> None:
    bundle = _answer("completed", process="exam", answerer=(HSA_ID_SYSTEM, "SE2321000206-1003"))

    assert "asked nothing in process exam" in answer_refused(EventCode.HEALTH_EXAM_COMPLETED, bundle)


def test_an_answer_to_a_unit_asked_by_several_must_name_the_task_it_answers() -> None:
    assert "by several" in answer_refused(EventCode.TASK_STATUS_CHANGED, _answer("accepted", process="twice"))
    assert answer_routes(
        EventCode.TASK_STATUS_CHANGED, _answer("accepted", process="twice", answered="t-2")
    ) == [("vasteras-skola-sodra", "vasteras-skola-sodra")]


@pytest.mark.parametrize(("process", "answered"), [("unknown", None), ("sip", "t-not-yet-seen")])
def test_an_answer_to_a_process_or_task_not_known_yet_is_retried(process, answered) -> None:
    bundle = _answer("accepted", process=process, answered=answered)

    with pytest.raises(ProcessNotKnownError) as raised:
        ANSWERS.route(EventCode.TASK_STATUS_CHANGED, bundle, tasks(bundle))

    assert raised.value.retriable


def test_an_answer_without_its_process_is_unroutable() -> None:
    bundle = _answer("accepted")
    del bundle["entry"][1]["resource"]["groupIdentifier"]

    assert "Task.groupIdentifier" in answer_refused(EventCode.TASK_STATUS_CHANGED, bundle)


def test_without_process_state_no_answer_is_routed() -> None:
    bundle = _answer("accepted")

    with pytest.raises(ProcessNotKnownError):
        RULES.route(EventCode.TASK_STATUS_CHANGED, bundle, tasks(bundle))


@pytest.mark.asyncio
async def test_an_answer_reaches_the_asker_addressed_to_it_with_the_answering_owner_kept(ledger) -> None:
    delivery = Delivery(
        topics=Topics("t."),
        directory=DIRECTORY,
        policy=_PermitAll(),
        ledger=ledger,
        asked=ASKED,
    )

    [out] = await delivery(_record(_answer("rejected"), EventCode.TASK_STATUS_CHANGED))

    assert out.topic == "t.deliver.vasteras-skola-sodra"
    message = json.loads(out.value)
    [task] = [e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "Task"]
    assert task["status"] == "rejected"
    assert task["owner"]["identifier"]["value"] == "SE2321000206-1001"
    receiver = message["entry"][0]["resource"]["destination"][0]["receiver"]["identifier"]
    assert (receiver["system"], receiver["value"]) == (SCHOOL_UNIT_SYSTEM, "19800002")


@pytest.mark.asyncio
async def test_an_answer_whose_request_is_not_known_yet_is_retried_not_dead_lettered(delivery) -> None:
    with pytest.raises(ProcessNotKnownError):
        await delivery(_record(_answer("accepted"), EventCode.TASK_STATUS_CHANGED))


def test_a_sip_answer_to_a_school_without_cosmic_link_goes_through_its_relay() -> None:
    bundle = _answer("accepted", process="relayed", asker=(SCHOOL_UNIT_SYSTEM, "19800001"))

    assert answer_routes(EventCode.SIP_INVITATION_ANSWERED, bundle) == [
        ("vasteras-skola-norra", "vasteras-socialtjanst")
    ]


# A school without Cosmic Link convenes its SIP through its relay


def _school_sip(school: str, *invitees: dict[str, Any]) -> dict[str, Any]:
    for invitee in invitees:
        invitee["requester"] = {"identifier": {"system": SCHOOL_UNIT_SYSTEM, "value": school}}
    return message(*invitees)


def test_a_school_without_cosmic_link_asks_its_relay_to_convene_instead_of_inviting() -> None:
    bundle = _school_sip(
        "19800001",
        _task(1, ORGANISATION_NUMBER_SYSTEM, "212000-2080"),
        _task(2, HSA_ID_SYSTEM, "SE2321000206-1001"),
        _task(3, HSA_ID_SYSTEM, "SE2321000206-1002"),  # BUP, no care contact
    )

    routing = RULES.route(EventCode.SIP_INITIATED, bundle, tasks(bundle))

    assert routing.unroutable == []
    [bup, relay] = routing.routes
    assert (bup.recipient.id, bup.refused is not None) == ("vastmanland-bup", True)
    assert (relay.recipient.id, relay.rule) == (
        "vasteras-socialtjanst",
        "school-without-cosmic-link-convenes-through-relay",
    )
    assert [r.id for r in relay.convene] == ["vasteras-socialtjanst", "vastmanland-bu-halsan"]


def test_a_school_with_cosmic_link_invites_directly() -> None:
    bundle = _school_sip(
        "19800002",
        _task(1, ORGANISATION_NUMBER_SYSTEM, "212000-2080"),
        _task(2, HSA_ID_SYSTEM, "SE2321000206-1001"),
    )

    assert routes(EventCode.SIP_INITIATED, bundle) == [
        ("vasteras-socialtjanst", "vasteras-socialtjanst", None),
        ("vastmanland-bu-halsan", "vastmanland-bu-halsan", None),
    ]


@pytest.mark.asyncio
async def test_the_relay_gets_one_convene_task_naming_the_invitees_and_the_school(delivery) -> None:
    bundle = _school_sip(
        "19800001",
        _task(1, ORGANISATION_NUMBER_SYSTEM, "212000-2080"),
        _task(2, HSA_ID_SYSTEM, "SE2321000206-1001"),
    )
    bundle["entry"][1]["resource"]["groupIdentifier"] = {"value": "m-1"}

    [out] = await delivery(_record(bundle, EventCode.SIP_INITIATED))

    assert out.topic == "t.deliver.vasteras-socialtjanst"
    message = json.loads(out.value)
    [task] = [e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "Task"]
    assert task["code"]["coding"][0]["code"] == "sip-convene"
    assert task["owner"]["identifier"]["value"] == "212000-2080"
    assert task["requester"]["identifier"]["value"] == "19800001"
    assert [
        (i["type"]["coding"][0]["code"], i["valueReference"]["identifier"]["value"]) for i in task["input"]
    ] == [
        ("sip-invitee", "212000-2080"),
        ("sip-invitee", "SE2321000206-1001"),
        ("sip-participant", "19800001"),
    ]
    assert message["entry"][0]["resource"]["focus"] == [{"reference": f"urn:uuid:{task['id']}"}]
    assert "SE2321000206-1001" not in json.dumps(
        [e for e in message["entry"] if e["resource"]["resourceType"] != "Task"]
    )


def _translated(example: str, **data: Any) -> tuple[dict[str, Any], EventCode]:
    event = json.loads((EXAMPLES_DIR / f"se.sambus.{example}.v1.json").read_text(encoding="utf-8"))
    event["data"] |= data
    [intent] = translate_message(json.dumps(event).encode())
    return intent.bundle, intent.event


def _delivered(records: list[Any]) -> list[dict[str, Any]]:
    delivered = [json.loads(record.value) for record in records if record.topic.startswith("t.deliver.")]
    assert delivered
    return delivered


@pytest.mark.asyncio
async def test_a_requester_named_by_routing_address_reaches_recipients_as_its_organisation(delivery) -> None:
    bundle, event = _translated("social.placement-started", child={"civicNo": "20120315-0006"})
    [requester] = {json.dumps(t["resource"]["requester"]) for t in bundle["entry"][1:4]}
    assert ROUTING_ADDRESS_SYSTEM in requester  # social_services@1980: the event names no organisation

    for message in _delivered(await delivery(_record(bundle, event))):
        task = message["entry"][1]["resource"]
        orgnr = {"system": ORGANISATION_NUMBER_SYSTEM, "value": "212000-2080"}
        assert task["requester"] == {"type": "Organization", "identifier": orgnr}
        assert message["entry"][0]["resource"]["sender"] == task["requester"]
        assert ROUTING_ADDRESS_SYSTEM not in json.dumps(message)


@pytest.mark.asyncio
async def test_an_owner_named_by_routing_address_gets_its_own_task_id_and_request(delivery) -> None:
    bundle, event = _translated("school.newly-arrived-referral")
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["address"] = [{"district": "1980"}]  # where the child lives: the nearest primary care unit

    [message] = _delivered(await delivery(_record(bundle, event)))
    task = message["entry"][1]["resource"]
    request = next(
        e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
    )
    unit = {"system": HSA_ID_SYSTEM, "value": "SE2321000206-1006"}

    assert task["owner"]["identifier"] == unit
    assert request["performer"] == [{"type": "Organization", "identifier": unit}]
    assert task["id"] == task_id_for(task["groupIdentifier"]["value"], unit)
    assert task["identifier"] == [{"system": TASK_ID_SYSTEM, "value": task["id"]}]
    assert message["entry"][0]["resource"]["focus"] == [{"reference": f"urn:uuid:{task['id']}"}]
    assert ROUTING_ADDRESS_SYSTEM not in json.dumps(message)


def _updated_task_answer(process: str, task_id: str, *, asker: tuple[str, str] | None) -> dict[str, Any]:
    """An answer as the adapters make it: the unit's own Task, updated, its identifier naming the Task."""
    bundle = _answer("accepted", process=process, asker=asker)
    bundle["entry"][1]["resource"]["identifier"] = [{"system": TASK_ID_SYSTEM, "value": task_id}]
    return bundle


def test_an_answer_that_is_the_updated_task_goes_to_that_tasks_requester() -> None:
    assert answer_routes(EventCode.TASK_STATUS_CHANGED, _updated_task_answer("twice", "t-2", asker=None)) == [
        ("vasteras-skola-sodra", "vasteras-skola-sodra")
    ]
    assert answer_routes(EventCode.TASK_STATUS_CHANGED, _updated_task_answer("twice", "t-1", asker=None)) == [
        ("vasteras-socialtjanst", "vasteras-socialtjanst")
    ]


def test_an_updated_task_the_process_state_knows_under_another_id_goes_to_whoever_asked_the_unit() -> None:
    # e.g. the unit's Task id made from its own identifier, where it got a relay's convene Task
    bundle = _updated_task_answer("sip", "t-made-by-the-unit", asker=None)

    assert answer_routes(EventCode.SIP_INVITATION_ANSWERED, bundle) == [
        ("vasteras-skola-sodra", "vasteras-skola-sodra")
    ]
    assert "by several" in answer_refused(
        EventCode.TASK_STATUS_CHANGED, _updated_task_answer("twice", "t-made-by-the-unit", asker=None)
    )
    with pytest.raises(ProcessNotKnownError):
        ANSWERS.route(
            EventCode.TASK_STATUS_CHANGED,
            bundle := _updated_task_answer("unknown", "t-1", asker=None),
            tasks(bundle),
        )


# The care provider (vårdgivare) of a unit told to block the guardians' record access


def _block(*units: str) -> dict[str, Any]:
    owners = [_task(n, HSA_ID_SYSTEM, unit) for n, unit in enumerate(units, start=1)]
    for task in owners:
        task["groupIdentifier"] = {"value": "process-1"}
        task["focus"] = {"reference": "urn:uuid:flag"}
    return message(*owners)


@pytest.mark.parametrize("event", [EventCode.HIDDEN_RESIDENCE_DECIDED, EventCode.HIDDEN_RESIDENCE_LIFTED])
def test_a_block_reaches_the_care_provider_of_the_units_once(event: EventCode) -> None:
    bundle = _block("SE2321000206-1001", "SE2321000206-1003")  # BU-hälsan and Folktandvården

    routing = RULES.route(event, bundle, tasks(bundle))

    assert [(r.recipient.id, r.via.id, r.refused) for r in routing.routes] == [
        ("vastmanland-bu-halsan", "vastmanland-bu-halsan", None),
        ("vastmanland-folktandvarden", "vastmanland-folktandvarden", None),
        ("region-vastmanland", "region-vastmanland", None),
    ]
    provider = routing.routes[-1].task.resource
    owner = {"system": HSA_ID_SYSTEM, "value": "SE2321000206-E00000000001"}
    assert provider["owner"]["identifier"] == owner
    assert provider["id"] == task_id_for("process-1", owner)
    assert provider["identifier"] == [{"system": TASK_ID_SYSTEM, "value": provider["id"]}]
    assert provider["focus"] == {"reference": "urn:uuid:flag"}
    assert bundle["entry"][1]["resource"]["owner"]["identifier"]["value"] == "SE2321000206-1001", (
        "the intent itself is not changed"
    )


def test_a_care_provider_named_itself_gets_one_task() -> None:
    bundle = _block("SE2321000206-1001", "SE2321000206-E00000000001")

    assert [r for r, _, _ in routes(EventCode.HIDDEN_RESIDENCE_DECIDED, bundle)] == [
        "vastmanland-bu-halsan",
        "region-vastmanland",
    ]


def test_other_messages_to_care_units_do_not_reach_the_care_provider() -> None:
    bundle = _block("SE2321000206-1001")

    assert [r for r, _, _ in routes(EventCode.PLACEMENT_STARTED, bundle)] == ["vastmanland-bu-halsan"]
