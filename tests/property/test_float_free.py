"""Intake writes an intent the faster way only when its event surely holds no float (``float_free``).

orjson writes floats differently from the standard library (``1e-05``, ``NaN``), so a float-free verdict on
an event that holds one would change the bytes a recipient gets. Generated JSON documents, written compact,
indented or with odd whitespace and in UTF-8, UTF-16 and UTF-32, are called float-free only when they hold
no float; the events intake reads in the contract examples and the pipeline bench mostly are float-free.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sambus.router.stages.intake import float_free

SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["at 10.30", "1e5", "v1.0", "5b2e7c31-8d4a", " -2.5", "NaN", "Infinity", ":3E+1"]
)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e-05, -0.0, 1.5e300, 2.0])
scalars = st.none() | st.booleans() | st.integers() | texts | floats
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)
layouts = st.sampled_from(
    [
        {"separators": (",", ":")},
        {"indent": 2},
        {"indent": "\t"},
        {"separators": (" ,\r\n", " :\t")},
        {},
    ]
)


def holds_float(document: Any) -> bool:
    if isinstance(document, float):
        return True
    if isinstance(document, dict):
        return any(holds_float(value) for value in document.values())
    if isinstance(document, list):
        return any(holds_float(value) for value in document)
    return False


@SETTINGS
@given(documents, layouts, st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"]))
def test_a_document_with_a_float_is_never_float_free(
    document: Any, layout: dict[str, Any], encoding: str
) -> None:
    value = json.dumps(document, ensure_ascii=False, **layout).encode(encoding)
    assert json.loads(value) == document or holds_float(document)  # NaN != NaN
    if holds_float(document):
        assert not float_free(value)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1.5}', '{"a": -0.5}', '{"a":[1,2e3]}', '{"a":\n1E+2}', '{"a":[\t1e-5]}', '{"a":NaN}',
        '{"a":-Infinity}', '{"a":{"b":[0.0]}}',
    ],
)  # fmt: skip
def test_every_form_of_non_integer_number_is_seen(text: str) -> None:
    assert not float_free(text.encode())
    assert not float_free(text.encode("utf-16"))


@pytest.mark.parametrize(
    "text",
    ['{"a":15,"b":[-2,0],"c":"5b2e7c31-8d4a","d":"2026-11-30T10:00:00+01:00","type":"se.sambus.x.v1"}'],
)
def test_integers_strings_ids_and_times_are_float_free(text: str) -> None:
    assert float_free(text.encode())
    assert not float_free(None)


def test_nan_and_infinity_read_as_floats() -> None:
    assert math.isnan(json.loads('{"a":NaN}')["a"])
