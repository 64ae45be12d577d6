"""Bounded JSON: a named error for a message too large or too deep, and the same result as json otherwise."""

from __future__ import annotations

import json

import pytest

from sambus.contracts.bounded_json import MAX_JSON_DEPTH, json_depth, load_json
from sambus.contracts.errors import InvalidEventError, TooDeepError, TooLargeError


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"[1]" + b"}" * (depth - 1)


def test_a_document_at_the_depth_limit_is_read_and_one_level_deeper_is_refused():
    assert json_depth(load_json(_nested(MAX_JSON_DEPTH))) == MAX_JSON_DEPTH

    with pytest.raises(TooDeepError, match=f"nested deeper than {MAX_JSON_DEPTH} levels") as refused:
        load_json(_nested(MAX_JSON_DEPTH + 1))
    assert refused.value.code == "too_deep"
    assert not refused.value.retriable


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_document_deeper_than_python_can_parse_is_too_deep_not_a_recursion_error(depth):
    with pytest.raises(TooDeepError):
        load_json(b"[" * depth + b"]" * depth)


def test_a_message_over_the_size_limit_is_refused_before_it_is_parsed():
    with pytest.raises(TooLargeError, match="11 bytes; at most 10 bytes") as refused:
        load_json(b'"{{{{{{{{{"', max_bytes=10)
    assert refused.value.code == "too_large"


@pytest.mark.parametrize(
    ("value", "problem"),
    [(b"\xff\xfe\xfa", "not UTF-8"), (b"{not json", "not valid JSON"), (b"", "not valid JSON")],
)
def test_bytes_that_are_not_json_are_an_invalid_event(value, problem):
    with pytest.raises(InvalidEventError, match=problem) as refused:
        load_json(value)
    assert refused.value.code == "invalid_event"


def test_within_the_limits_the_result_is_what_json_reads():
    document = {"a": [1, {"b": None}, "å"], "c": 1.5}

    assert load_json(json.dumps(document).encode()) == document
