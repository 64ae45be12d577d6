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
from tests.present import moment

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "contracts/examples/se.sambus.social.placement-started.v1.json"
)
CHILD = json.loads(EXAMPLE.read_text(encoding="utf-8"))["data"]["child"]["civicNo"]
"""The contract example's child (20101224-5674): the tests send the example, and consent and custody are
recorded for this child. A different child here would leave the example's child without consent, and every
recipient, the school first, without its notice."""
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


def _event(
    kind: str, event_id: str, data: dict[str, Any], *, protection: str = "none", civic_no: str = CHILD
) -> bytes:
    return json.dumps(
        {
            "type": f"se.sambus.social.{kind}.v1",
            "id": event_id,
            "source": "socialtjanst-vasteras",
            "time": moment(hours=-1),
            "data": {"child": {"civicNo": civic_no, "protection": protection}, **data},
        }
    ).encode("utf-8")


async def _custody_and_consent(running: Running, civic_no: str = CHILD, key: bytes = CASE_KEY) -> None:
    """Custody and the guardians' consent, as social services' own events (they carry no protection)."""
    social = running.topics.agency_events("social")
    suffix = "" if civic_no == CHILD else f"-{civic_no}"
    await running.send(
        social,
        _event(
            "custody-updated",
            f"custody-1{suffix}",
            {"guardians": GUARDIANS, "custody": "joint", "at": moment(days=-19)},
            civic_no=civic_no,
        ),
        key=key,
    )
    await running.send(
        social,
        _event(
            "consent-recorded",
            f"consent-1{suffix}",
            {
                "consentId": "samtycke-1",
                "purpose": "information_sharing",
                "agencyKinds": ["school", "bu_halsan", "dental"],
                "givenBy": "guardian",
                "guardians": GUARDIANS,
                "validFrom": moment(days=-19),
            },
            civic_no=civic_no,
        ),
        key=key,
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


def _unlabelled_change(civic_no: str, event_id: str) -> bytes:
    """The example's placement as a later change, from a system that sends no protection label."""
    changed = json.loads(EXAMPLE.read_bytes())
    changed.update({"type": "se.sambus.social.placement-changed.v1", "id": event_id})
    changed["data"]["child"] = {"civicNo": civic_no}
    del changed["data"]["acute"]
    return json.dumps(changed).encode("utf-8")


def _protection_ended(civic_no: str, event_id: str) -> bytes:
    return json.dumps(
        {
            "type": "se.sambus.social.identity-protection-ended.v1",
            "id": event_id,
            "source": "socialtjanst-vasteras",
            "time": moment(hours=-1),
            "data": {
                "child": {"civicNo": civic_no},
                "organisationNumber": "212000-2080",
                "decisionId": "skv-2026-4411",
                "at": moment(hours=-0.5),
            },
        }
    ).encode("utf-8")


async def test_an_ended_protection_is_recorded_and_later_messages_carry_the_residence(
    running: Running,
) -> None:
    await _custody_and_consent(running)
    social = running.topics.agency_events("social")
    await running.send(social, EXAMPLE.read_bytes(), key=CASE_KEY)
    await _read_one_each(running)

    await running.send(social, _protection_ended(CHILD, "protection-ended-1"), key=CASE_KEY)
    await running.send(social, _unlabelled_change(CHILD, "placement-changed-after-end"), key=CASE_KEY)

    for recipient in RECIPIENTS:
        records = await running.read(running.topics.deliver(recipient), count=2)
        [later] = [r for r in records if dict(r.headers)[Header.EVENT_CODE] == b"placement-changed"]
        assert dict(later.headers)[Header.DECISION] == b"permit", f"{recipient}: still redacted after the end"
        assert reveals_residence(later.value)
        assert (SWEDISH_SECURITY_SYSTEM, "skyddadFolkbokforing") not in _labels(later.value)
    [ended] = [
        e
        for e in Compliance(running.app.ledger.engine).select(LedgerQuery())
        if e.event == "identity-protection-ended"
    ]
    assert "skyddad folkbokföring" in ended.reason, "the ledger names the protection that ended"
    assert "skv-2026-4411" in ended.reason, "and the decision it ended by"


async def test_ending_a_fictitious_identitys_protection_never_touches_the_old_identity(
    running: Running,
) -> None:
    """Fingerade personuppgifter: the new identity's protection ends; the old one stays protected."""
    new_identity = "20120315-0006"
    social = running.topics.agency_events("social")
    await _custody_and_consent(running)
    await _custody_and_consent(running, new_identity, key=b"case-new-identity")
    await running.send(social, EXAMPLE.read_bytes(), key=CASE_KEY)  # the old identity, skyddad folkbokföring
    await _read_one_each(running)
    fictitious = json.loads(EXAMPLE.read_bytes())
    fictitious["id"] = "placement-started-new-identity"
    fictitious["data"]["child"] = {"civicNo": new_identity, "protection": "fingeradePersonuppgifter"}
    await running.send(social, json.dumps(fictitious).encode("utf-8"), key=b"case-new-identity")

    await running.send(
        social, _protection_ended(new_identity, "protection-ended-2"), key=b"case-new-identity"
    )
    await running.send(social, _unlabelled_change(CHILD, "old-identity-changed"), key=CASE_KEY)

    for recipient in RECIPIENTS:
        records = await running.read(running.topics.deliver(recipient), count=3)
        [old] = [r for r in records if dict(r.headers)[Header.EVENT_CODE] == b"placement-changed"]
        assert not reveals_residence(old.value), f"{recipient} learned the old identity's residence"
        assert (SWEDISH_SECURITY_SYSTEM, "skyddadFolkbokforing") in _labels(old.value)
    entries = Compliance(running.app.ledger.engine).select(LedgerQuery())
    [ended] = [e for e in entries if e.event == "identity-protection-ended"]
    assert "fingerade personuppgifter" in ended.reason
    old_pseudonym = running.app.pseudonymizer.of(CHILD)
    assert ended.child != old_pseudonym, "the end is recorded for the new identity only"
    assert CHILD.replace("-", "") not in ended.reason
    assert old_pseudonym not in ended.reason
