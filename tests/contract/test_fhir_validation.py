"""HAPI FHIR's validator accepts every golden Bundle, against base R4 and sambus's own conformance resources.

The validator (``deploy/fhir-validator/``) runs offline, with no terminology server: base R4, HL7 Sweden's
base profiles and sambus's CodeSystems, ValueSets, NamingSystems, extensions, profiles and MessageDefinitions
(``contracts/schemas/fhir/``). Planted errors show that it can fail.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from sambus.consent.residence import GuardianAccessNotice, guardian_access_message
from sambus.contracts.fhir import SCHOOL_UNIT_SYSTEM, EventCode
from sambus.contracts.fhir.codes import PROCESS_ID_SYSTEM
from sambus.contracts.fhir.conformance import resources
from sambus.contracts.fhir.consent import CONSENT_PROCESS_EXTENSION, MATURITY_EXTENSION
from sambus.contracts.fhir.notices import NOTICE_EVENTS, Addressee, notice
from sambus.contracts.identifiers import (
    LMA_NUMBER_SYSTEM,
    NATIONAL_RESERVE_NUMBER_SYSTEM,
    PERSONNUMMER_SYSTEM,
)
from tests.fhir_validator import Report, errors_of, validate

pytestmark = pytest.mark.slow

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "contracts" / "examples" / "golden"
WALKS_DIR = GOLDEN_DIR.parent / "walks"
_SIP_CLOSED = GOLDEN_DIR / "se.sambus.sip.closed.v1.json"
_CONSENT = GOLDEN_DIR / "se.sambus.social.consent-recorded.v1.json"
_INBOUND_CONSENT = GOLDEN_DIR.parent / "se.sambus.ehr.fhir-consent.v1.json"


def _first_bundle(path: Path) -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))[0]
    return copy.deepcopy(bundle)


def _first(bundle: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type)


def _planted(directory: Path) -> dict[str, Path]:
    """Golden Bundles with one error each, the inbound FHIR Consent with and without its policy; notices
    and guardian-access messages, which sambus makes itself."""
    no_intent = _first_bundle(_SIP_CLOSED)
    del _first(no_intent, "Task")["intent"]
    unknown_step = _first_bundle(_SIP_CLOSED)
    _first(unknown_step, "Task")["businessStatus"]["coding"][0]["code"] = "no-such-step"
    wrong_focus = _first_bundle(_CONSENT)
    header = wrong_focus["entry"][0]["resource"]
    patient = _first(wrong_focus, "Patient")
    header["focus"] = [{"reference": f"urn:uuid:{patient['id']}"}]
    inbound_consent = json.loads(_INBOUND_CONSENT.read_text(encoding="utf-8"))["data"]
    without_policy = copy.deepcopy(inbound_consent)
    del without_policy["policy"]
    at = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
    to = Addressee("vasteras-skola-norra", "Norra skolan", SCHOOL_UNIT_SYSTEM, "19800001")
    about = {"system": PROCESS_ID_SYSTEM, "value": "process-1"}
    notices = [
        notice(event=event, to=to, about=about, text="what happened", at=at)
        for event in sorted(NOTICE_EVENTS)
    ]
    notices += [  # a deadline's reminder and escalation name the child (SE base identifier systems)
        notice(event=event, to=to, about=about, text="what is due", at=at, tasks=["t-1"], patient=child)
        for event in (EventCode.DEADLINE_REMINDER, EventCode.DEADLINE_ESCALATION)
        for child in (
            (PERSONNUMMER_SYSTEM, "201203150006"),
            (LMA_NUMBER_SYSTEM, "12-345678"),
            (NATIONAL_RESERVE_NUMBER_SYSTEM, "990001-1234"),
        )
    ]
    guardian_access = [
        guardian_access_message(
            GuardianAccessNotice(
                event=event, decision_id="b-1", child="201203150006", effective=at, until=None
            ),
            timestamp=at,
        )
        for event in (EventCode.GUARDIAN_ACCESS_BLOCKED, EventCode.GUARDIAN_ACCESS_RESUMED)
    ]
    scoped_consent = _first_bundle(_CONSENT)
    _first(scoped_consent, "Consent")["extension"] = [
        {"url": MATURITY_EXTENSION, "valueString": "user-1"},
        {"url": CONSENT_PROCESS_EXTENSION, "valueIdentifier": {"system": PROCESS_ID_SYSTEM, "value": "p-1"}},
    ]
    mistyped_extensions = copy.deepcopy(scoped_consent)
    _first(mistyped_extensions, "Consent")["extension"] = [
        {"url": MATURITY_EXTENSION, "valueInteger": 16},
        {"url": CONSENT_PROCESS_EXTENSION, "valueString": "p-1"},
    ]
    files: dict[str, object] = {
        "scoped-consent": scoped_consent,
        "mistyped-extensions": mistyped_extensions,
        "notices": notices,
        "guardian-access": guardian_access,
        "no-intent": no_intent,
        "unknown-step": unknown_step,
        "wrong-focus": wrong_focus,
        "inbound-consent": inbound_consent,
        "inbound-consent-without-policy": without_policy,
    }
    paths = {}
    for name, bundle in files.items():
        paths[name] = directory / f"{name}.json"
        content = bundle if isinstance(bundle, list) else [bundle]
        paths[name].write_text(json.dumps(content), encoding="utf-8")
    return paths


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The planted files, by name."""
    return _planted(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The messages the golden process walks deliver (what recipients get), one file per walk step."""
    directory = tmp_path_factory.mktemp("delivered")
    paths = []
    for step in sorted(WALKS_DIR.glob("*/golden/*.json")):
        records = json.loads(step.read_text(encoding="utf-8"))
        if records:
            path = directory / f"{step.parent.parent.name}-{step.name}"
            path.write_text(json.dumps([r["message"] for r in records]), encoding="utf-8")
            paths.append(path)
    return paths


@pytest.fixture(scope="module")
def with_profiles(planted: dict[str, Path], delivered: list[Path]) -> dict[Path, Report]:
    """One validator run over the golden Bundles, the walks' deliveries and the planted ones, with sambus's
    conformance resources."""
    return validate([GOLDEN_DIR, *delivered, *planted.values()])


def test_every_golden_bundle_is_valid_base_r4():
    reports = validate([GOLDEN_DIR], conformance=())

    assert len(reports) == len(list(GOLDEN_DIR.glob("*.json")))
    assert all(report.resources >= 1 for report in reports.values())
    assert errors_of(reports) == []


def test_every_golden_bundle_is_valid_against_sambus_profiles_terminology_and_message_definitions(
    with_profiles: dict[Path, Report],
):
    golden = {path: report for path, report in with_profiles.items() if path.parent == GOLDEN_DIR}

    assert len(golden) == len(list(GOLDEN_DIR.glob("*.json")))
    assert errors_of(golden) == []


def test_every_message_the_golden_walks_deliver_is_valid_against_sambus_profiles(
    with_profiles: dict[Path, Report], delivered: list[Path]
):
    reports = {path: with_profiles[path] for path in delivered}

    assert len(reports) == 13, "each step of the SIP, LVU 32 and concern walks that delivers something"
    assert all(report.resources >= 1 for report in reports.values())
    assert errors_of(reports) == []


def test_a_task_without_intent_is_an_error(with_profiles: dict[Path, Report], planted: dict[str, Path]):
    errors = [str(e) for e in with_profiles[planted["no-intent"]].errors]

    assert any("Task.intent: minimum required = 1" in e for e in errors), errors


def test_an_unknown_code_of_a_sambus_code_system_is_an_error(
    with_profiles: dict[Path, Report], planted: dict[str, Path]
):
    errors = [str(e) for e in with_profiles[planted["unknown-step"]].errors]

    assert any("Unknown code" in e and "sambus-process-step#no-such-step" in e for e in errors), errors


def test_a_focus_the_message_definition_does_not_allow_is_an_error(
    with_profiles: dict[Path, Report], planted: dict[str, Path]
):
    errors = [str(e) for e in with_profiles[planted["wrong-focus"]].errors]

    assert any("has no focal Patient" in e for e in errors), errors
    assert any("needs at least 1 focal Consent" in e for e in errors), errors


def test_the_inbound_fhir_consent_example_is_valid_and_without_a_policy_breaks_ppc_1(
    with_profiles: dict[Path, Report], planted: dict[str, Path]
):
    assert with_profiles[planted["inbound-consent"]].errors == []
    errors = [str(e) for e in with_profiles[planted["inbound-consent-without-policy"]].errors]
    assert any("ppc-1" in e for e in errors), errors


def test_every_notice_sambus_makes_is_valid(with_profiles: dict[Path, Report], planted: dict[str, Path]):
    report = with_profiles[planted["notices"]]

    assert report.resources == len(NOTICE_EVENTS) + 6, "and the reminders and escalations naming a child"
    assert report.errors == []


def test_the_guardian_access_messages_sambus_makes_are_valid(
    with_profiles: dict[Path, Report], planted: dict[str, Path]
):
    report = with_profiles[planted["guardian-access"]]

    assert report.resources == 2
    assert report.errors == []


def _extension_urls(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {str(e["url"]) for e in node.get("extension", []) if isinstance(e, dict) and "url" in e}
        return found.union(*(_extension_urls(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_extension_urls(v) for v in node))
    return set()


def test_every_extension_sambus_emits_is_declared_in_its_conformance_resources():
    emitted = set()
    for path in [*GOLDEN_DIR.glob("*.json"), *WALKS_DIR.glob("*/golden/*.json")]:
        emitted |= _extension_urls(json.loads(path.read_text(encoding="utf-8")))
    declared = {r["url"] for r in resources().values() if r.get("type") == "Extension"}
    sambus_urls = {url for url in emitted if url.startswith("https://sambus.se/")}

    assert {MATURITY_EXTENSION, CONSENT_PROCESS_EXTENSION} <= declared
    assert sambus_urls, "the golden Bundles carry sambus extensions"
    assert sambus_urls <= declared, sorted(sambus_urls - declared)


def test_a_consent_with_maturity_and_process_extensions_is_valid(
    with_profiles: dict[Path, Report], planted: dict[str, Path]
):
    assert with_profiles[planted["scoped-consent"]].errors == []


def test_a_mistyped_maturity_or_process_extension_is_an_error(
    with_profiles: dict[Path, Report], planted: dict[str, Path]
):
    errors = [str(e) for e in with_profiles[planted["mistyped-extensions"]].errors]

    assert any("maturity-assessed-by" in e or "valueInteger" in e for e in errors), errors
    assert any("consent-process" in e or "valueString" in e for e in errors), errors
