"""Facts: what statistics keeps of an event (事实). Pure: no I/O.

Every figure is a function of a set of facts keyed by event id. A fact keeps the event's id,
its kind, the aggregate it concerns, when it was recorded (for "as of") and when it happened
(for periods), and only the fields a figure needs: no description, no location, no applicant.

An event type statistics does not know (a new approval action, a later major version) is
counted as nothing: `fact_of` returns None and the event changes no figure.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

_TYPE = re.compile(r"^civicgrid\.(?P<kind>[a-z_]+\.[a-z_]+\.[a-z_]+)\.v(?P<major>[0-9]+)$")

# kind -> (major version understood, the payload field that says when it happened)
KNOWN: dict[str, tuple[int, str | None]] = {
    # intake's cases (办件)
    "intake.case.registered": (1, "registered_at"),
    "intake.case.accepted": (1, "accepted_at"),
    "intake.case.refused": (1, "refused_at"),
    "intake.case.supplement_requested": (1, "recorded_at"),
    "intake.case.supplemented": (1, "supplemented_at"),
    "intake.case.routed": (1, "routed_at"),
    "intake.case.green_channelled": (1, "green_channelled_at"),
    "intake.case.withdrawn": (1, "withdrawn_at"),
    "intake.case.completed": (1, "completed_at"),
    "intake.case.certificate_issued": (1, "issued_at"),
    "intake.case.archived": (1, "archived_at"),
    "intake.case.rated": (1, "rated_at"),
    "intake.case.follow_up_opened": (1, "opened_at"),
    "intake.case.applicant_called_back": (1, "called_back_at"),
    "intake.case.follow_up_closed": (1, "closed_at"),
    # intake's complaints (投诉/诉求)
    "intake.complaint.received": (1, "received_at"),
    "intake.complaint.routed": (1, "routed_at"),
    "intake.complaint.responded": (1, "responded_at"),
    "intake.complaint.answered": (1, "answered_at"),
    "intake.complaint.closed": (1, "closed_at"),
    "intake.complaint.rated": (1, "rated_at"),
    "intake.complaint.reopened": (1, "reopened_at"),
    # approval's moves (审批)
    "approval.approval.started": (1, "started_at"),
    "approval.approval.acted": (1, "acted_at"),
    "approval.approval.resumed": (1, "resumed_at"),
    "approval.approval.overdue": (1, "overdue_at"),
    "approval.approval.supplement_requested": (1, "requested_at"),
    "approval.approval.concluded": (1, "decided_at"),
}

# The payload fields any figure reads; everything else stays out of the fact store.
KEPT_FIELDS = frozenset({
    "jurisdiction", "affair_code", "channel", "category", "urgency", "actor", "actor_role", "level",
    "time_limit_working_days", "due_date", "outcome", "action", "step", "round", "bad_review",
    "rating", "satisfied", "final", "resolved", "on_time", "by", "response_seconds",
    "handling_seconds", "fixed_on_time", "final_status", "green_channel", "decided_by",
    "requested_by", "resumed_by", "started_by", "case_id", "feedback_due_at",
})
# level of a case's rating is the review level; keep it under a name that says so.
_RENAMED = {("intake.case.rated", "level"): "rating"}


@dataclass(frozen=True)
class Fact:
    event_id: str
    kind: str
    subject: str  # the case or complaint it concerns (approval's events: the case, not the approval)
    recorded_at: datetime  # when the platform recorded it: "as of" compares with this
    occurred_at: datetime  # when it happened in the domain: periods group by this
    data: Mapping[str, Any] = field(default_factory=dict)


def kind_of(event_type: str) -> str | None:
    """'civicgrid.intake.case.accepted.v1' -> 'intake.case.accepted', if statistics counts it."""
    m = _TYPE.match(event_type)
    if not m:
        return None
    known = KNOWN.get(m["kind"])
    if known is None or known[0] != int(m["major"]):
        return None
    return m["kind"]


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def fact_of(event_id: str, event_type: str, subject: str | None, recorded_at: datetime | None,
            data: Any) -> Fact | None:
    """The fact an event contributes, or None if it counts for nothing."""
    kind = kind_of(event_type)
    if kind is None or not isinstance(data, Mapping):
        return None
    about = data.get("case_id") if kind.startswith("approval.") else subject
    if not isinstance(about, str) or not about:
        return None
    happened = _instant(data.get(KNOWN[kind][1] or "")) or recorded_at
    if happened is None:
        return None
    kept = {_RENAMED.get((kind, k), k): v for k, v in data.items() if k in KEPT_FIELDS}
    if kind == "intake.complaint.routed" and isinstance(data.get("routing"), Mapping):
        kept["department"] = _department(data["routing"])
    return Fact(event_id=event_id, kind=kind, subject=about, recorded_at=recorded_at or happened,
                occurred_at=happened, data=kept)


def _department(routing: Mapping[str, Any]) -> str:
    """Who handles a routed complaint: 'street', the department, or the lead department."""
    kind = routing.get("kind")
    value = routing.get("department") if kind == "department" else routing.get("lead") if kind == "lead" else None
    return value if isinstance(value, str) else "street"
