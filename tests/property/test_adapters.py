"""Generated and mutated events fed to every adapter: a refusal with a reason, or messages that parse.

Nothing else may escape an adapter: a crash would stop the intake consumer.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sambus.adapters import translate_message
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.events._common import eighteenth_birthday
from sambus.contracts.identifiers import birth_date, luhn_valid, person_identity_system
from sambus.router.cli.contracts import EXAMPLES_DIR

EXAMPLES = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES_DIR.glob("*.json"))}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _paths(item, (*prefix, index))
    return paths


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """An example with one to three fields deleted, replaced by any JSON, or given an unknown sibling."""
    event = copy.deepcopy(EXAMPLES[draw(st.sampled_from(sorted(EXAMPLES)))])
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(event)
        path = draw(st.sampled_from(paths))
        parent: Any = event
        for step in path[:-1]:
            parent = parent[step]
        operation = draw(st.sampled_from(["delete", "replace", "add"]))
        if operation == "delete":
            del parent[path[-1]]
        elif operation == "replace":
            parent[path[-1]] = draw(json_values)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    return event


@st.composite
def person_numbers(draw: st.DrawFn, *, samordning: bool = False) -> str:
    """A valid personnummer (or samordningsnummer) of a child born 2005-2024."""
    born = draw(st.dates(dt.date(2005, 1, 1), dt.date(2024, 12, 31)))
    day = born.day + (60 if samordning else 0)
    stem = f"{born:%Y%m}{day:02d}{draw(st.integers(0, 999)):03d}"
    check = next(c for c in range(10) if luhn_valid(f"{stem}{c}"[2:]))
    return f"{stem}{check}"


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """An example for another child (any protection it may have), from another source system and event id."""
    event = copy.deepcopy(EXAMPLES[draw(st.sampled_from(sorted(EXAMPLES)))])
    child = draw(person_numbers(samordning=draw(st.booleans())))
    event["id"] = draw(st.text(min_size=1, max_size=40).filter(lambda s: s.strip()))
    event["source"] = draw(st.text(min_size=1, max_size=40).filter(lambda s: s.strip()))
    data = event["data"]
    if "child" in data:
        # the event that ends a protected identity is valid only for a child sent without a label
        ended = event["type"].endswith(".identity-protection-ended.v1")
        labels = ["none"] if ended else ["none", "sekretessmarkering", "skyddadFolkbokforing"]
        data["child"] = {"civicNo": child, "protection": draw(st.sampled_from(labels))}
        if event["type"].endswith(".handover-meeting-called.v1"):  # held before the child turns 18
            eighteen = eighteenth_birthday(birth_date(child))
            day_before = eighteen - dt.timedelta(days=1)
            data["meeting"] = dt.datetime.combine(day_before, dt.time(12), tzinfo=dt.UTC).isoformat()
    else:
        # the child by personnummer or samordningsnummer, also where the example names it otherwise (LMA)
        data["patient"]["identifier"] = {"system": person_identity_system(child), "value": child}
    return event


def _assert_parses(value: bytes, headers: list[tuple[str, bytes]] | None = None) -> None:
    intents = translate_message(value, headers or ())
    assert intents
    for intent in intents:
        Bundle.model_validate(intent.bundle)
        for entry in intent.bundle["entry"]:
            get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])


def _accepted_or_explained(value: bytes, headers: list[tuple[str, bytes]] | None = None) -> None:
    try:
        _assert_parses(value, headers)
    except InvalidEventError as exc:
        problem = exc.problem
    else:
        return
    assert problem.strip(), "every refusal says what is wrong"


@SETTINGS
@given(mutated_events())
def test_a_mutated_event_is_translated_or_refused_with_a_reason(event):
    _accepted_or_explained(json.dumps(event).encode())


@SETTINGS
@given(mutated_events())
def test_a_mutated_cloudevent_is_translated_or_refused_with_a_reason(event):
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_type", str(event.get("type", "")).encode()),
        ("ce_id", str(event.get("id", "")).encode()),
        ("ce_source", str(event.get("source", "")).encode()),
        ("ce_time", str(event.get("time", "")).encode()),
    ]
    _accepted_or_explained(json.dumps(event.get("data")).encode(), headers)


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_refused_with_a_reason(value):
    _accepted_or_explained(value)


@SETTINGS
@given(valid_events())
def test_every_valid_event_yields_messages_that_parse(event):
    _assert_parses(json.dumps(event).encode())
    _assert_parses(json.dumps(event).encode())


@settings(max_examples=100, deadline=None)
@given(valid_events(), st.integers(1, 9))
def test_a_refused_personnummer_is_never_repeated_in_the_reason(event, shift):
    assume("child" in event["data"])
    number = event["data"]["child"]["civicNo"]
    wrong = number[:-1] + str((int(number[-1]) + shift) % 10)
    event["data"]["child"]["civicNo"] = wrong

    with pytest.raises(InvalidEventError) as caught:
        translate_message(json.dumps(event).encode())

    assert caught.value.field == "data.child.civicNo"
    assert wrong not in str(caught.value)
    assert wrong[-4:] not in str(caught.value)
