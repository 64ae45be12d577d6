"""Deterministic ids: a UUIDv5 of the parts as a JSON list, as every id sambus made so far was made."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sambus.contracts.fhir import deterministic_id

NAMESPACE = uuid.UUID("6f1c1e52-8e59-4b8f-9d55-1d3f3c0a7b11")


def _uuid5(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, json.dumps(parts, ensure_ascii=False)))


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(st.text(), max_size=5))
def test_the_id_is_the_uuid5_of_the_parts_as_a_json_list(parts):
    assert deterministic_id(*parts) == _uuid5(*parts)


@pytest.mark.parametrize(
    "parts",
    [
        (),
        ("",),
        ("a|b", "c"),
        ("a", "b|c"),
        ('quote " and \\ backslash', "line\nbreak\ttab\x00nul"),
        ("åäö", "\u2028\u2029", "emoji \U0001f600"),
    ],
)
def test_ids_stay_what_they_were_for_awkward_parts(parts):
    assert deterministic_id(*parts) == _uuid5(*parts)


def test_an_id_made_before_is_made_again():
    assert deterministic_id("p-1", "header") == "9580c0a7-dda0-5329-baa4-1a85ad281385"
