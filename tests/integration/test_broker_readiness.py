"""When the local broker counts as ready: it must serve consumer groups and transactions, not only metadata.

A broker started again on a folder with ~6,000 partitions answered metadata a minute before it had loaded
its group and transaction coordinators; `sambus demo` then saw none of its records within its 60 s and
failed ("expected 5 records, saw 0"). Reproduced outside the suite (it needs minutes to fill a broker); these
tests hold the probe that `LocalKafka.wait_ready` now waits for.
"""

from __future__ import annotations

import gc
import sys
import time

import pytest

from sambus.router.dev.local_kafka import coordinators_answer
from tests.web.serving import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


async def test_a_running_broker_serves_groups_and_transactions(kafka_bootstrap: str) -> None:
    assert await coordinators_answer(kafka_bootstrap, timeout_s=30)


async def test_nothing_listening_is_not_ready_and_the_probe_gives_up_in_its_time() -> None:
    started = time.monotonic()
    assert not await coordinators_answer(f"127.0.0.1:{free_port()}", timeout_s=2)
    assert time.monotonic() - started < 30, "the probe is bounded by its timeout"


async def test_a_probe_cut_short_leaves_no_connection_open(kafka_bootstrap: str) -> None:
    """A probe that runs out of time closes what it opened (wait_ready probes every half second).

    Before, a probe cut short between connecting and the broker's metadata answer left that connection
    open; the garbage collector found it later, in whichever test was running (4 in 21 probes here).
    """
    leaked: list[str] = []
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: leaked.append(f"{unraisable.exc_value}")
    try:
        for timeout_s in (0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.3) * 3:
            await coordinators_answer(kafka_bootstrap, timeout_s=timeout_s)
        gc.collect()
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert leaked == []
