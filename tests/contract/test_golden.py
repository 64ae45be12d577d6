"""Every inbound event type has an example, and each example becomes exactly its golden FHIR output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from sambus.adapters import CATALOGUE, translate_message
from sambus.contracts.events import EVENT_TYPES
from sambus.router.cli.contracts import EXAMPLES_DIR, GOLDEN_DIR, render_messages

EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))
VARIANTS = [p for p in EXAMPLES if "--" in p.name]
"""Further examples of one event type, ``<type>--<variant>.json`` (e.g. a child without a personnummer)."""


def test_every_event_type_has_an_example_and_a_golden_output():
    names = {p.name.removesuffix(".json") for p in EXAMPLES if p not in VARIANTS}
    golden = {p.name.removesuffix(".json") for p in GOLDEN_DIR.glob("*.json")}

    assert names == set(EVENT_TYPES)
    assert golden == {p.name.removesuffix(".json") for p in EXAMPLES}
    for variant in VARIANTS:
        event_type = json.loads(variant.read_text(encoding="utf-8"))["type"]
        assert variant.name.startswith(f"{event_type}--"), "a variant is named after its event type"
    assert set(CATALOGUE) == set(EVENT_TYPES)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_translates_to_its_golden_output(example: Path):
    expected = (GOLDEN_DIR / example.name).read_text(encoding="utf-8")

    assert render_messages(example.read_bytes()) == expected, (
        "the translation changed; if that is intended, run `sambus contracts export --examples` and review"
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_resource_of_the_golden_output_parses_with_fhir_resources(example: Path):
    bundles = json.loads((GOLDEN_DIR / example.name).read_text(encoding="utf-8"))

    assert bundles, "every example becomes at least one message"
    for data in bundles:
        bundle = Bundle.model_validate(data)
        assert bundle.type == "message"
        assert data["entry"][0]["resource"]["resourceType"] == "MessageHeader"
        for entry in data["entry"]:
            resource = entry["resource"]
            parsed = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            assert parsed.model_dump(mode="json", exclude_none=True) == resource
            assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_the_message_names_the_event_of_its_type(example: Path):
    event_type = json.loads(example.read_text(encoding="utf-8"))["type"]
    [intent] = translate_message(example.read_bytes())

    header = intent.bundle["entry"][0]["resource"]
    assert header["eventCoding"]["code"] == str(intent.event)
    assert intent.bundle["id"] == intent.message_id
    assert event_type.startswith("se.sambus.")
