"""Trace context and counters, from an agency event to its delivery, on the real broker."""

from __future__ import annotations

import io
import json
import logging

import pytest

from sambus.contracts.agencies import AgencyKind
from sambus.contracts.topics import Header
from sambus.router.ops.logs import configure_logging
from sambus.router.ops.metrics import METRICS
from tests.integration.conftest import Running, sip_event

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

BU_HALSAN = {"hsaId": "SE2321000206-1001"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SOURCE_PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _count(name: str, **labels: str) -> float:
    return METRICS.registry.get_sample_value(name, labels) or 0.0


async def test_traceparent_goes_from_the_agency_event_to_the_delivery(running: Running):
    running.consent("201203150006", AgencyKind.BU_HALSAN)
    delivered_before = _count("sambus_messages_out_total", stage="delivery", kind="sip-initiated",
                              destination="deliver")  # fmt: skip
    latencies_before = _count("sambus_end_to_end_latency_seconds_count")

    await running.send(
        running.topics.agency_events("school"),
        sip_event("trace-1", "201203150006", BU_HALSAN),
        headers=[(Header.TRACEPARENT, SOURCE_PARENT.encode())],
    )

    [intent] = await running.read(running.topics.intents, count=1)
    [delivered] = await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=1)
    intent_parent = dict(intent.headers)[Header.TRACEPARENT].decode()
    delivered_parent = dict(delivered.headers)[Header.TRACEPARENT].decode()
    assert intent_parent.split("-")[1] == TRACE_ID
    assert delivered_parent.split("-")[1] == TRACE_ID
    assert len({SOURCE_PARENT, intent_parent, delivered_parent}) == 3, "each stage is a span of its own"
    assert [h for h, _ in delivered.headers].count(Header.TRACEPARENT) == 1
    origin = dict(delivered.headers)["tracestate"].decode()
    assert origin.startswith("sambus=o")
    assert dict(intent.headers)["tracestate"].decode() == origin, "the origin time is the agency event's"
    assert _count("sambus_messages_out_total", stage="delivery", kind="sip-initiated",
                  destination="deliver") == delivered_before + 1  # fmt: skip
    assert _count("sambus_end_to_end_latency_seconds_count") == latencies_before + 1


async def test_a_trace_starts_at_intake_when_the_source_sends_none(running: Running):
    running.consent("201203150014", AgencyKind.BU_HALSAN)

    await running.send(running.topics.agency_events("school"), sip_event("t-2", "201203150014", BU_HALSAN))

    [intent] = await running.read(running.topics.intents, count=1)
    [delivered] = await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=1)
    intent_trace = dict(intent.headers)[Header.TRACEPARENT].decode().split("-")[1]
    assert dict(delivered.headers)[Header.TRACEPARENT].decode().split("-")[1] == intent_trace
    assert intent_trace != "0" * 32


@pytest.fixture
def json_logs():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    yield stream
    root.handlers, _ = saved
    root.setLevel(saved[1])


async def test_json_logs_carry_the_trace_and_no_personnummer(
    running: Running, json_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
):
    # Decisions are logged at DEBUG (one line per decision would flood INFO): turn them on for this stage.
    delivery_log = logging.getLogger("sambus.router.stages.delivery")
    monkeypatch.setattr(delivery_log, "level", logging.DEBUG)
    running.consent("201203150006", AgencyKind.BU_HALSAN)
    await running.send(
        running.topics.agency_events("school"),
        sip_event("log-1", "201203150006", BU_HALSAN),
        headers=[(Header.TRACEPARENT, SOURCE_PARENT.encode())],
    )
    await running.send(running.topics.agency_events("school"), sip_event("log-2", "20120315-0007", BU_HALSAN))
    await running.read(running.topics.deliver("vastmanland-bu-halsan"), count=1)
    await running.read(running.topics.dlq, count=1)
    logging.getLogger("test").info("a careless line about 20120315-0006")

    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]

    routed = [line for line in lines if line["logger"] == "sambus.router.stages.delivery"]
    assert routed, "the delivery stage logged its decision"
    assert all(line["trace_id"] == TRACE_ID for line in routed)
    assert {"time", "level", "logger", "message", "span_id"} <= set(routed[0])
    text = json_logs.getvalue()
    for number in ("201203150006", "20120315-0006", "201203150007", "20120315-0007"):
        assert number not in text
    assert lines[-1]["message"] == "a careless line about [personnummer]"
