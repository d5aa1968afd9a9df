"""What notifications remembers about a case or an incident, and rules that name it (pure)."""
from __future__ import annotations

import pytest

from civicgrid_notifications.domain.facts import fact_problem, key_of, remembered
from civicgrid_notifications.domain.rules import RuleRejected, parse_rule

INCIDENT = "7d1f3a52-9c1e-4b7a-8f0e-2c4d5e6f7a81"
CASE = "5b0e2a57-3c39-4c43-9d53-0a4c1d1e7f10"


@pytest.mark.parametrize(("event_type", "subject", "data", "key"), [
    ("civicgrid.grid.incident.fed_back.v1", INCIDENT, {}, f"incident:{INCIDENT}"),
    ("civicgrid.approval.approval.overdue.v1", f"approval:{CASE}", {"case_id": CASE}, f"case:{CASE}"),
    ("civicgrid.intake.case.accepted.v1", CASE, {}, f"case:{CASE}"),
    # approval's case and intake's case are the same case, under the same key
    ("civicgrid.approval.approval.started.v1", "approval:x", {"case_id": CASE}, f"case:{CASE}"),
    ("civicgrid.grid.daily_report.missing.v1", "daily-report:320104001001003:2026-03-04", {}, None),
    ("civicgrid.statistics.alert.raised.v1", "alert:1", {"case_id": CASE}, None),
    ("civicgrid.grid.incident.reported.v1", None, {}, None),
])
def test_an_event_is_about_its_case_or_its_incident(event_type, subject, data, key):
    assert key_of(event_type, subject, data) == key


def test_an_incidents_report_tells_its_grid_and_an_approvals_start_its_jurisdiction():
    assert remembered("civicgrid.grid.incident.reported.v1", {"grid": "320104001001003", "urgent": False}) == {
        "grid": "320104001001003", "community": "320104001001", "street": "320104001"}
    assert remembered("civicgrid.approval.approval.started.v1", {
        "jurisdiction": "320104001001", "case_number": "QH-1", "affair_code": "civil.x", "step": "community_review",
    }) == {"jurisdiction": "320104001001", "case_number": "QH-1", "affair_code": "civil.x"}
    # a case without a receipt number yet: what there is
    assert remembered("civicgrid.approval.approval.started.v1", {"jurisdiction": "320104001", "case_number": None}) \
        == {"jurisdiction": "320104001"}
    assert remembered("civicgrid.grid.incident.fed_back.v1", {"grid": "320104001001003"}) == {}


def test_a_path_under_about_must_name_a_remembered_fact():
    assert fact_problem("about.grid") is None and fact_problem("grid") is None
    assert fact_problem("location.about") is None  # only the first member is special
    assert "about.grid" in fact_problem("about.phone")
    assert fact_problem("about") is not None and fact_problem("about.grid.code") is not None


def test_a_rule_may_name_facts_about_the_events_case_and_is_refused_for_others():
    rule = parse_rule({"id": "r", "event_type": "civicgrid.grid.incident.fed_back.v1", "template": "t",
                       "channels": ["in_app"], "recipients": [{"kind": "grid_workers", "grid_field": "about.grid"}],
                       "conditions": [{"field": "about.street", "op": "equals", "value": "320104001"}]})
    scoped = {"result": "done", "about": {"grid": "320104001001003", "street": "320104001"}}
    assert rule.matches("civicgrid.grid.incident.fed_back.v1", scoped)
    assert rule.recipients[0].scope(scoped) == "320104001001003"
    assert not rule.matches("civicgrid.grid.incident.fed_back.v1", {"about": {"street": "320104002"}})

    with pytest.raises(RuleRejected) as refused:
        parse_rule({"id": "r", "event_type": "civicgrid.grid.incident.fed_back.v1", "template": "t",
                    "channels": ["in_app"],
                    "recipients": [{"kind": "role", "role": "leader", "jurisdiction_field": "about.mobile"}],
                    "conditions": [{"field": "about", "op": "present"}]})
    pointers = {e["pointer"] for e in refused.value.errors}
    assert pointers == {"#/recipients/0/jurisdiction_field", "#/conditions/0/field"}
