"""W3C trace context across Kafka: each stage continues the trace it received and passes it on.

A stage's handler runs inside a span whose parent is the record's ``traceparent`` header (a source
system may start the trace; otherwise the intake starts it). Every record the handler makes carries the
span's ``traceparent``, so an agency event, its intents and its deliveries share one trace id. The
``tracestate`` entry ``sambus=o<ms>`` carries when the agency event reached Kafka, for the end-to-end
latency metric. Nothing personal is put in a span: its attributes are the stage, topic kind and offsets.

Spans are recorded for whoever deploys sambus with an exporter: a global SDK tracer provider, or a span
processor added to :func:`tracer_provider`. Until then nobody would see them, and a stage makes none: the
record's span context (a new span id under the received trace, sampled as the provider's sampler says,
which honours ``OTEL_TRACES_SAMPLER``) is current while the handler runs, so ``traceparent`` and the trace
ids in log lines are the same as with a recorded span, at a fraction of its cost (an SDK span per record
was about a tenth of the delivery stage's CPU).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiokafka.structs import ConsumerRecord
from opentelemetry import context, trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind

from sambus.contracts.topics import Header, RecordHeaders
from sambus.router.kafka.records import Outgoing
from sambus.router.ops.metrics import METRICS, Metrics, topic_kind

TRACESTATE = "tracestate"
_ORIGIN_KEY = "sambus"
_HANDLED_HEADERS = {Header.TRACEPARENT, TRACESTATE}

Handler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[list[Outgoing]]]


class _OwnProvider(TracerProvider):
    """The provider sambus makes when none is installed: it knows whether anyone added a span processor."""

    exporting = False

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        """Add ``span_processor`` (an exporter): from now on spans are recorded for it."""
        super().add_span_processor(span_processor)
        self.exporting = True


@functools.cache
def tracer_provider() -> TracerProvider:
    """This process's tracer provider: the global one when an SDK provider is installed, else our own.

    An exporter (OTLP, console) is added by whoever deploys sambus, with ``add_span_processor``.
    """
    current = trace.get_tracer_provider()
    return current if isinstance(current, TracerProvider) else _OwnProvider()


def _records_spans(provider: TracerProvider) -> bool:
    """Whether spans are recorded: a provider installed by the deployer, or ours with a span processor."""
    return not isinstance(provider, _OwnProvider) or provider.exporting


@functools.cache
def _tracer() -> trace.Tracer:
    return tracer_provider().get_tracer("sambus.router")


def _headers_dict(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """The trace headers of a record as text (where a name repeats, its first value counts)."""
    return {
        name: value
        for name in _HANDLED_HEADERS
        if (value := RecordHeaders.first_text(headers, name, errors="replace")) is not None
    }


def origin_ms(record: ConsumerRecord[bytes, bytes]) -> int:
    """When the record's agency event reached Kafka (from ``tracestate``, else the record's own time)."""
    return _origin(_headers_dict(record.headers).get(TRACESTATE, ""), record.timestamp)


def _origin(state: str, timestamp: int) -> int:
    for entry in state.split(","):
        key, _, value = entry.strip().partition("=")
        if key == _ORIGIN_KEY and value.startswith("o") and value[1:].isdigit():
            return int(value[1:])
    return int(timestamp)


def _tracestate(origin: int, incoming: str) -> str:
    others = [
        e.strip() for e in incoming.split(",") if e.strip() and not e.strip().startswith(f"{_ORIGIN_KEY}=")
    ]
    return ",".join([f"{_ORIGIN_KEY}=o{origin}", *others[:31]])


def stamp(outgoing: Sequence[Outgoing], *, origin: int, incoming_state: str = "") -> list[Outgoing]:
    """The records with the current span's ``traceparent`` and the origin time in ``tracestate``."""
    carrier: dict[str, str] = {}
    inject(carrier)
    trace_headers: tuple[tuple[str, bytes], ...] = (
        ((Header.TRACEPARENT, carrier[Header.TRACEPARENT].encode("ascii")),)
        if Header.TRACEPARENT in carrier
        else ()
    )
    trace_headers += ((TRACESTATE, _tracestate(origin, incoming_state).encode("ascii")),)
    return [
        Outgoing(
            topic=out.topic,
            value=out.value,
            key=out.key,
            headers=(*RecordHeaders(out.headers).without(_HANDLED_HEADERS), *trace_headers),
        )
        for out in outgoing
    ]


async def traced(
    stage: str, handler: Handler, record: ConsumerRecord[bytes, bytes], *, metrics: Metrics = METRICS
) -> list[Outgoing]:
    """Run ``handler`` on ``record`` in a span continuing the record's trace; count and stamp what it made."""
    metrics.consumed(stage, record)
    incoming = _headers_dict(record.headers)
    kind = topic_kind(record.topic)
    name = f"{stage} {kind}"
    parent = extract(incoming)
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.destination.name": kind,
        "messaging.kafka.destination.partition": record.partition,
        "messaging.kafka.message.offset": record.offset,
    }
    provider = tracer_provider()
    state = incoming.get(TRACESTATE, "")
    origin = _origin(state, record.timestamp)
    if _records_spans(provider):
        with _tracer().start_as_current_span(
            name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        ):
            outgoing = stamp(await handler(record), origin=origin, incoming_state=state)
    else:
        span = _unrecorded_span(provider, parent, name, attributes)
        token = context.attach(trace.set_span_in_context(span))
        try:
            outgoing = stamp(await handler(record), origin=origin, incoming_state=state)
        finally:
            context.detach(token)
    metrics.produced(stage, outgoing)
    deliveries = sum(1 for out in outgoing if topic_kind(out.topic) == "deliver")
    if deliveries:
        waited = time.time() - origin / 1000  # the input's deliveries were all made just now
        for _ in range(deliveries):
            metrics.delivered_after(waited)
    return outgoing


def _unrecorded_span(
    provider: TracerProvider, parent: context.Context, name: str, attributes: dict[str, str | int]
) -> NonRecordingSpan:
    """The span the SDK would start under ``parent``, not recorded: its ids and flags, no span object.

    As :meth:`opentelemetry.sdk.trace.Tracer.start_span` (SDK 1.45) makes them: the parent's trace id (else
    a new one), a new span id, the sampled flag and trace state as ``provider``'s sampler decides, the
    random-trace-id flag as the parent's (else the id generator's).
    """
    parent_context = trace.get_current_span(parent).get_span_context()
    ids = provider.id_generator
    if parent_context.is_valid:
        trace_id, random_id = parent_context.trace_id, parent_context.trace_flags.random_trace_id
    else:
        trace_id, random_id = ids.generate_trace_id(), ids.is_trace_id_random()
    sampling = provider.sampler.should_sample(
        parent, trace_id, name, kind=SpanKind.CONSUMER, attributes=attributes
    )
    flags = trace.TraceFlags.SAMPLED if sampling.decision is Decision.RECORD_AND_SAMPLE else 0
    if random_id:
        flags |= trace.TraceFlags.RANDOM_TRACE_ID
    return NonRecordingSpan(
        SpanContext(
            trace_id=trace_id,
            span_id=ids.generate_span_id(),
            is_remote=False,
            trace_flags=trace.TraceFlags(flags),
            trace_state=sampling.trace_state,
        )
    )
