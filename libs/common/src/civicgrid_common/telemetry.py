"""Traces, logs and the glue between them.

- `setup_telemetry(settings)` once per process: an OpenTelemetry TracerProvider named after
  the service (spans go to an OTLP collector if CIVICGRID_OTLP_ENDPOINT is set), spans for
  every asyncpg query, and JSON logs. HTTP requests get their spans from FastAPI's own
  telemetry (web.app's http_telemetry), which uses this provider once it is set, and their
  metrics from `request_meter_provider()`.
- Kafka hops carry W3C `traceparent`: `inject_traceparent()` when producing,
  `context_from_headers(record.headers)` when consuming, so one trace runs from the window
  to the department.
- Every log line passes `PersonalDataFilter`: resident ID numbers and mobile numbers are
  replaced before anything is written, whatever the message, its arguments or its extras.
"""
from __future__ import annotations

import logging
import re
import sys
import threading
from functools import lru_cache
from typing import Any, Iterable, TextIO

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pythonjsonlogger.json import JsonFormatter

from civicgrid_common.settings import PlatformSettings

_propagator = TraceContextTextMapPropagator()
_setup_lock = threading.Lock()
_provider: TracerProvider | None = None


# --- tracing ---------------------------------------------------------------------------------

def setup_telemetry(settings: PlatformSettings) -> TracerProvider:
    """Configure tracing and logging for this process (idempotent)."""
    global _provider
    with _setup_lock:
        if _provider is None:
            _provider = make_tracer_provider(settings)
            trace.set_tracer_provider(_provider)
            instrumentor = AsyncPGInstrumentor()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument()
        setup_logging(settings)
    return _provider


@lru_cache(maxsize=1)
def request_meter_provider() -> MeterProvider:
    """The process's MeterProvider for HTTP request metrics, made once: its reader registers
    with prometheus_client's default registry (served at /metrics), and a second one would
    register the same metrics again. Every app of the process (tests build many) records to it."""
    return MeterProvider(metric_readers=[PrometheusMetricReader()])


def make_tracer_provider(settings: PlatformSettings) -> TracerProvider:
    resource = Resource.create({
        "service.name": settings.service_name,
        "deployment.environment": settings.environment,
    })
    provider = TracerProvider(resource=resource)
    # First, so that whatever exports a span reads it redacted.
    provider.add_span_processor(PersonalDataSpanProcessor())
    if settings.otlp_endpoint:
        # Imported only when used: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


class PersonalDataSpanProcessor(SpanProcessor):
    """Redacts resident ID numbers and mobile numbers from the request attributes a span starts
    with (`url.query`, `url.path`, ...): a caller's `?phone=` must not reach the tracing backend
    when the logs never show it. Spans are read-only once ended, so this acts when they start,
    which is when the HTTP spans get these attributes."""

    ATTRIBUTES = ("url.query", "url.path", "url.full", "http.target", "http.url")

    def on_start(self, span: Any, parent_context: otel_context.Context | None = None) -> None:
        attributes = span.attributes or {}
        for key in self.ATTRIBUTES:
            value = attributes.get(key)
            if isinstance(value, str) and (cleaned := redact(value)) != value:
                span.set_attribute(key, cleaned)


def inject_traceparent() -> str | None:
    """The current span's W3C traceparent, to send along with a Kafka record (None outside a span)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def context_from_headers(headers: Iterable[tuple[str, bytes]]) -> otel_context.Context:
    """The trace context of a consumed Kafka record, to start the handling span in:

        with tracer.start_as_current_span("handle", context=context_from_headers(msg.headers)):
    """
    carrier = {
        key.lower(): value.decode("latin-1")
        for key, value in headers or ()
        if key.lower() in ("traceparent", "tracestate") and value is not None
    }
    return _propagator.extract(carrier)


# --- personal data out of the logs -------------------------------------------------------------

# Resident ID: 17 digits and a check character (digit or X), not part of a longer token.
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])")
# Mainland mobile: 1[3-9] and 9 more digits, optionally +86 and spaced 3-4-4.
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
RESIDENT_ID_MASK = "[resident-id]"
MOBILE_MASK = "[mobile]"


def redact(text: str) -> str:
    """`text` with resident ID numbers and mobile numbers replaced by placeholders."""
    return _MOBILE.sub(MOBILE_MASK, _RESIDENT_ID.sub(RESIDENT_ID_MASK, text))


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(v) for v in value)
    return value


_STANDARD_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class PersonalDataFilter(logging.Filter):
    """Redacts personal data from a record's message, arguments, extras and traceback.

    The message is rendered with its arguments first and the result redacted, so a number
    passed as an int, or inside an object's str(), is caught too. Attach it to handlers
    (a logger's own filters do not see records propagated from child loggers)."""

    _exception_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_RECORD_ATTRS:
                setattr(record, key, _redact_value(value))
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(self._exception_formatter.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class TraceContextFilter(logging.Filter):
    """Adds trace_id and span_id (hex, as tracing UIs show them) of the current span."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else None
        return True


def json_log_handler(settings: PlatformSettings, stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(PersonalDataFilter())
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        static_fields={"service": settings.service_name},
    ))
    handler.set_name("civicgrid-json")
    return handler


def setup_logging(settings: PlatformSettings, stream: TextIO | None = None) -> logging.Handler:
    """Route every log record (ours, uvicorn's, libraries') through one redacting JSON handler."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "civicgrid-json":
            root.removeHandler(existing)
    handler = json_log_handler(settings, stream)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # uvicorn installs its own handlers; let its records reach ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler
