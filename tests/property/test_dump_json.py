"""``dump_json`` writes exactly what ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` writes.

The delivery stage's messages and notices are written by orjson when they hold no float; a recipient's bytes
must not change with the encoder. Generated documents cover every string (control characters, quotes,
backslashes, non-BMP characters, U+2028), integers of any size, nesting and key order; the examples the
contracts ship are written both ways too, as are the intents ``load_json_noting_floats`` says hold no float.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sambus.contracts.bounded_json import dump_json, load_json_noting_floats
from sambus.router.cli.contracts import EXAMPLES_DIR

SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def standard(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
"""Every character a UTF-8 message can carry (a lone surrogate cannot be written as UTF-8 at all)."""
scalars = st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70) | texts
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(texts, children, max_size=5),
    max_leaves=40,
)


@SETTINGS
@given(documents)
def test_a_document_without_floats_is_written_as_the_standard_library_writes_it(document: Any) -> None:
    assert dump_json(document, floats=False) == standard(document)
    assert dump_json(document) == standard(document)


@SETTINGS
@given(documents)
def test_reading_notes_no_float_where_there_is_none(document: Any) -> None:
    read, floats = load_json_noting_floats(standard(document))
    assert (read, floats) == (json.loads(standard(document)), False)


@pytest.mark.parametrize(
    "number", [1e-05, 1.5e-07, 0.1, 1.0, -0.0, 1e16, 1e300, 123456.789, float("nan"), float("inf")]
)
def test_a_float_is_noted_and_written_the_standard_way(number: float) -> None:
    document = {"valueQuantity": {"value": number}, "n": [1, 2]}
    read, floats = load_json_noting_floats(standard(document))
    assert floats
    assert standard(read) == standard(document)
    assert dump_json(read, floats=floats) == standard(document)


def test_what_orjson_refuses_is_written_or_refused_the_standard_way() -> None:
    assert dump_json({1: "a", "b": 2**65}, floats=False) == standard({1: "a", "b": 2**65})
    with pytest.raises(UnicodeEncodeError):
        dump_json({"a": "\ud800"}, floats=False)
    with pytest.raises(TypeError, match="not JSON serializable"):
        dump_json({"a": object()}, floats=False)
    with pytest.raises(TypeError, match="not JSON serializable"):
        dump_json({"when": __import__("datetime").date(2026, 11, 30)}, floats=False)


def test_every_contract_example_is_written_the_same_both_ways() -> None:
    paths = sorted(EXAMPLES_DIR.rglob("*.json"))
    assert len(paths) > 100
    for path in paths:
        document, floats = load_json_noting_floats(path.read_bytes())
        assert dump_json(document, floats=floats) == standard(document), path.name
        assert dump_json(document, floats=False) == standard(document), path.name
