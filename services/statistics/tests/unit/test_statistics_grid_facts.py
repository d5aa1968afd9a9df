"""What statistics keeps of the grid service's events: one fact per event, of the kinds the grid
KPIs read, with codes, kinds, flags, counts and instants only (never a description, a summary,
a note, a reason, a location or a photo); the grid's figures shaped from the reader's rows.

Pure: no database, no broker. The integration test test_grid_kpis_equal_a_recount shows the
same on the real stack."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, get_args

import pytest

from civicgrid_statistics.application.kpis import GRID_COUNTS, KpiService
from civicgrid_statistics.domain.facts import GRID_KEPT, KNOWN, fact_of, kind_of
from civicgrid_statistics.domain.figures import GRID_GROUPS, Filters
from civicgrid_statistics.entrypoints.api.kpis import GridFigures, GridGroup, GridKpis, GridMeasure

T0 = datetime(2026, 3, 2, 1, 30, tzinfo=timezone.utc)
GRID = "320104001001001"
SECRET = "张三家门口的井盖坏了"  # free text: never in a fact
WHERE = {"lat": 32.05, "lon": 118.79}

# One event of each grid type statistics counts, with data of the grid domain's shape (its `_emit`s).
EVENTS: dict[str, dict[str, Any]] = {
    "civicgrid.grid.incident.reported.v1": {
        "source": "patrol", "source_ref": None, "classification": {"kind": "part", "major": "01", "minor": "02"},
        "location": WHERE, "grid": GRID, "urgent": False, "description": SECRET, "component_id": None,
        "photos": ["p-1"], "observed_at": T0.isoformat(), "client_id": "c-1", "by": "worker-1", "at": T0.isoformat()},
    "civicgrid.grid.incident.created.v1": {
        "classification": {"kind": "part", "major": "01", "minor": "02", "name_zh": "井盖", "name_en": "manhole cover",
                           "department": "urban_management", "limit": {"unit": "working_hours", "amount": 4},
                           "version": 3},
        "urgent": True, "reclassified": False, "on_time": True, "client_id": None, "by": "centre-1",
        "at": (T0 + timedelta(minutes=5)).isoformat()},
    "civicgrid.grid.incident.dispatched.v1": {
        "handler": {"kind": "department", "code": "urban_management"},
        "handling_due": (T0 + timedelta(hours=4)).isoformat(), "on_time": True, "note": SECRET, "client_id": None,
        "by": "centre-1", "at": (T0 + timedelta(minutes=8)).isoformat()},
    "civicgrid.grid.incident.deferred.v1": {"reason": SECRET, "client_id": None, "by": "h-1",
                                            "at": (T0 + timedelta(hours=1)).isoformat()},
    "civicgrid.grid.incident.fed_back.v1": {
        "handler": {"kind": "department", "code": "urban_management"}, "result": SECRET, "photos": ["p-2"],
        "on_time": None, "verification_due": (T0 + timedelta(hours=3)).isoformat(), "client_id": None, "by": "h-1",
        "at": (T0 + timedelta(hours=2)).isoformat()},
    "civicgrid.grid.incident.rework_ordered.v1": {
        "verified_on_time": True, "photos": [], "note": SECRET, "rework": 1, "client_id": None, "by": "worker-1",
        "at": (T0 + timedelta(hours=2, minutes=30)).isoformat()},
    "civicgrid.grid.incident.closed.v1": {
        "verified_on_time": True, "photos": ["p-3"], "note": SECRET, "on_time": None, "rework_count": 1,
        "client_id": None, "by": "worker-1", "at": (T0 + timedelta(hours=5)).isoformat()},
    "civicgrid.grid.incident.evaluated.v1": {"level": "good", "note": SECRET, "client_id": None, "by": "centre-1",
                                             "at": (T0 + timedelta(days=1)).isoformat()},
    "civicgrid.grid.incident.deadline_warned.v1": {"limit": "handling", "due": T0.isoformat(), "at": T0.isoformat()},
    "civicgrid.grid.incident.overdue.v1": {"limit": "verification", "due": T0.isoformat(), "at": T0.isoformat()},
    "civicgrid.grid.daily_report.submitted.v1": {
        "grid": GRID, "date": "2026-03-02", "all_safe": False, "incidents": ["inc-1", "inc-2"], "late": False,
        "patrol_id": "patrol-1", "client_id": "c-9", "by": "worker-1", "at": T0.isoformat()},
    "civicgrid.grid.daily_report.missing.v1": {"grid": GRID, "date": "2026-03-02",
                                               "check_at": T0.isoformat(), "at": T0.isoformat()},
    "civicgrid.grid.dispute.filed.v1": {
        "grid": GRID, "nature": "neighbourhood", "urgency": "general", "summary": SECRET, "parties": 2,
        "client_id": "c-3", "by": "worker-1", "at": T0.isoformat()},
    "civicgrid.grid.dispute.mediated.v1": {"mediator": "mediator-1", "outcome": "agreed", "note": SECRET,
                                           "client_id": None, "by": "worker-1", "at": T0.isoformat()},
    "civicgrid.grid.dispute.followed_up.v1": {"note": SECRET, "holding": True, "client_id": None, "by": "worker-1",
                                              "at": T0.isoformat()},
    "civicgrid.grid.dispute.settled.v1": {"mediations": 1, "note": SECRET, "client_id": None, "by": "worker-1",
                                          "at": T0.isoformat()},
    "civicgrid.grid.dispute.referred.v1": {"to": "judicial_office", "reason": SECRET, "mediated": False,
                                           "client_id": None, "by": "worker-1", "at": T0.isoformat()},
    "civicgrid.grid.community_work.refused.v1": {
        "community": GRID[:12], "department": "civil_affairs", "work_kind": "form_filling", "title": SECRET,
        "reason": SECRET, "at": T0.isoformat()},
    "civicgrid.grid.community_work.accepted.v1": {
        "community": GRID[:12], "department": "civil_affairs", "work_kind": "survey", "title": SECRET,
        "grant": "grant-7", "at": T0.isoformat()},
}


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_each_grid_event_is_one_fact_without_free_text(event_type: str) -> None:
    data = EVENTS[event_type]
    fact = fact_of("e-1", event_type, "incident-1", T0 - timedelta(days=1), data)
    assert fact is not None
    kind = event_type.removeprefix("civicgrid.").removesuffix(".v1")
    assert fact.kind == kind and fact.subject == "incident-1"
    # Periods group by when it happened (the data's `at`), "as of" by when it was recorded.
    assert fact.occurred_at == datetime.fromisoformat(data["at"]) and fact.recorded_at == T0 - timedelta(days=1)
    stored = json.dumps(dict(fact.data), ensure_ascii=False)
    assert SECRET not in stored
    for private in ("description", "summary", "note", "reason", "result", "location", "photos", "title", "by",
                    "client_id", "mediator", "source_ref", "patrol_id"):
        assert private not in fact.data, private
    assert set(fact.data) <= set(GRID_KEPT[kind]) | {"incidents_found"}


def test_every_grid_kind_is_known_in_major_1_and_kept_explicitly() -> None:
    grid_kinds = {k for k in KNOWN if k.startswith("grid.")}
    assert grid_kinds == set(GRID_KEPT)
    assert {f"civicgrid.{k}.v1" for k in grid_kinds} == set(EVENTS)
    assert all(KNOWN[k] == (1, "at") for k in grid_kinds)


def test_the_reported_fact_keeps_the_grid_and_the_class_key_only() -> None:
    fact = fact_of("e-1", "civicgrid.grid.incident.reported.v1", "incident-1", T0,
                   EVENTS["civicgrid.grid.incident.reported.v1"])
    assert fact is not None
    assert fact.data == {"grid": GRID, "source": "patrol", "urgent": False, "observed_at": T0.isoformat(),
                         "classification": {"kind": "part", "major": "01", "minor": "02"}}
    created = fact_of("e-2", "civicgrid.grid.incident.created.v1", "incident-1", T0,
                      EVENTS["civicgrid.grid.incident.created.v1"])
    assert created is not None and created.data["classification"] == {"kind": "part", "major": "01", "minor": "02"}


def test_the_facts_figures_read_are_kept() -> None:
    def data(t: str) -> dict[str, Any]:
        fact = fact_of("e", f"civicgrid.grid.{t}.v1", "s", T0, EVENTS[f"civicgrid.grid.{t}.v1"])
        assert fact is not None
        return dict(fact.data)

    assert data("incident.dispatched") == {"handler": {"kind": "department", "code": "urban_management"},
                                           "handling_due": (T0 + timedelta(hours=4)).isoformat(), "on_time": True}
    assert data("incident.closed") == {"verified_on_time": True, "on_time": None, "rework_count": 1}
    assert data("incident.rework_ordered") == {"verified_on_time": True, "rework": 1}
    assert data("incident.deferred") == {}
    # A daily report keeps how many incidents it found, not which.
    assert data("daily_report.submitted") == {"grid": GRID, "date": "2026-03-02", "all_safe": False, "late": False,
                                              "incidents_found": 2}
    assert data("daily_report.missing") == {"grid": GRID, "date": "2026-03-02", "check_at": T0.isoformat()}
    assert data("dispute.filed") == {"grid": GRID, "nature": "neighbourhood", "urgency": "general", "parties": 2}
    assert data("dispute.mediated") == {"outcome": "agreed"}
    assert data("community_work.refused") == {"community": GRID[:12], "department": "civil_affairs",
                                              "work_kind": "form_filling"}


def test_grid_events_statistics_does_not_count() -> None:
    assert kind_of("civicgrid.grid.incident.closed.v2") is None
    assert kind_of("civicgrid.grid.stability_sweep.recorded.v1") is None  # no figure reads sweeps
    assert kind_of("civicgrid.grid.patrol.started.v1") is None
    assert fact_of("e", "civicgrid.grid.incident.closed.v1", None, T0, EVENTS["civicgrid.grid.incident.closed.v1"]) \
        is None  # no stream: nothing to join it to
    # Without an instant in its data a fact falls back on the recorded time.
    fact = fact_of("e", "civicgrid.grid.incident.deferred.v1", "i", T0, {"reason": "x"})
    assert fact is not None and fact.occurred_at == T0 and fact.data == {}


def test_adding_the_grid_changes_no_intake_fact() -> None:
    """The grid's kept fields are per kind: an intake event carrying a `grid` member keeps what it did."""
    fact = fact_of("e", "civicgrid.intake.complaint.received.v1", "cp-1", T0,
                   {"jurisdiction": "320104001001", "category": "public_order", "grid": GRID, "received_at": None})
    assert fact is not None and fact.data == {"jurisdiction": "320104001001", "category": "public_order"}


class _Reader:
    def __init__(self, raw: dict[str, list[dict[str, Any]]]) -> None:
        self.raw = raw

    async def grid(self, filters: Filters, group_by: str, as_of: datetime | None) -> dict[str, list[dict[str, Any]]]:
        return self.raw


def _incidents(label: str, **counts: int) -> dict[str, Any]:
    row: dict[str, Any] = {"label": label, **{k: 0 for k in GRID_COUNTS[:10]}, **counts}
    for span in ("create", "dispatch", "handle", "verify"):
        row[f"minutes_to_{span}"] = []
    return row


async def test_the_grid_figures_merge_the_families_by_label_and_total_them() -> None:
    a = _incidents("320104001001", incidents_reported=4, incidents_dispatched=4, incidents_closed=2,
                   incidents_due=3, incidents_closed_on_time=1, reworks=3, incidents_reworked=1)
    a["minutes_to_create"] = [10.0, 20.0]
    b = _incidents("320104001002", incidents_reported=1, incidents_dispatched=1, incidents_closed=1, incidents_due=1)
    b["minutes_to_create"] = [30.0]
    raw = {
        "incidents": [a, b],
        "reports": [{"label": "320104001001", "reports_expected": 5, "reports_submitted": 4, "reports_missing": 1,
                     "reports_late": 1}],
        "disputes": [{"label": "320104001003", "disputes_filed": 2, "disputes_mediated": 2, "disputes_settled": 1,
                      "disputes_referred": 1}],
        "community_work": [],
    }
    body = await KpiService(_Reader(raw)).grid(Filters(), "community", "incidents_closed", None)
    groups = {g["label"]: g for g in body["groups"]}
    assert list(groups) == ["320104001001", "320104001002", "320104001003"]
    first = groups["320104001001"]
    assert first["closure_rate"] == 0.5 and first["on_time_closure_rate"] == 0.3333 and first["rework_rate"] == 0.5
    assert first["report_coverage"] == 0.8 and first["minutes_to_create_median"] == 15.0
    assert first["minutes_to_create_p90"] == 19.0 and first["minutes_to_handle_median"] is None
    third = groups["320104001003"]  # only disputes there: every other count is 0, its rates None
    assert third["incidents_reported"] == 0 and third["closure_rate"] is None
    assert third["mediation_rate"] == 1.0 and third["mediation_success_rate"] == 0.5
    totals = body["totals"]
    assert totals["incidents_reported"] == 5 and totals["incidents_closed"] == 3 and totals["disputes_filed"] == 2
    assert totals["closure_rate"] == 0.6 and totals["minutes_to_create_median"] == 20.0  # over every span
    assert body["chart"] == {"measure": "incidents_closed", "labels": list(groups), "values": [2, 1, 0],
                             "shares": [0.6667, 0.3333, 0.0]}
    # Exactly the members the OpenAPI document declares (its models forbid others).
    GridKpis.model_validate({**body, "filters": {"jurisdiction": None, "from": None, "to": None, "scope": []},
                             "as_of": None})


def test_the_api_offers_exactly_the_grid_groups_and_counts() -> None:
    assert get_args(GridGroup) == GRID_GROUPS
    assert get_args(GridMeasure) == GRID_COUNTS
    assert set(GridFigures.model_fields) >= set(GRID_COUNTS)


def test_a_delivery_step_keeps_its_district_channel_department_and_counts_only() -> None:
    from civicgrid_statistics.domain.facts import fact_of

    data = {"district": "320104", "delivery_id": "msg_" + "0" * 32, "channel": "webhook", "recipient_kind": "department",
            "department": "civil_affairs", "rule_id": "department-task", "cause_id": "c-1",
            "cause_type": "civicgrid.approval.civil_affairs_task.issued.v1", "at": "2026-03-02T01:00:05Z",
            "recorded_at": "2026-03-02T01:00:00Z", "attempts": 2}
    fact = fact_of("e-1", "civicgrid.notifications.notification.sent.v1", "notification-delivery:msg_0", None, data)
    assert fact is not None and fact.kind == "notifications.notification.sent"
    assert fact.subject == "notification-delivery:msg_0" and fact.occurred_at.isoformat() == "2026-03-02T01:00:05+00:00"
    assert fact.data == {"district": "320104", "channel": "webhook", "recipient_kind": "department",
                         "department": "civil_affairs", "recorded_at": "2026-03-02T01:00:00Z", "attempts": 2}
    assert fact_of("e-2", "civicgrid.notifications.notification.sent.v2", "s", None, data) is None
