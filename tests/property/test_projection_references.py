"""The references a recipient's projection follows are read from orjson's bytes: the same as walking them.

``projection._references`` finds every ``reference`` string in a resource by searching the resource as orjson
writes it; a walk of the parsed data (``_walked``, and this file's own oracle) must find the same set for
every document: keys and strings that hold quotes, backslashes, ``"reference":"`` itself, non-string
references, integers orjson does not write, and the contract examples' resources.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sambus.router.cli.contracts import EXAMPLES_DIR
from sambus.router.routing.projection import _references, _walked
from tests.property.test_dump_json import scalars, texts

SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def oracle(value: object) -> set[str]:
    """Every ``reference`` string anywhere in ``value``, by walking it (dicts and lists only)."""
    found: set[str] = set()
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            if isinstance(item.get("reference"), str):
                found.add(item["reference"])
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        todo.extend(children)
    return found


tricky = st.sampled_from(
    ["reference", 'a"reference', 'a\\"reference', "xreference", "reference ", '"reference":"', "\\", '"']
)
keys = tricky | texts
documents = st.recursive(
    scalars | tricky, lambda items: st.lists(items, max_size=4) | st.dictionaries(keys, items, max_size=4)
)


@SETTINGS
@given(documents)
def test_references_are_what_a_walk_finds(document: Any) -> None:
    assert _references(document) == oracle(document) == _walked(document)


def test_the_examples_resources_give_what_a_walk_finds() -> None:
    for path in sorted(EXAMPLES_DIR.glob("golden/*.json")):
        for bundle in json.loads(path.read_text(encoding="utf-8")):  # the Bundles one event becomes
            assert _references(bundle) == oracle(bundle)
            for entry in bundle["entry"]:
                assert _references(entry["resource"]) == oracle(entry["resource"])


def test_a_key_ending_in_an_escaped_quote_and_reference_is_not_a_reference_key() -> None:
    assert _references({'a"reference': "no", "b": [{"reference": 'x"y\\z'}]}) == {'x"y\\z'}
