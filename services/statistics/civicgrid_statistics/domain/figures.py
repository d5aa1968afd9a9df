"""Shaping figures for leaders' charts and the few numbers SQL does not give. Pure: no I/O."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Mapping, Sequence

from civicgrid_common.calendar import WorkingCalendar

Period = Literal["day", "week", "month"]
# What a figure can be grouped by: a level of the jurisdiction tree (its code's prefix), a
# dimension of the case or complaint, or a period of the date it was registered or received.
JURISDICTION_LEVELS: dict[str, int] = {"district": 6, "street": 9, "community": 12, "grid": 15}
CASE_GROUPS = ("all", "affair", "channel", *JURISDICTION_LEVELS, "day", "week", "month")
COMPLAINT_GROUPS = ("all", "category", "channel", "department", "urgency", *JURISDICTION_LEVELS, "day", "week", "month")
GRID_GROUPS = ("all", *JURISDICTION_LEVELS, "day", "week", "month")
SATISFACTION_LEVELS = ("very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied")


@dataclass(frozen=True)
class Filters:
    jurisdiction: str | None = None   # a code; everything whose jurisdiction starts with it
    affair: str | None = None
    category: str | None = None
    channel: str | None = None
    date_from: date | None = None     # inclusive, China date of registration / receipt
    date_to: date | None = None       # inclusive
    scopes: tuple[str, ...] = field(default_factory=tuple)  # the caller's jurisdictions (any of)


def rate(part: int, whole: int) -> float | None:
    """part / whole rounded to 4 places; None when there is nothing to divide by."""
    return round(part / whole, 4) if whole else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (as PostgreSQL's percentile_cont), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def handling_days(spans: Sequence[tuple[date, date]], calendar: WorkingCalendar) -> list[int]:
    """Working days from acceptance to completion for each (accepted, completed) pair."""
    return [calendar.working_days_between(a, c) for a, c in spans]


def chart(groups: Sequence[Mapping[str, Any]], measure: str) -> dict[str, Any]:
    """Pie/bar shape: labels, values and each value's share of their sum."""
    labels = [str(g["label"]) for g in groups]
    values = [g.get(measure) or 0 for g in groups]
    total = sum(values)
    return {"measure": measure, "labels": labels, "values": values,
            "shares": [round(v / total, 4) if total else 0.0 for v in values]}
