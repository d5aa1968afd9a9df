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
    # grid's incidents (网格事件), daily reports, disputes and the access system (准入)
    **{f"grid.incident.{step}": (1, "at") for step in (
        "reported", "created", "dispatched", "deferred", "fed_back", "closed", "rework_ordered", "evaluated",
        "deadline_warned", "overdue")},
    "grid.daily_report.submitted": (1, "at"),
    "grid.daily_report.missing": (1, "at"),
    **{f"grid.dispute.{step}": (1, "at") for step in ("filed", "mediated", "followed_up", "settled", "referred")},
    "grid.community_work.refused": (1, "at"),
    "grid.community_work.accepted": (1, "at"),
    # notifications' deliveries (通知送达): sent, delivered, each failed attempt, dead-lettered
    **{f"notifications.notification.{step}": (1, "at") for step in ("sent", "delivered", "failed", "dead_lettered")},
}

# The payload fields any figure reads; everything else stays out of the fact store.
KEPT_FIELDS = frozenset({
    "jurisdiction", "affair_code", "channel", "category", "urgency", "actor", "actor_role", "level",
    "time_limit_working_days", "due_date", "outcome", "action", "step", "round", "bad_review",
    "rating", "satisfied", "final", "resolved", "on_time", "by", "response_seconds",
    "handling_seconds", "fixed_on_time", "final_status", "green_channel", "decided_by",
    "requested_by", "resumed_by", "started_by", "case_id", "feedback_due_at",
})
# What a grid fact keeps, per kind: codes, kinds, flags, counts and instants; never a description,
# a summary, a note, a reason, a result, a location, a photo or a person's name. The incident's
# grid is on its reported fact only; the KPI SQL finds it there by subject (as a case's
# jurisdiction is found on its registration), so a fact is a function of its own event alone.
GRID_KEPT: dict[str, tuple[str, ...]] = {
    "grid.incident.reported": ("grid", "source", "urgent", "classification", "observed_at"),
    "grid.incident.created": ("urgent", "reclassified", "on_time", "classification"),
    "grid.incident.dispatched": ("handler", "handling_due", "on_time"),
    "grid.incident.deferred": (),
    "grid.incident.fed_back": ("handler", "on_time", "verification_due"),
    "grid.incident.closed": ("verified_on_time", "on_time", "rework_count"),
    "grid.incident.rework_ordered": ("verified_on_time", "rework"),
    "grid.incident.evaluated": ("level",),
    "grid.incident.deadline_warned": ("limit", "due"),
    "grid.incident.overdue": ("limit", "due"),
    "grid.daily_report.submitted": ("grid", "date", "all_safe", "late", "incidents"),
    "grid.daily_report.missing": ("grid", "date", "check_at"),
    "grid.dispute.filed": ("grid", "nature", "urgency", "parties"),
    "grid.dispute.mediated": ("outcome",),
    "grid.dispute.followed_up": ("holding",),
    "grid.dispute.settled": ("mediations",),
    "grid.dispute.referred": ("to", "mediated"),
    "grid.community_work.refused": ("community", "department", "work_kind"),
    "grid.community_work.accepted": ("community", "department", "work_kind"),
}
# What a delivery's fact keeps: its district, channel and department, when it was recorded, its
# attempts and the status code answered (the events carry no person and no text to begin with).
NOTIFICATION_KEPT = frozenset({"district", "channel", "department", "recipient_kind", "recorded_at", "attempts",
                               "attempt", "status_code", "last_status_code", "reason", "endpoint_disabled"})
# Of a nested member, only these keys: the class's key (not its names or limit), the handler's code.
_GRID_NESTED = {"classification": ("kind", "major", "minor"), "handler": ("kind", "code")}

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
    if kind.startswith("notifications."):
        return Fact(event_id=event_id, kind=kind, subject=about, recorded_at=recorded_at or happened,
                    occurred_at=happened, data={k: v for k, v in data.items() if k in NOTIFICATION_KEPT})
    if kind.startswith("grid."):
        return Fact(event_id=event_id, kind=kind, subject=about, recorded_at=recorded_at or happened,
                    occurred_at=happened, data=_grid_kept(kind, data))
    kept = {_RENAMED.get((kind, k), k): v for k, v in data.items() if k in KEPT_FIELDS}
    if kind == "intake.complaint.routed" and isinstance(data.get("routing"), Mapping):
        kept["department"] = _department(data["routing"])
    return Fact(event_id=event_id, kind=kind, subject=about, recorded_at=recorded_at or happened,
                occurred_at=happened, data=kept)


def _grid_kept(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name in GRID_KEPT[kind]:
        if name not in data:
            continue
        value = data[name]
        if name in _GRID_NESTED:
            value = {k: value[k] for k in _GRID_NESTED[name] if k in value} if isinstance(value, Mapping) else None
        elif name == "incidents":  # a daily report's incident ids: how many, not which
            name, value = "incidents_found", len(value) if isinstance(value, list) else None
        kept[name] = value
    return kept


def _department(routing: Mapping[str, Any]) -> str:
    """Who handles a routed complaint: 'street', the department, or the lead department."""
    kind = routing.get("kind")
    value = routing.get("department") if kind == "department" else routing.get("lead") if kind == "lead" else None
    return value if isinstance(value, str) else "street"
