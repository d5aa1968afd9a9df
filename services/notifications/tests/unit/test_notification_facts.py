"""What notifications remembers about a case or an incident, and rules that name it (pure)."""
from __future__ import annotations

import pytest

from civicgrid_notifications.domain.facts import fact_problem, key_of, remembered, shown
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


MINIMUM_LIVING = {"affair_code": "civil.minimum_living_allowance", "name_zh": "最低生活保障申请", "steps": [
    {"id": "community_review", "name_zh": "社区初审", "level": "community"},
    {"id": "street_review", "level": "street"},  # no name of its own
    {"id": "income_check", "name_zh": "家庭经济状况核对", "level": "department"},
    {"id": "bureau_decision", "name_zh": "区民政局审批", "level": "bureau"}]}


def test_an_approvals_start_tells_its_workflows_name_and_each_steps_level_and_name():
    facts = remembered("civicgrid.approval.approval.started.v1", {
        "jurisdiction": "320104001001", "case_number": None, "affair_code": "civil.minimum_living_allowance",
        "definition": MINIMUM_LIVING, "step": "community_review"})
    assert facts == {"jurisdiction": "320104001001", "affair_code": "civil.minimum_living_allowance",
                     "affair_name": "最低生活保障申请", "steps": {
                         "community_review": {"level": "community", "name": "社区初审"},
                         "street_review": {"level": "street", "name": "街道审核"},  # its level's name
                         "income_check": {"level": "department", "name": "家庭经济状况核对"},
                         "bureau_decision": {"level": "bureau", "name": "区民政局审批"}}}
    # a definition without steps (or none at all) tells no steps
    assert "steps" not in remembered("civicgrid.approval.approval.started.v1",
                                     {"jurisdiction": "320104001", "definition": {"affair_code": "x"}})


def test_an_event_is_shown_the_level_and_name_of_its_step_and_of_the_step_it_moved_to():
    facts = remembered("civicgrid.approval.approval.started.v1",
                       {"jurisdiction": "320104001001", "definition": MINIMUM_LIVING})
    warned = shown({"step": "bureau_decision", "due_date": "2026-03-20"}, facts)
    assert (warned["step_level"], warned["step_name"]) == ("bureau", "区民政局审批")
    assert "next_step_level" not in warned
    moved = shown({"step": "community_review", "to_step": "street_review", "outcome": "approved"}, facts)
    assert (moved["step_level"], moved["next_step_level"], moved["next_step_name"]) == ("community", "street", "街道审核")
    # an action that leaves the case where it is (a co-department's opinion, an extension) reaches no step
    assert "next_step_level" not in shown({"step": "street_review", "to_step": "street_review"}, facts)
    # a step the workflow does not have, or a case whose steps are not known: nothing derived
    assert "step_level" not in shown({"step": "no_such_step"}, facts)
    assert shown({"step": "community_review"}, {"jurisdiction": "320104001"}) == {"jurisdiction": "320104001"}
    # derived facts are worked out anew for each event, never taken from what was stored
    assert shown({"step": "street_review"}, {**facts, "step_level": "bureau"})["step_level"] == "street"
