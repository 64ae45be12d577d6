"""Topic creation while one broker of a cluster restarts: ``sambus run`` asks again instead of dying.

In the three-broker fault test an instance restarted while a broker was down died at start with "cannot
create topics …: NodeNotReadyError". The real cluster run is tests/fault/test_exactly_once_cluster.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError

from sambus.contracts.errors import BrokerUnavailableError
from sambus.router.kafka import admin

pytestmark = pytest.mark.asyncio


def _failing(times: int, cause: Exception, calls: list[str]) -> Any:
    async def create(_servers: str, specs: list[Any]) -> list[str]:
        calls.append("create")
        if len(calls) <= times:
            raise BrokerUnavailableError("cannot create topics") from cause
        return list(specs)

    return create


async def _answers(_servers: str, **_kwargs: Any) -> bool:
    return True


async def _silent(_servers: str, **_kwargs: Any) -> bool:
    return False


async def _no_wait(_seconds: float) -> None:
    return None


async def test_a_broker_not_ready_in_an_answering_cluster_is_asked_again(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(admin, "_ensure_topics", _failing(2, NodeNotReadyError("node 2"), calls))
    monkeypatch.setattr(admin, "metadata_answers", _answers)
    monkeypatch.setattr(admin.asyncio, "sleep", _no_wait)
    assert await admin.ensure_topics("127.0.0.1:1", ["t"]) == ["t"]  # type: ignore[list-item]
    assert calls == ["create"] * 3


async def test_a_cluster_that_does_not_answer_fails_at_once(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(admin, "_ensure_topics", _failing(5, KafkaConnectionError("refused"), calls))
    monkeypatch.setattr(admin, "metadata_answers", _silent)
    with pytest.raises(BrokerUnavailableError, match="cannot create topics"):
        await admin.ensure_topics("127.0.0.1:1", ["t"])  # type: ignore[list-item]
    assert calls == ["create"]


async def test_a_partial_outage_longer_than_the_patience_fails(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(admin, "_ensure_topics", _failing(99, NodeNotReadyError("node 2"), calls))
    monkeypatch.setattr(admin, "metadata_answers", _answers)
    monkeypatch.setattr(admin.asyncio, "sleep", _no_wait)
    with pytest.raises(BrokerUnavailableError):
        await admin.ensure_topics("127.0.0.1:1", ["t"], patience_s=0)  # type: ignore[list-item]
    assert calls == ["create"]
