"""approval's copy of the district's working-day calendar: intake owns the overrides and
publishes them; approval applies them (its calendar consumer) and its due dates and deadline
warnings count on them. approval itself takes no change to the calendar."""
from __future__ import annotations

import uuid
from datetime import date, datetime, time, timezone

from civicgrid_common.calendar.contract import OVERRIDE_SET
from civicgrid_common.calendar.sync import calendar_events_handler
from civicgrid_common.cloudevents import CloudEvent

from civicgrid_common.calendar.working_days import CHINA_TZ, WorkingCalendar
from civicgrid_common.timers import lookup

from civicgrid_approval.adapters.deadlines import OWNER, deadline_keys

from approval_builders import T0
from approval_flows import route_case

HOLIDAY = "2026-03-03"  # the Tuesday after T0 (Monday 2026-03-02), a working day by the official calendar


async def set_at_intake(approval_app, day: str, is_working_day: bool, reason: str) -> None:
    """intake's calendar event, as approval's calendar consumer applies it (in its inbox transaction)."""
    event = CloudEvent(id=str(uuid.uuid4()), source="/civicgrid/intake", type=OVERRIDE_SET, subject="calendar:320104",
                       time=datetime.now(timezone.utc), dataschema=None, data={
                           "district": "320104", "date": day, "is_working_day": is_working_day, "reason": reason,
                           "set_by": "district-admin", "set_at": datetime.now(timezone.utc).isoformat()})
    async with approval_app.state.pool.acquire() as conn, conn.transaction():
        await calendar_events_handler()(conn, event)


async def test_approval_takes_no_calendar_change_intake_owns_the_calendar(api, token):
    admin = token("admin", "320104", subject="district-admin")
    r = await api.put(f"/v1/calendar/overrides/{HOLIDAY}", json={"is_working_day": False, "reason": "typhoon"},
                      headers=admin)
    assert r.status_code in (404, 405), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await api.get("/v1/calendar/overrides", headers=admin)).json() == []


async def test_an_override_set_at_intake_counts_in_approvals_due_dates(api, approval_app, token):
    admin = token("admin", "320104", subject="district-admin")
    await set_at_intake(approval_app, HOLIDAY, False, "typhoon: offices closed")
    listed = (await api.get("/v1/calendar/overrides", headers=token("auditor", "320104"))).json()
    assert [(o["date"], o["is_working_day"], o["set_by"]) for o in listed] == [(HOLIDAY, False, "district-admin")]

    # The 低保 workflow's first step has 5 working days: Tue..Mon would end 03-09; without Tuesday, 03-10.
    aid = await route_case(approval_app)
    a = await approval_app.state.approvals.load(aid)
    assert a.due_date == "2026-03-10"
    r = await api.get("/v1/calendar/due-date", params={"from": T0.isoformat(), "days": 5}, headers=admin)
    assert r.json()["due_date"] == "2026-03-10"


def at(day: str, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(hour, minute), CHINA_TZ)


def test_the_warning_falls_at_a_share_of_the_working_days_not_of_the_wall_clock():
    from civicgrid_approval.adapters.deadlines import warning_at

    cal = WorkingCalendar()
    # Monday 09:00, due the 5th working day after (Monday 03-09): 4 of 5 days passed at Friday's end.
    assert warning_at(T0, "2026-03-09", 0.8, cal) == at("2026-03-07")
    # 3 working days (Tue, Wed, Thu): 2.4 of them at 09:36 on Thursday.
    assert warning_at(T0, "2026-03-05", 0.8, cal) == at("2026-03-05", 9, 36)
    # Friday 17:00, due Wednesday (Mon, Tue, Wed): the weekend does not count; half is Tuesday noon.
    assert warning_at(at("2026-03-06", 17), "2026-03-11", 0.5, cal) == at("2026-03-10", 12)
    # The Spring Festival of 2026 (02-15..02-23 off, 02-14 and 02-28 worked): from Friday 02-13,
    # 3 working days are 02-14, 02-24, 02-25; 2 of them pass at the end of 02-24.
    assert cal.add_working_days(at("2026-02-13", 10), 3) == date(2026, 2, 25)
    assert warning_at(at("2026-02-13", 10), "2026-02-25", 2 / 3, cal) == at("2026-02-25")
    # An override counts: Thursday 03-05 closed makes the 4th working day Monday 03-09.
    closed = WorkingCalendar({date(2026, 3, 5): False})
    assert warning_at(T0, "2026-03-10", 0.8, closed) == at("2026-03-10")


async def test_the_warning_timer_of_a_task_counts_the_overrides_of_approvals_calendar(api, approval_app, token, pool):
    await set_at_intake(approval_app, "2026-03-05", False, "停电")
    aid = await route_case(approval_app)
    a = await approval_app.state.approvals.load(aid)
    assert a.due_date == "2026-03-10"
    async with pool.acquire() as conn:
        warning = await lookup(conn, owner=OWNER, key=deadline_keys(aid, a.task.key, a.due_date)["warning"])
    # Tue 03-03, Wed 03-04, Fri 03-06, Mon 03-09 make 4 of 5: the warning at the end of Monday.
    assert warning.due_at == at("2026-03-10")
