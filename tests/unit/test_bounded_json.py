"""Bounded JSON: a named error for a message too large or too deep, and the same result as json otherwise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _defined_depth(value: Any) -> int:
    """The depth by its definition: a container is one deeper than its deepest child, a scalar is 0."""
    if isinstance(value, dict):
        return 1 + max((_defined_depth(child) for child in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_defined_depth(child) for child in value), default=0)
    return 0


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(document=_json_values, stop_after=st.integers(min_value=0, max_value=12))
def test_the_depth_is_the_deepest_nesting_counted_up_to_one_past_the_limit(document, stop_after):
    depth = _defined_depth(document)

    assert json_depth(document, stop_after=stop_after) == min(depth, stop_after + 1)
    assert json_depth(document) == depth


def test_a_document_nested_far_past_the_limit_is_walked_no_deeper_than_one_past_it():
    document: Any = []
    for _ in range(10 * MAX_JSON_DEPTH):
        document = [1, document]

    assert json_depth(document) == MAX_JSON_DEPTH + 1


@pytest.mark.parametrize(
    "document",
    [
        b"[" * 4 + b"]" * 4,  # arrays only
        b'{"a":' * 3 + b"{}" + b"}" * 3,  # objects only
        b'[{"a":[{"b":1}]}]',  # both
        b'{"a\\u005b":[[["x"]]]}',  # an escaped bracket in a key opens nothing
    ],
)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_the_count_that_spares_the_walk_never_lets_a_document_past_the_limit(document, encoding):
    """Four levels against a limit of three: refused, whether the walk is spared or not; three are read.

    Fails when the count that spares the walk misses one kind of container or one of the encodings that
    ``json.loads`` reads.
    """
    value = document.decode("utf-8").encode(encoding)
    with pytest.raises(TooDeepError):
        load_json(value, max_depth=3)
    assert load_json(value, max_depth=4) == json.loads(document)


@given(st.recursive(st.text(alphabet="[]{}a"), lambda c: st.lists(c) | st.dictionaries(st.text("{[a"), c)))
@settings(max_examples=300, deadline=None)
def test_a_document_is_refused_exactly_when_it_nests_deeper_than_the_limit(document):
    value = json.dumps(document).encode()
    depth = json_depth(document, stop_after=1_000)
    for limit in (depth - 1, depth, depth + 1):
        if limit < 0:
            continue
        if depth > limit:
            with pytest.raises(TooDeepError):
                load_json(value, max_depth=limit)
        else:
            assert load_json(value, max_depth=limit) == document
