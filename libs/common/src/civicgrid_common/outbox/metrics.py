"""Prometheus metrics of the outbox relay (default registry, served by every service's /metrics)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

OUTBOX_LAG = Gauge(
    "civicgrid_outbox_lag_events",
    "Outbox rows written but not yet acknowledged by Kafka",
    ["relay"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "civicgrid_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest outbox row not yet acknowledged by Kafka (0 when none)",
    ["relay"],
)
OUTBOX_PUBLISHED = Counter(
    "civicgrid_outbox_published_total",
    "Outbox rows published to Kafka and acknowledged (a row resent after a crash counts again)",
    ["relay"],
)
RELAY_ERRORS = Counter(
    "civicgrid_outbox_relay_errors_total",
    "Relay cycles that failed (database or Kafka error); the batch is retried from the checkpoint",
    ["relay"],
)
