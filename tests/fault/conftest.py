"""The fault tests collect their garbage before the next test starts.

What a fault test leaves unclosed (a client of a cluster it broke, a probe cut short) is then reported as
an error of that test, not of whichever test runs when the garbage collector next finds it: stop 22's CI
failed ``test_adapters_broker`` on 8 unraisable exceptions, most likely left by the cluster fault test.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _collect_garbage_at_teardown() -> Iterator[None]:
    yield
    gc.collect()
