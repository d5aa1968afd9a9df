"""Prometheus metrics of projections (default registry)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

POSITION = Gauge(
    "civicgrid_projection_position",
    "Next offset a projection version will apply, per topic partition (its checkpoint).",
    ["projection", "version", "topic", "partition"],
)
ACTIVE_VERSION = Gauge(
    "civicgrid_projection_active_version",
    "The projection version readers currently see.",
    ["projection"],
)
SKIPPED = Counter(
    "civicgrid_projection_skipped_records",
    "Records a projection could not decode as CloudEvents and passed over.",
    ["projection", "topic"],
)
