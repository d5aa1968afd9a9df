"""Rules about later events of a case or an incident, on the real database: the grid an incident
was filed in (told once, in `reported`) and the jurisdiction an approval runs in (in `started`)
reach the grid's workers and the step's reviewers when the incident is dispatched, fed back or
overdue and when a step's deadline nears or passes."""
from __future__ import annotations

import copy

from notification_events import event

from civicgrid_notifications.domain.seed import sample_events

INCIDENT = "7d1f3a52-9c1e-4b7a-8f0e-2c4d5e6f7a81"
GRID = "320104001001003"
REPORTED = "civicgrid.grid.incident.reported.v1"
DISPATCHED = "civicgrid.grid.incident.dispatched.v1"
FED_BACK = "civicgrid.grid.incident.fed_back.v1"
OVERDUE = "civicgrid.grid.incident.overdue.v1"
TASK = "civicgrid.grid.urban_management_task.issued.v1"
STARTED = "civicgrid.approval.approval.started.v1"
WARNED = "civicgrid.approval.approval.deadline_warned.v1"
STEP_OVERDUE = "civicgrid.approval.approval.overdue.v1"
ACTED = "civicgrid.approval.approval.acted.v1"
CASE = "5b0e2a57-3c39-4c43-9d53-0a4c1d1e7f10"


def sample(event_type: str) -> dict:
    return copy.deepcopy(sample_events()[event_type][0]["data"])


def reported(grid: str = GRID) -> dict:
    return {"source": "grid_worker", "source_ref": None, "classification": {"kind": "part", "major": "01", "minor": "01"},
            "location": {"lat": 32.03, "lon": 118.79}, "grid": grid, "urgent": False, "description": "井盖破损",
            "component_id": None, "photos": [], "observed_at": "2026-03-04T02:00:00Z", "client_id": None,
            "by": "worker-1", "at": "2026-03-04T02:05:00Z"}


async def titles(api, headers) -> list[str]:
    r = await api.get("/v1/inbox", headers=headers)
    assert r.status_code == 200, r.text
    return [item["title"] for item in r.json()["items"]]


async def test_an_incidents_grid_workers_hear_of_its_dispatch_its_check_and_its_overdue_limit(api, token, hand_in):
    assert (await hand_in(event(REPORTED, reported(), subject=INCIDENT))).recorded == ()  # no rule: remembered only
    worker, neighbour = token("grid_worker", GRID), token("grid_worker", "320104001001004")

    dispatched = await hand_in(event(DISPATCHED, sample(DISPATCHED), subject=INCIDENT))
    assert len(dispatched.recorded) == 1
    [title] = await titles(api, worker)
    assert GRID in title and "派遣" in title

    await hand_in(event(FED_BACK, sample(FED_BACK), subject=INCIDENT))
    newest = await api.get("/v1/inbox", headers=worker)
    item = newest.json()["items"][0]
    assert "核查" in item["title"] and "15:00" in item["body"]  # verification due 07:00 UTC, China time
    assert item["link"] == f"/incidents/{INCIDENT}"

    late = await hand_in(event(OVERDUE, sample(OVERDUE), subject=INCIDENT))
    assert len(late.recorded) == 2  # the grid's workers and the street's leaders
    assert "超时" in (await titles(api, worker))[0]
    assert "处置时限" in (await api.get("/v1/inbox", headers=token("leader", "320104001"))).json()["items"][0]["body"]
    assert await titles(api, neighbour) == []
    assert await titles(api, token("leader", "320104002")) == []


async def test_a_redelivered_report_changes_nothing_and_an_unknown_incident_tells_no_one(api, token, hand_in,
                                                                                         notifications_app):
    report = event(REPORTED, reported(), subject=INCIDENT)
    await hand_in(report)
    await hand_in(report)
    other = "0a1b2c3d-0000-4000-8000-000000000009"  # an incident filed before notifications listened
    told = await hand_in(event(DISPATCHED, sample(DISPATCHED), subject=other))
    assert told.recorded == () and told.repeated == 0
    facts = await notifications_app.state.pool.fetch(
        "SELECT subject, facts FROM notification_subject_facts ORDER BY subject")
    assert [(f["subject"], f["facts"]) for f in facts] == [
        (f"incident:{INCIDENT}", {"grid": GRID, "community": GRID[:12], "street": GRID[:9]})]


async def test_a_steps_deadline_and_its_overdue_reach_the_steps_reviewers_in_the_cases_jurisdiction(api, token,
                                                                                                   hand_in):
    await hand_in(event(STARTED, sample(STARTED), subject=f"approval:{CASE}"))
    reviewer = token("community_reviewer", "320104001001")
    before = await titles(api, reviewer)  # the new item itself

    warned = await hand_in(event(WARNED, sample(WARNED), subject=f"approval:{CASE}"))
    assert len(warned.recorded) == 1
    after = await titles(api, reviewer)
    assert len(after) == len(before) + 1 and after[0] == "即将到期：待审事项 QH-20260304-0012"
    # the street's reviewers are not told of the community's step
    assert not any("到期" in t for t in await titles(api, token("street_reviewer", "320104001")))

    street = {**sample(STEP_OVERDUE), "step": "street_review", "task": "street_review.1"}
    assert len((await hand_in(event(STEP_OVERDUE, street, subject=f"approval:{CASE}"))).recorded) == 1
    [title] = [t for t in await titles(api, token("street_reviewer", "320104001")) if "超期" in t]
    assert title == "已超期：待审事项 QH-20260304-0012"
    assert not any("超期" in t for t in await titles(api, token("street_reviewer", "320104002")))


async def test_urban_managements_incident_task_is_a_webhook_to_its_system(hand_in, notifications_app):
    told = await hand_in(event(TASK, sample(TASK), subject=INCIDENT))
    assert len(told.recorded) == 1
    row = await notifications_app.state.pool.fetchrow(
        "SELECT recipient, channel, status, message FROM notification_deliveries WHERE id = $1", told.recorded[0])
    assert (row["recipient"], row["channel"], row["status"]) == ("department:urban_management", "webhook", "pending")
    assert row["message"]["type"] == TASK and set(row["message"]) == {"id", "type", "subject", "time", "department",
                                                                    "link"}


async def test_a_case_passed_on_reaches_the_next_steps_reviewers_and_the_bureaus_deadline_its_approvers(api, token,
                                                                                                      hand_in):
    await hand_in(event(STARTED, sample(STARTED), subject=f"approval:{CASE}"))
    street = token("street_reviewer", "320104001")
    assert await titles(api, street) == []  # the community's step: not theirs yet

    [passed_on] = [s for s in sample_events()[ACTED] if s["data"]["outcome"] == "approved"]
    told = await hand_in(event(ACTED, copy.deepcopy(passed_on["data"]), subject=f"approval:{CASE}"))
    assert len(told.recorded) == 1
    [item] = (await api.get("/v1/inbox", headers=street)).json()["items"]
    assert item["title"] == "新待审事项 QH-20260304-0012"
    assert item["body"] == "最低生活保障申请 已转入“街道审核”环节，请于 2026-03-13 前办理。"
    assert await titles(api, token("street_reviewer", "320104002")) == []

    # the bureau's step is called bureau_decision in this workflow: its approvers hear of its deadline
    bureau = {**sample(WARNED), "step": "bureau_decision", "task": "bureau_decision.1"}
    assert len((await hand_in(event(WARNED, bureau, subject=f"approval:{CASE}"))).recorded) == 1
    [warning] = (await api.get("/v1/inbox", headers=token("bureau_approver", "320104"))).json()["items"]
    assert warning["title"] == "即将到期：待审事项 QH-20260304-0012"
    assert warning["body"] == "最低生活保障申请 “区民政局审批”环节的办理期限为 2026-03-09。"


async def test_a_step_escalated_reaches_the_leaders_over_the_case_and_no_others(api, token, hand_in):
    await hand_in(event(STARTED, sample(STARTED), subject=f"approval:{CASE}"))
    [escalated] = [s for s in sample_events()[ACTED] if s["data"]["outcome"] == "escalated"]
    assert len((await hand_in(event(ACTED, copy.deepcopy(escalated["data"]), subject=f"approval:{CASE}"))).recorded) == 1
    [item] = (await api.get("/v1/inbox", headers=token("leader", "320104001"))).json()["items"]
    assert item["title"] == "待领导审批 QH-20260304-0012" and "“街道审核”环节已报领导" in item["body"]
    assert await titles(api, token("leader", "320104002")) == []
    assert not any("待领导" in t for t in await titles(api, token("street_reviewer", "320104001")))
