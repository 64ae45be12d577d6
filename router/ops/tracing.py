"""W3C trace context across Kafka: each stage continues the trace it received and passes it on.

A stage's handler runs inside a span whose parent is the record's ``traceparent`` header (a source
system may start the trace; otherwise the intake starts it). Every record the handler makes carries the
span's ``traceparent``, so an agency event, its intents and its deliveries share one trace id. The
``tracestate`` entry ``sambus=o<ms>`` carries when the agency event reached Kafka, for the end-to-end
latency metric. Nothing personal is put in a span: its attributes are the stage, topic kind and offsets.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace

from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from sambus.contracts.topics import Header, RecordHeaders
from sambus.router.kafka.records import Outgoing
from sambus.router.ops.metrics import METRICS, Metrics, topic_kind

TRACESTATE = "tracestate"
_ORIGIN_KEY = "sambus"
_HANDLED_HEADERS = {Header.TRACEPARENT, TRACESTATE}

Handler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[list[Outgoing]]]


@functools.cache
def tracer_provider() -> TracerProvider:
    """This process's tracer provider: the global one when an SDK provider is installed, else our own.

    An exporter (OTLP, console) is added by whoever deploys sambus, with ``add_span_processor``.
    """
    current = trace.get_tracer_provider()
    return current if isinstance(current, TracerProvider) else TracerProvider()


@functools.cache
def _tracer() -> trace.Tracer:
    return tracer_provider().get_tracer("sambus.router")


def _headers_dict(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    read = RecordHeaders.of(headers)
    return {
        name: value for name in _HANDLED_HEADERS if (value := read.text(name, errors="replace")) is not None
    }


def origin_ms(record: ConsumerRecord[bytes, bytes]) -> int:
    """When the record's agency event reached Kafka (from ``tracestate``, else the record's own time)."""
    state = _headers_dict(record.headers).get(TRACESTATE, "")
    for entry in state.split(","):
        key, _, value = entry.strip().partition("=")
        if key == _ORIGIN_KEY and value.startswith("o") and value[1:].isdigit():
            return int(value[1:])
    return int(record.timestamp)


def _tracestate(origin: int, incoming: str) -> str:
    others = [
        e.strip() for e in incoming.split(",") if e.strip() and not e.strip().startswith(f"{_ORIGIN_KEY}=")
    ]
    return ",".join([f"{_ORIGIN_KEY}=o{origin}", *others[:31]])


def stamp(outgoing: Sequence[Outgoing], *, origin: int, incoming_state: str = "") -> list[Outgoing]:
    """The records with the current span's ``traceparent`` and the origin time in ``tracestate``."""
    carrier: dict[str, str] = {}
    inject(carrier)
    trace_headers = (
        [(Header.TRACEPARENT, carrier[Header.TRACEPARENT].encode("ascii"))]
        if Header.TRACEPARENT in carrier
        else []
    )
    trace_headers.append((TRACESTATE, _tracestate(origin, incoming_state).encode("ascii")))
    return [
        replace(out, headers=(*RecordHeaders.of(out.headers).without(_HANDLED_HEADERS), *trace_headers))
        for out in outgoing
    ]


async def traced(
    stage: str, handler: Handler, record: ConsumerRecord[bytes, bytes], *, metrics: Metrics = METRICS
) -> list[Outgoing]:
    """Run ``handler`` on ``record`` in a span continuing the record's trace; count and stamp what it made."""
    metrics.consumed(stage, record)
    incoming = _headers_dict(record.headers)
    with _tracer().start_as_current_span(
        f"{stage} {topic_kind(record.topic)}",
        context=extract(incoming),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic_kind(record.topic),
            "messaging.kafka.destination.partition": record.partition,
            "messaging.kafka.message.offset": record.offset,
        },
    ):
        origin = origin_ms(record)
        outgoing = stamp(await handler(record), origin=origin, incoming_state=incoming.get(TRACESTATE, ""))
    metrics.produced(stage, outgoing)
    deliveries = sum(1 for out in outgoing if topic_kind(out.topic) == "deliver")
    for _ in range(deliveries):
        metrics.delivered_after(time.time() - origin / 1000)
    return outgoing
