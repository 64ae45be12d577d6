"""What a stage's records and an exporter see of tracing, with and without a span processor installed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sambus.contracts.topics import Header, Topics
from sambus.router.kafka.records import Outgoing
from sambus.router.ops import tracing
from sambus.router.ops.metrics import Metrics

pytestmark = pytest.mark.asyncio

TOPICS = Topics(prefix="t.")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
ORIGIN_MS = 1_764_000_000_000


@pytest.fixture(autouse=True)
def fresh_provider() -> Iterator[None]:
    """Each test gets the provider sambus makes when none is installed, and leaves none behind."""
    tracing.tracer_provider.cache_clear()
    tracing._tracer.cache_clear()  # noqa: SLF001 - the tracer of the provider just dropped
    yield
    tracing.tracer_provider.cache_clear()
    tracing._tracer.cache_clear()  # noqa: SLF001


def _record(*, parent: str | None, offset: int = 7) -> ConsumerRecord[bytes, bytes]:
    headers = [(Header.EVENT_CODE, b"sip-initiated"), ("tracestate", f"sambus=o{ORIGIN_MS},other=x".encode())]
    if parent is not None:
        headers.append((Header.TRACEPARENT, parent.encode()))
    return ConsumerRecord(
        TOPICS.intents, 0, offset, int(time.time() * 1000), 0, b"child", b"{}", None, 5, 2, headers
    )


class Handler:
    """Makes two records (one carrying a stale trace header) and notes the span current meanwhile."""

    def __init__(self) -> None:
        self.seen: list[trace.Span] = []
        self.recording: list[bool] = []

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        self.seen.append(trace.get_current_span())
        self.recording.append(self.seen[-1].is_recording())
        stale = ((Header.TRACEPARENT, b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"),)
        return [
            Outgoing(topic=TOPICS.deliver("a"), value=b"1", key=record.key, headers=stale),
            Outgoing(topic=TOPICS.parked, value=b"2", key=record.key),
        ]


def _trace_headers(out: Outgoing) -> tuple[list[str], str]:
    parents = [v.decode() for k, v in out.headers if k == Header.TRACEPARENT]
    [state] = [v.decode() for k, v in out.headers if k == "tracestate"]
    return parents, state


async def test_without_a_span_processor_records_carry_the_trace_and_no_span_is_recorded():
    handler = Handler()
    made = await tracing.traced("delivery", handler, _record(parent=f"00-{TRACE_ID}-{PARENT_SPAN}-01"),
                                metrics=Metrics())  # fmt: skip

    [span] = handler.seen
    assert handler.recording == [False], "nobody would see a recorded span: none is made"
    context = span.get_span_context()
    assert f"{context.trace_id:032x}" == TRACE_ID  # log lines name the received trace
    for out in made:
        [parent], state = _trace_headers(out)
        assert parent == f"00-{TRACE_ID}-{context.span_id:016x}-01"  # a span of its own, sampled as received
        assert f"{context.span_id:016x}" != PARENT_SPAN
        assert state == f"sambus=o{ORIGIN_MS},other=x"
    assert len({_trace_headers(out)[0][0] for out in made}) == 1
    assert trace.get_current_span() is trace.INVALID_SPAN, "the handler's span is not current afterwards"


async def test_a_record_without_a_trace_starts_one():
    handler = Handler()
    made = await tracing.traced("intake", handler, _record(parent=None), metrics=Metrics())

    [parent], _ = _trace_headers(made[0])
    version, trace_id, span_id, flags = parent.split("-")
    assert (version, flags) == ("00", "03")  # sampled, and a random trace id (W3C level 2), as the SDK says
    assert trace_id != "0" * 32
    assert span_id == f"{handler.seen[0].get_span_context().span_id:016x}"


async def test_the_sampler_chosen_by_environment_is_honoured(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")

    made = await tracing.traced("intake", Handler(), _record(parent=None), metrics=Metrics())

    [parent], _ = _trace_headers(made[0])
    assert parent.endswith("-02"), "a trace the sampler drops is passed on unsampled (its id still random)"


async def test_spans_are_exported_once_a_span_processor_is_added():
    exporter = InMemorySpanExporter()
    tracing.tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
    handler = Handler()
    record = _record(parent=f"00-{TRACE_ID}-{PARENT_SPAN}-01", offset=9)

    made = await tracing.traced("delivery", handler, record, metrics=Metrics())

    [span] = exporter.get_finished_spans()
    assert handler.recording == [True]
    assert span.name == "delivery intents"
    assert span.kind is trace.SpanKind.CONSUMER
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == PARENT_SPAN
    assert span.attributes is not None
    assert span.attributes["messaging.kafka.message.offset"] == 9
    assert span.attributes["messaging.destination.name"] == "intents"
    [parent], _ = _trace_headers(made[0])
    assert parent == f"00-{TRACE_ID}-{span.context.span_id:016x}-01", "the records name the exported span"


async def test_decisions_are_counted_under_their_own_outcome_and_rule():
    metrics = Metrics()
    for outcome, rule in [("permit", "a"), ("permit", "a"), ("deny", "a"), ("permit", "b"), ("deny", "a")]:
        metrics.decided(outcome, rule)

    counted = {
        (sample.labels["outcome"], sample.labels["rule"]): sample.value
        for family in metrics.registry.collect()
        if family.name == "sambus_decisions"
        for sample in family.samples
        if sample.name == "sambus_decisions_total"
    }
    assert counted == {("permit", "a"): 2, ("deny", "a"): 2, ("permit", "b"): 1}
