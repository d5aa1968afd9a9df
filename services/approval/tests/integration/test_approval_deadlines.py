"""Deadlines on durable timers: a warning at 80% of a task's time and an overdue mark when its
due date passes, each once, across a restart; a supplement stops the clock, the resume and an
extension move the deadline; a task that moved on is never warned."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from civicgrid_common.calendar.working_days import CHINA_TZ
from civicgrid_common.timers import lookup

from civicgrid_approval.adapters.deadlines import OWNER, deadline_keys
from civicgrid_approval.config import ApprovalSettings
from civicgrid_approval.entrypoints.main import build_app

from approval_flows import act, ce, route_case
from civicgrid_approval.entrypoints.consumers import intake_cases_handler


async def deadline_events(pool, aid: str) -> list[str]:
    rows = await pool.fetch("SELECT type FROM events WHERE stream_id = $1 AND type LIKE '%deadline_warned%' "
                            "OR stream_id = $1 AND type LIKE '%overdue%' ORDER BY version", aid)
    return [r["type"].split(".")[-2] for r in rows]


def end_of(due: str) -> datetime:
    return datetime.combine(date.fromisoformat(due) + timedelta(days=1), time(0), CHINA_TZ)


async def test_warning_then_overdue_fire_once_each_across_a_restart(approval_app, fresh_db, clock, pool):
    aid = await route_case(approval_app)
    a = await approval_app.state.approvals.load(aid)
    due, task = a.due_date, a.task.key
    keys = deadline_keys(aid, task, due)
    async with pool.acquire() as conn:
        warning = await lookup(conn, owner=OWNER, key=keys["warning"])
        overdue = await lookup(conn, owner=OWNER, key=keys["overdue"])
    assert warning.status == overdue.status == "pending"
    assert overdue.due_at == end_of(due)
    # 5 working days from Monday 2026-03-02 (Tue..Mon 03-09): 80% of them have passed at the end
    # of Friday 03-06, not at 80% of the wall-clock time to the due date (Sunday 03-08 12:36).
    assert due == "2026-03-09"
    assert warning.due_at == datetime(2026, 3, 7, 0, 0, tzinfo=CHINA_TZ)
    assert await approval_app.state.timers.fire_due() == 0

    # The process stops; time passes; a new process on the same database fires what is due.
    settings = ApprovalSettings(pg_database=fresh_db.pg_database, outbox_relay=False, consume=False, timers=False)
    clock.now = warning.due_at + timedelta(minutes=1)
    restarted = build_app(settings, clock=clock)
    async with restarted.router.lifespan_context(restarted):
        assert await restarted.state.timers.fire_due() == 1
        assert await restarted.state.timers.fire_due() == 0
        assert await deadline_events(pool, aid) == ["deadline_warned"]
        clock.now = end_of(due) + timedelta(seconds=1)
        assert await restarted.state.timers.fire_due() == 1
    assert await deadline_events(pool, aid) == ["deadline_warned", "overdue"]
    row = await pool.fetchrow("SELECT overdue, warned FROM approval_view WHERE id = $1", aid)
    assert row["overdue"] and row["warned"]
    # Another restart fires nothing again.
    again = build_app(settings, clock=clock)
    async with again.router.lifespan_context(again):
        assert await again.state.timers.fire_due() == 0
    assert await deadline_events(pool, aid) == ["deadline_warned", "overdue"]


async def test_a_task_that_moved_on_has_no_timers_left_and_the_next_task_has_its_own(api, approval_app, people,
                                                                                      clock, pool):
    aid = await route_case(approval_app)
    a = await approval_app.state.approvals.load(aid)
    old = deadline_keys(aid, a.task.key, a.due_date)
    assert (await act(api, people["community"], aid)).status_code == 200
    b = await approval_app.state.approvals.load(aid)
    async with pool.acquire() as conn:
        assert await lookup(conn, owner=OWNER, key=old["warning"]) is None
        assert await lookup(conn, owner=OWNER, key=old["overdue"]) is None
        new = deadline_keys(aid, b.task.key, b.due_date)
        assert (await lookup(conn, owner=OWNER, key=new["overdue"])).status == "pending"
    clock.now = end_of(a.due_date) + timedelta(days=1)
    await approval_app.state.timers.fire_due()
    # The street task's warning may be due by now; never the community task's deadlines.
    moves = await pool.fetch("SELECT data->>'task' AS task FROM events WHERE stream_id = $1 AND "
                             "(type LIKE '%deadline_warned%' OR type LIKE '%overdue%')", aid)
    assert all(m["task"] == b.task.key for m in moves)


async def test_a_supplement_stops_the_clock_and_the_resume_restarts_it(api, approval_app, people, clock, pool):
    aid = await route_case(approval_app)
    a = await approval_app.state.approvals.load(aid)
    keys = deadline_keys(aid, a.task.key, a.due_date)
    r = await act(api, people["community"], aid, "request_supplement", comment="补交收入证明", materials=["income_proof"])
    assert r.status_code == 200
    async with pool.acquire() as conn:
        assert await lookup(conn, owner=OWNER, key=keys["overdue"]) is None
    clock.now = end_of(a.due_date) + timedelta(days=30)
    assert await approval_app.state.timers.fire_due() == 0
    async with pool.acquire() as conn, conn.transaction():
        await intake_cases_handler(approval_app.state.approvals)(conn, ce(
            "civicgrid.intake.case.supplemented.v1", a.case_id,
            {"materials_added": ["income_proof"], "materials_missing": [], "actor": "clerk"}))
    b = await approval_app.state.approvals.load(aid)
    assert date.fromisoformat(b.due_date) > clock.now.date()
    async with pool.acquire() as conn:
        assert (await lookup(conn, owner=OWNER, key=deadline_keys(aid, b.task.key, b.due_date)["overdue"])).status \
            == "pending"
    assert await approval_app.state.timers.fire_due() == 0
    assert await deadline_events(pool, aid) == []


async def test_an_extension_moves_the_deadline(api, approval_app, people, clock, pool):
    aid = await route_case(approval_app)
    a = await approval_app.state.approvals.load(aid)
    # A week later: at most the step's own 5 working days, the extension limit.
    new_due = date.fromisoformat(a.due_date) + timedelta(days=7)
    r = await act(api, people["community"], aid, "extend", comment="入户调查", new_due_date=str(new_due))
    assert r.status_code == 200
    clock.now = end_of(a.due_date) + timedelta(hours=1)
    await approval_app.state.timers.fire_due()
    assert "overdue" not in await deadline_events(pool, aid)
    clock.now = end_of(str(new_due)) + timedelta(hours=1)
    await approval_app.state.timers.fire_due()
    assert await deadline_events(pool, aid) == ["deadline_warned", "overdue"]


async def test_an_unanswered_department_task_is_overdue_like_any_other(api, approval_app, people, clock, pool):
    aid = await route_case(approval_app)
    await act(api, people["community"], aid)
    await act(api, people["street"], aid)
    a = await approval_app.state.approvals.load(aid)
    assert a.step.id == "income_check"
    clock.now = end_of(a.due_date) + timedelta(minutes=1)
    assert await approval_app.state.timers.fire_due() == 2
    moves = await pool.fetch("SELECT type, data->>'task' AS task FROM events WHERE stream_id = $1 AND "
                             "(type LIKE '%deadline_warned%' OR type LIKE '%overdue%') ORDER BY version", aid)
    assert [(m["type"].split(".")[-2], m["task"]) for m in moves] == [("deadline_warned", a.task.key),
                                                                      ("overdue", a.task.key)]
    inbox = (await api.get("/v1/approvals/inbox?overdue=true", headers=people["civil_system"])).json()
    assert [i["id"] for i in inbox["items"]] == [aid]
