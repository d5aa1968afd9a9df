"""Window alerts (预警): N events of one kind in one community within a sliding window. Pure.

- complaint_surge: complaints received of one category in one community;
- overdue_run: approval tasks gone overdue in one community.

A surge is raised once. A later window that reaches the threshold belongs to the same surge
when it overlaps or touches (within one window length) the span the surge has covered so far;
otherwise it is a new surge and raises a new alert. Every surge's span is kept, so the order in
which events arrive does not matter for a surge's own events. One limit remains: late events
that bridge two surges already raised show that they were one; both alerts have gone out (an
alert is not taken back), their spans merge and nothing more is raised for either.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from civicgrid_common.aggregate import Aggregate, applies

from civicgrid_statistics.domain.facts import Fact

RAISED = "civicgrid.statistics.alert.raised.v1"


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


@dataclass(frozen=True)
class Span:
    """What one raised alert (one surge) of a key has covered so far: from its first full
    window's start to the end of the last full window that belonged to it."""

    alert: int  # the alert's version in the key's stream: which surge
    start: datetime
    until: datetime


@dataclass(frozen=True)
class SurgeDecision:
    """What a full window means for a key's surges: a new surge (`raise_alert`), or the spans it
    belongs to, widened to `span` (several when late events show that two surges were one)."""

    raise_alert: bool
    span: Span | None  # the span the window now lies in (None when a new alert is to be raised)
    absorbed: tuple[Span, ...] = ()  # the spans merged into `span` (their rows go)


def decide_surge(spans: Sequence[Span], window_start: datetime, window_end: datetime,
                 window: timedelta) -> SurgeDecision:
    """Every surge a key has had is remembered, not only the last: a late event of an earlier
    surge (arriving after a later surge was raised, e.g. from another partition or after a
    worker was killed) finds its own surge's span and raises nothing."""
    belonging = [s for s in spans if same_surge(Covered(s.start, s.until), window_start, window_end, window)]
    if not belonging:
        return SurgeDecision(True, None)
    first, *others = sorted(belonging, key=lambda s: s.alert)
    merged = Span(first.alert, min([window_start, *(s.start for s in belonging)]),
                  max([window_end, *(s.until for s in belonging)]))
    return SurgeDecision(False, merged, tuple(others))


class AlertLog(Aggregate):
    """The alerts raised for one key (kind, community, category): stream `alert:<kind>:...`."""

    stream_type = "alert"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.raised = 0

    def raise_alert(self, key: AlertKey, rule: WindowRule, *, count: int, window_start: datetime,
                    window_end: datetime, triggering_event: str) -> None:
        if key.stream_id != self.id:
            raise ValueError(f"an alert of {key.stream_id} does not belong in {self.id}")
        self._emit(RAISED, {
            "alert_kind": key.kind, "community": key.community, "category": key.category, "count": count,
            "threshold": rule.threshold, "window_minutes": int(rule.window / timedelta(minutes=1)),
            "window_start": window_start.isoformat(), "window_end": window_end.isoformat(),
            "triggering_event": triggering_event})

    @applies(RAISED)
    def _raised(self, _: Mapping[str, Any]) -> None:
        self.raised += 1
