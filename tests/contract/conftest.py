"""Examples from contracts/examples, loaded and varied by the contract tests."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from sambus.router.cli.contracts import EXAMPLES_DIR

ExampleFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def example() -> ExampleFactory:
    """Loads the example of an event type (e.g. ``social.lvu32-exam-ordered``), replacing ``data`` fields."""

    def make(name: str, **data: Any) -> dict[str, Any]:
        event = json.loads((EXAMPLES_DIR / f"se.sambus.{name}.v1.json").read_text(encoding="utf-8"))
        event = copy.deepcopy(event)
        event["data"].update(data)
        return event

    return make
