"""Window alerts (预警): N events of one kind in one community within a sliding window. Pure.

- complaint_surge: complaints received of one category in one community;
- overdue_run: approval tasks gone overdue in one community.

A surge is raised once. A later window that reaches the threshold belongs to the same surge
when it overlaps or touches (within one window length) the span the surge has covered so far;
otherwise it is a new surge and raises a new alert.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from civicgrid_statistics.domain.facts import Fact


@dataclass(frozen=True)
class WindowRule:
    kind: str  # complaint_surge | overdue_run
    threshold: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.window <= timedelta(0):
            raise ValueError("an alert needs a threshold of at least 1 and a positive window")


@dataclass(frozen=True)
class AlertKey:
    kind: str
    community: str
    category: str | None

    @property
    def stream_id(self) -> str:
        return f"alert:{self.kind}:{self.community}:{self.category or '-'}"


@dataclass(frozen=True)
class Covered:
    """What the last alert of a key has covered: from its first window's start to the last end."""
    start: datetime
    until: datetime


def community_of(jurisdiction: object) -> str | None:
    return jurisdiction[:12] if isinstance(jurisdiction, str) and len(jurisdiction) >= 12 else None


def complaint_key(fact: Fact) -> AlertKey | None:
    if fact.kind != "intake.complaint.received":
        return None
    community = community_of(fact.data.get("jurisdiction"))
    category = fact.data.get("category")
    if community is None or not isinstance(category, str):
        return None
    return AlertKey("complaint_surge", community, category)


def same_surge(covered: Covered | None, window_start: datetime, window_end: datetime, window: timedelta) -> bool:
    if covered is None:
        return False
    return window_start <= covered.until + window and window_end >= covered.start - window
