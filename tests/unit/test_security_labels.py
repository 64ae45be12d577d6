"""A message Bundle carries the highest security label of the resources in it (``Bundle.meta.security``)."""

from __future__ import annotations

import json

from sambus.adapters import translate_message
from sambus.contracts.fhir.codes import CONFIDENTIALITY_SYSTEM, SWEDISH_SECURITY_SYSTEM
from sambus.contracts.fhir.security import high_water_mark
from sambus.router.cli.contracts import EXAMPLES_DIR

_V = {"system": CONFIDENTIALITY_SYSTEM, "code": "V"}
_R = {"system": CONFIDENTIALITY_SYSTEM, "code": "R"}
_PROTECTED = {"system": SWEDISH_SECURITY_SYSTEM, "code": "skyddadFolkbokforing"}


def _labelled(*labels: dict[str, str]) -> dict[str, object]:
    return {"resourceType": "Task", "meta": {"security": list(labels)}}


def test_the_most_restrictive_confidentiality_and_every_swedish_label_win():
    resources = [_labelled(_R), {"resourceType": "Patient"}, _labelled(_V, _PROTECTED), _labelled(_R)]

    assert high_water_mark(resources) == [_V, _PROTECTED]


def test_unlabelled_resources_give_no_label():
    assert high_water_mark([{"resourceType": "Patient"}, {"resourceType": "Task", "meta": {}}]) == []


def test_a_message_about_a_child_with_protected_identity_is_labelled_on_the_bundle():
    event = json.loads(
        (EXAMPLES_DIR / "se.sambus.social.placement-started.v1.json").read_text(encoding="utf-8")
    )
    event["data"]["child"]["protection"] = "skyddadFolkbokforing"

    [intent] = translate_message(json.dumps(event).encode())

    assert intent.bundle["meta"]["security"] == [_V, _PROTECTED]
    inside = [e["resource"] for e in intent.bundle["entry"][1:]]
    assert all(_PROTECTED in r["meta"]["security"] for r in inside if r["resourceType"] != "MessageHeader")


def test_a_message_about_an_unprotected_child_has_no_bundle_label():
    event = (EXAMPLES_DIR / "se.sambus.school.sip-initiated.v1.json").read_bytes()

    [intent] = translate_message(event)

    assert "meta" not in intent.bundle


def _by_order(resources: list[dict[str, object]]) -> list[dict[str, str]]:
    """The high-water mark as it was first written: each code's place looked up in the order every time."""
    order = ("U", "L", "M", "N", "R", "V")
    confidentiality: str | None = None
    swedish: set[str] = set()
    for resource in resources:
        for label in (resource.get("meta") or {}).get("security") or []:  # type: ignore[attr-defined]
            system, code = label.get("system"), label.get("code")
            if system == CONFIDENTIALITY_SYSTEM and code in order:
                if confidentiality is None or order.index(code) > order.index(confidentiality):
                    confidentiality = code
            elif system == SWEDISH_SECURITY_SYSTEM and isinstance(code, str):
                swedish.add(code)
    labels = [] if confidentiality is None else [{"system": CONFIDENTIALITY_SYSTEM, "code": confidentiality}]
    return labels + [{"system": SWEDISH_SECURITY_SYSTEM, "code": code} for code in sorted(swedish)]


def test_every_mix_of_labels_gets_the_mark_it_always_got():
    """Every pair of resources labelled from every code (and an unknown one, and a non-string code)."""
    codes = ["U", "L", "M", "N", "R", "V", "X", None]
    choices = [
        [],
        *[[{"system": CONFIDENTIALITY_SYSTEM, "code": code}] for code in codes],
        [_PROTECTED],
        [{"system": SWEDISH_SECURITY_SYSTEM, "code": "sekretessmarkering"}, _R],
        [{"system": "urn:other", "code": "V"}],
    ]
    for first in choices:
        for second in choices:
            for third in choices:
                resources = [
                    _labelled(*first),
                    {"resourceType": "Patient"},
                    _labelled(*second),
                    _labelled(*third),
                ]
                assert high_water_mark(resources) == _by_order(resources), (first, second, third)
