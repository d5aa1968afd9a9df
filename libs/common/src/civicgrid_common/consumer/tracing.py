"""Continue a trace from a consumed record's W3C `traceparent` header, if OpenTelemetry is there.

OpenTelemetry is optional for the consumer runtime: without it (or without a configured
tracer provider) handling simply runs without spans.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

try:
    from opentelemetry import trace
    from opentelemetry.propagators.textmap import Getter
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised only where opentelemetry is absent
    trace = None  # type: ignore[assignment]


if trace is not None:

    class KafkaHeadersGetter(Getter[Sequence[tuple[str, bytes]]]):
        """Reads propagation fields from Kafka headers (a list of (name, bytes) pairs)."""

        def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
            found = [v.decode("latin-1") for n, v in carrier or () if n.lower() == key.lower() and v is not None]
            return found or None

        def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
            return [n for n, _ in carrier or ()]

    _propagator = TraceContextTextMapPropagator()
    _getter = KafkaHeadersGetter()
    _tracer = trace.get_tracer("civicgrid_common.consumer")


@contextlib.contextmanager
def handling_span(
    headers: Sequence[tuple[str, bytes]], *, topic: str, partition: int, offset: int, group: str,
    event_type: str | None,
) -> Iterator[Any]:
    """A CONSUMER span in the trace the record's producer started (no-op without OpenTelemetry)."""
    if trace is None:
        yield None
        return
    parent = _propagator.extract(headers, getter=_getter)
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation": "process",
        "messaging.destination.name": topic,
        "messaging.kafka.destination.partition": partition,
        "messaging.kafka.message.offset": offset,
        "messaging.kafka.consumer.group": group,
    }
    if event_type:
        attributes["cloudevents.event_type"] = event_type
    with _tracer.start_as_current_span(
        f"{topic} process", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span
