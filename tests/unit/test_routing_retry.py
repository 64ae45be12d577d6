"""Retry bookkeeping: growing delays, a bounded count, then a dead letter with the attempt history."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from aiokafka.structs import ConsumerRecord
from typer.testing import CliRunner

from sambus.contracts.errors import InvalidIntentError, StoreUnavailableError
from sambus.contracts.topics import Header, Topics
from sambus.router.cli.main import app
from sambus.router.kafka.records import Outgoing
from sambus.router.kafka.retry import Retries, RetryHandler, RetryPolicy

NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
TOPICS = Topics("t.")


def _record(out: Outgoing | None = None) -> ConsumerRecord:
    out = out or Outgoing(
        "t.sambus.intents", b'{"id": 1}', b"child", ((Header.EVENT_CODE, b"sip-initiated"),)
    )
    return out.as_consumed(offset=40, partition=2)


RETRIES = Retries(topics=TOPICS, policy=RetryPolicy(delays_s=(1.0, 5.0)), clock=lambda: NOW)
DOWN = StoreUnavailableError("database down")


def test_a_failure_goes_to_the_next_retry_topic_with_a_growing_delay_then_to_the_dlq() -> None:
    [first] = RETRIES.failed(_record(), DOWN)
    [second] = RETRIES.failed(_record(first), DOWN)
    [dead] = RETRIES.failed(_record(second), DOWN)

    assert [first.topic, second.topic, dead.topic] == ["t.sambus.retry.1", "t.sambus.retry.2", "t.sambus.dlq"]
    due = [int(dict(r.headers)[Header.RETRY_NOT_BEFORE]) / 1000 - NOW.timestamp() for r in (first, second)]
    assert due == [1.0, 5.0]
    headers = dict(dead.headers)
    assert [h["attempt"] for h in json.loads(headers[Header.RETRY_HISTORY])] == [1, 2, 3]
    assert headers[Header.DLQ_SOURCE_TOPIC] == b"t.sambus.intents"
    assert headers[Header.DLQ_SOURCE_OFFSET] == b"40"
    assert headers[Header.DLQ_PSEUDONYM] == b"child"
    assert headers[Header.EVENT_CODE] == b"sip-initiated"
    assert dead.value == b'{"id": 1}'
    assert dead.key is None


@pytest.mark.parametrize("delays", [(), (-1.0,), (60.0,)])
def test_retry_delays_must_be_few_seconds(delays) -> None:
    with pytest.raises(ValueError, match="retry delays"):
        RetryPolicy(delays_s=delays)


@pytest.mark.asyncio
async def test_a_retry_waits_until_due_and_hands_the_original_record_on() -> None:
    [retry] = RETRIES.failed(_record(), DOWN)
    seen: list[ConsumerRecord] = []
    waited: list[float] = []

    async def handler(record: ConsumerRecord) -> list[Outgoing]:
        seen.append(record)
        return []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    await RetryHandler(handler=handler, retries=RETRIES, clock=lambda: NOW, sleep=sleep)(_record(retry))

    assert waited == [1.0]
    [original] = seen
    assert (original.topic, original.partition, original.offset) == ("t.sambus.intents", 2, 40)
    assert dict(original.headers) == {Header.EVENT_CODE: b"sip-initiated"}


@pytest.mark.asyncio
async def test_a_non_retriable_failure_on_retry_is_dead_lettered_at_once() -> None:
    [retry] = RETRIES.failed(_record(), DOWN)

    async def handler(_record: ConsumerRecord) -> list[Outgoing]:
        raise InvalidIntentError("broken")

    async def sleep(seconds: float) -> None:
        pass

    [dead] = await RetryHandler(handler=handler, retries=RETRIES, clock=lambda: NOW, sleep=sleep)(
        _record(retry)
    )

    assert dead.topic == "t.sambus.dlq"
    assert dict(dead.headers)[Header.DLQ_SOURCE_TOPIC] == b"t.sambus.intents"


def test_dlq_replay_without_a_selection_is_refused() -> None:
    result = CliRunner().invoke(app, ["dlq", "replay"])

    assert result.exit_code == 2
    assert "--ref, --error, --source or --all" in result.output
