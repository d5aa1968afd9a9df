"""Prometheus metrics of the durable timers (default registry, served by every service's /metrics)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

TIMERS_DUE = Gauge(
    "civicgrid_timers_due",
    "Timers past their due time and not fired yet: waiting for a worker, backing off after a failure, or "
    "being fired right now (refreshed after every pass of a worker).",
    ["owner"],
)
TIMERS_OLDEST_DUE_AGE = Gauge(
    "civicgrid_timers_oldest_due_age_seconds",
    "How long the oldest due-but-unfired timer has been due (0 when none): how late deadlines fire.",
    ["owner"],
)
TIMERS_PARKED = Gauge(
    "civicgrid_timers_parked",
    "Timers whose handler failed max_attempts times: not retried any more, waiting for an operator.",
    ["owner"],
)
TIMERS_FIRED = Counter(
    "civicgrid_timers_fired",
    "Timers fired: the handler's effect and the fired mark committed together.",
    ["owner", "kind"],
)
TIMERS_FAILURES = Counter(
    "civicgrid_timers_failures",
    "Handler runs that raised, by what followed (retry after a backoff, or parked).",
    ["owner", "kind", "outcome"],
)
