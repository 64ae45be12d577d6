"""Protected identity on the real broker: the contract's own example, from the agencies' own events.

The child in ``contracts/examples/se.sambus.social.placement-started.v1.json`` has skyddad folkbokföring.
Social services record custody and the guardians' consent, then send that example unchanged: the school,
BU-hälsan and dental care all get the placement, and none of them gets the address, the municipality or
the new school unit, because nobody at social services released them. A release of one message for one
recipient by a named person at social services lets that recipient have it, and the ledger says who.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sambus.consent.compliance import Compliance, LedgerQuery
from sambus.contracts.fhir.codes import (
    CONFIDENTIALITY_SYSTEM,
    DATA_CATEGORY_SYSTEM,
    RESIDENCE_TAG,
    SWEDISH_SECURITY_SYSTEM,
)
from sambus.contracts.topics import Header, Topics
from sambus.router.routing.directory import PACKAGED_DIRECTORY
from sambus.router.settings import Settings
from tests.integration.conftest import Running

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "contracts/examples/se.sambus.social.placement-started.v1.json"
)
CHILD = "20101224-5674"
SCHOOL_ORGNR = "212000-1959"
CASE_KEY = b"case-protected-1"
RECIPIENTS = ("vasteras-skola-sodra", "vastmanland-bu-halsan", "vastmanland-folktandvarden")
GUARDIANS = ["19800412-1235", "19820907-2340"]


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The example directory, with Södra skolan also reachable by the example's organisation number."""
    directory = yaml.safe_load(PACKAGED_DIRECTORY.read_text(encoding="utf-8"))
    for recipient in directory["recipients"]:
        if recipient["id"] == "vasteras-skola-sodra":
            recipient["identifiers"].append({"system": "urn:oid:2.5.4.97", "value": SCHOOL_ORGNR})
    path = tmp_path / "directory.yaml"
    path.write_text(yaml.safe_dump(directory, allow_unicode=True), encoding="utf-8")
    return settings.model_copy(update={"directory": path})


def _event(kind: str, event_id: str, data: dict[str, Any], *, protection: str = "none") -> bytes:
    return json.dumps(
        {
            "type": f"se.sambus.social.{kind}.v1",
            "id": event_id,
            "source": "socialtjanst-vasteras",
            "time": "2026-11-20T08:00:00+01:00",
            "data": {"child": {"civicNo": CHILD, "protection": protection}, **data},
        }
    ).encode("utf-8")


async def _custody_and_consent(running: Running) -> None:
    """Custody and the guardians' consent, as social services' own events (they carry no protection)."""
    social = running.topics.agency_events("social")
    await running.send(
        social,
        _event(
            "custody-updated",
            "custody-1",
            {"guardians": GUARDIANS, "custody": "joint", "at": "2026-11-01T09:00:00+01:00"},
        ),
        key=CASE_KEY,
    )
    await running.send(
        social,
        _event(
            "consent-recorded",
            "consent-1",
            {
                "consentId": "samtycke-1",
                "purpose": "information_sharing",
                "agencyKinds": ["school", "bu_halsan", "dental"],
                "givenBy": "guardian",
                "guardians": GUARDIANS,
                "validFrom": "2026-11-01T09:00:00+01:00",
            },
        ),
        key=CASE_KEY,
    )


def _resources(value: bytes) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in json.loads(value)["entry"]]


def reveals_residence(value: bytes) -> bool:
    """Whether a delivered Bundle names where the child lives or goes to school."""
    resources = _resources(value)
    tagged = any(
        tag.get("system") == DATA_CATEGORY_SYSTEM and tag.get("code") == RESIDENCE_TAG
        for resource in resources
        for tag in resource.get("meta", {}).get("tag", ())
    )
    addressed = any(r["resourceType"] == "Patient" and r.get("address") for r in resources)
    text = value.decode("utf-8")
    return tagged or addressed or any(s in text for s in ("Storgatan", "722 11", "19800002", '"1980"'))


def dangling_references(value: bytes) -> set[str]:
    """``urn:uuid:`` references in a delivered Bundle to no entry of it (what redaction left behind)."""
    bundle = json.loads(value)
    present = {entry.get("fullUrl") for entry in bundle["entry"]}
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            reference = node.get("reference")
            if isinstance(reference, str) and reference.startswith("urn:uuid:") and reference not in present:
                found.add(reference)
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(bundle)
    return found


def _labels(value: bytes) -> set[tuple[str, str]]:
    security = json.loads(value).get("meta", {}).get("security", ())
    return {(label["system"], label["code"]) for label in security}


async def _read_one_each(running: Running) -> dict[str, bytes]:
    topics: Topics = running.topics
    found: dict[str, bytes] = {}
    for recipient in RECIPIENTS:
        records = await running.read(topics.deliver(recipient), count=1)
        assert len(records) == 1, f"{recipient} got {len(records)} placement notices"
        assert dict(records[0].headers)[Header.EVENT_CODE] == b"placement-started"
        found[recipient] = records[0].value
    return found


async def test_the_contract_example_delivers_no_address_to_anyone(running: Running) -> None:
    await _custody_and_consent(running)
    await running.send(running.topics.agency_events("social"), EXAMPLE.read_bytes(), key=CASE_KEY)

    delivered = await _read_one_each(running)

    for recipient, value in delivered.items():
        assert not reveals_residence(value), f"{recipient} learned where the protected child lives"
        assert {(CONFIDENTIALITY_SYSTEM, "V"), (SWEDISH_SECURITY_SYSTEM, "skyddadFolkbokforing")} <= _labels(
            value
        ), f"{recipient}'s Bundle lacks the confidentiality label"
        assert any(r["resourceType"] == "Task" for r in _resources(value)), "the placement itself arrives"
        assert not dangling_references(value), f"{recipient}'s Bundle refers to what redaction removed"
    entries = Compliance(running.app.ledger.engine).select(LedgerQuery())
    placement = [e for e in entries if e.event == "placement-started"]
    assert {e.recipient_id for e in placement} == set(RECIPIENTS)
    assert {e.outcome for e in placement} == {"permit_redacted"}
    assert all("skyddad folkbokföring" in e.reason for e in placement)


async def test_the_protection_is_remembered_for_messages_that_do_not_carry_it(running: Running) -> None:
    """A later message without the label (a system that forgot it) still reaches nobody with the address."""
    await _custody_and_consent(running)
    social = running.topics.agency_events("social")
    await running.send(social, EXAMPLE.read_bytes(), key=CASE_KEY)
    await _read_one_each(running)
    changed = json.loads(EXAMPLE.read_bytes())
    changed.update({"type": "se.sambus.social.placement-changed.v1", "id": "placement-changed-unlabelled"})
    changed["data"]["child"] = {"civicNo": CHILD}
    del changed["data"]["acute"]
    await running.send(social, json.dumps(changed).encode("utf-8"), key=CASE_KEY)

    for recipient in RECIPIENTS:
        records = await running.read(running.topics.deliver(recipient), count=2)
        [later] = [r for r in records if dict(r.headers)[Header.EVENT_CODE] == b"placement-changed"]
        assert not reveals_residence(later.value), f"{recipient} learned the residence from the later message"
        assert (SWEDISH_SECURITY_SYSTEM, "skyddadFolkbokforing") in _labels(later.value)


async def test_a_named_release_lets_one_recipient_have_the_address(running: Running) -> None:
    await _custody_and_consent(running)
    social = running.topics.agency_events("social")
    await running.send(
        social,
        _event(
            "residence-released",
            "release-1",
            {
                "organisationNumber": "212000-2080",
                "releaseId": "frisl-2026-12",
                "releasedBy": "handlaggare-4711",
                "eventId": "placement-started-0001",
                "recipients": [{"hsaId": "SE2321000206-1001"}],
            },
            protection="skyddadFolkbokforing",
        ),
        key=CASE_KEY,
    )
    await running.send(social, EXAMPLE.read_bytes(), key=CASE_KEY)

    delivered = await _read_one_each(running)

    assert reveals_residence(delivered["vastmanland-bu-halsan"]), "the released recipient gets the address"
    assert not reveals_residence(delivered["vasteras-skola-sodra"])
    assert not reveals_residence(delivered["vastmanland-folktandvarden"])
    [released] = Compliance(running.app.ledger.engine).select(
        LedgerQuery(recipient_id="vastmanland-bu-halsan")
    )
    assert released.outcome == "permit"
    assert "frisl-2026-12" in released.reason
    assert "handlaggare-4711" in released.reason
