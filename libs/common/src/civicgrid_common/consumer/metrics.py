"""Prometheus metrics of the consumer runtime (default registry, served at /metrics)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

CONSUMER_LAG = Gauge(
    "civicgrid_consumer_lag",
    "Records not yet handled: log end offset minus the consumer's position.",
    ["group", "topic", "partition"],
)
EVENTS = Counter(
    "civicgrid_consumer_events",
    "Records the consumer finished with, by outcome (handled, duplicate, dead_lettered).",
    ["group", "topic", "outcome"],
)
RETRIES = Counter(
    "civicgrid_consumer_retries",
    "Handler attempts that failed and were retried after a backoff.",
    ["group", "topic"],
)
DEAD_LETTERS = Counter(
    "civicgrid_consumer_dead_letters",
    "Records sent to the dead-letter topic, by reason (malformed, poison or handler_failed).",
    ["group", "topic", "reason"],
)
LAST_PROGRESS = Gauge(
    "civicgrid_consumer_last_progress_timestamp_seconds",
    "When the consumer last handled a record or was found caught up (Unix time).",
    ["group"],
)
RECOVERIES = Counter(
    "civicgrid_consumer_recoveries",
    "Times the watchdog found the consumer stalled and recreated it, by reason.",
    ["group", "reason"],
)
