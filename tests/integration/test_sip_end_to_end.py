"""A school initiates a SIP: on the real broker, from agency.school.events to deliver.<recipient>."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from sambus.contracts.agencies import AgencyKind
from sambus.contracts.identifiers import PERSONNUMMER_SYSTEM
from sambus.contracts.topics import Header
from tests.integration.conftest import Running, sip_event

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CHILD = "201203150006"
SOCIAL_SERVICES = {"organisationNumber": "212000-2080"}
BU_HALSAN = {"hsaId": "SE2321000206-1001"}
DENTAL = {"hsaId": "SE2321000206-1003"}


def _resources(bundle: Bundle, kind: str) -> list[object]:
    return [e.resource for e in bundle.entry if e.resource.get_resource_type() == kind]


async def test_consented_recipient_receives_its_sip_invitation(running: Running) -> None:
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN)

    await running.send(
        running.topics.agency_events("school"), sip_event("e-1", "20120315-0006", SOCIAL_SERVICES, BU_HALSAN)
    )

    [record] = await running.read(running.topics.deliver("vasteras-socialtjanst"), count=1)
    bundle = Bundle.model_validate(json.loads(record.value))
    assert bundle.type == "message"
    header = bundle.entry[0].resource
    assert header.get_resource_type() == "MessageHeader"
    assert header.eventCoding.code == "sip-initiated"
    assert header.destination[0].endpoint == "urn:sambus:recipient:vasteras-socialtjanst"
    [task] = _resources(bundle, "Task")
    assert task.code.coding[0].code == "sip-participation"
    assert task.status == "requested"
    assert (task.owner.identifier.system, task.owner.identifier.value) == ("urn:oid:2.5.4.97", "212000-2080")
    [patient] = _resources(bundle, "Patient")
    assert task.for_fhir.reference == f"urn:uuid:{patient.id}"
    assert [(i.system, i.value) for i in patient.identifier] == [(PERSONNUMMER_SYSTEM, CHILD)]
    # Social services see their own invitation, not BU-hälsan's.
    assert "SE2321000206-1001" not in record.value.decode()
    # The key is the child's pseudonym: stable, and never the personnummer.
    assert record.key == running.app.pseudonymizer.of(CHILD).encode()
    assert CHILD not in record.key.decode()
    assert CHILD[2:] not in record.key.decode()
    headers = dict(record.headers)
    assert headers[Header.EVENT_CODE] == b"sip-initiated"
    assert headers[Header.DECISION] == b"permit"
    assert all(CHILD[2:] not in value.decode() for value in headers.values())


async def test_recipient_without_consent_is_parked_not_delivered(running: Running) -> None:
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES)

    await running.send(
        running.topics.agency_events("school"), sip_event("e-2", CHILD, SOCIAL_SERVICES, DENTAL)
    )

    watched = (
        running.topics.deliver("vasteras-socialtjanst"),
        running.topics.deliver("vastmanland-folktandvarden"),
        running.topics.parked,
    )
    assert len(await running.read(*watched, count=2)) == 2, "the delivery and the parked copy"
    records = await running.read(*watched, count=3, timeout=15)  # and nothing more (dental care)
    where = sorted(
        (r.topic.removeprefix(running.topics.prefix), dict(r.headers)[Header.DECISION]) for r in records
    )
    assert where == [("deliver.vasteras-socialtjanst", b"permit"), ("sambus.parked", b"await_consent")]
    parked = next(r for r in records if r.topic == running.topics.parked)
    assert dict(parked.headers)[Header.RECIPIENT] == b"vastmanland-folktandvarden"
    assert b"no consent in force" in dict(parked.headers)[Header.DECISION_REASON]


async def test_cloudevents_binary_binding_is_accepted(running: Running) -> None:
    running.consent(CHILD, AgencyKind.BU_HALSAN)
    plain = json.loads(sip_event("e-3", CHILD, BU_HALSAN))
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_type", plain["type"].encode()),
        ("ce_id", b"e-3"),
        ("ce_source", b"skolsystem-test"),
        ("ce_time", plain["time"].encode()),
        ("content-type", b"application/json"),
    ]

    await running.send(running.topics.agency_events("school"), json.dumps(plain["data"]).encode(), headers)

    [record] = await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=1)
    assert (
        Bundle.model_validate(json.loads(record.value)).entry[0].resource.eventCoding.code == "sip-initiated"
    )
