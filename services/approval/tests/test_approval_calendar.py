"""approval's own working-day calendar: a district admin sets an override at approval's
/v1/calendar and approval's due dates (and deadline warnings) count on it."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from civicgrid_common.calendar.working_days import CHINA_TZ, WorkingCalendar
from civicgrid_common.timers import lookup

from approval.adapters.deadlines import OWNER, deadline_keys

from approval_builders import T0
from approval_flows import route_case

HOLIDAY = "2026-03-03"  # the Tuesday after T0 (Monday 2026-03-02), a working day by the official calendar


async def test_a_district_admin_sets_an_override_and_due_dates_count_on_it(api, approval_app, token):
    admin = token("admin", "320104", subject="district-admin")
    body = {"is_working_day": False, "reason": "typhoon: offices closed"}
    assert (await api.put(f"/v1/calendar/overrides/{HOLIDAY}", json=body)).status_code == 401
    for who in (token("community_reviewer", "320104001001"), token("admin", "320105", subject="other-admin")):
        r = await api.put(f"/v1/calendar/overrides/{HOLIDAY}", json=body, headers=who)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await api.put(f"/v1/calendar/overrides/{HOLIDAY}", json={"is_working_day": False}, headers=admin)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert (await api.get("/v1/calendar/overrides", headers=admin)).json() == []

    r = await api.put(f"/v1/calendar/overrides/{HOLIDAY}", json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["set_by"] == "district-admin"
    listed = (await api.get("/v1/calendar/overrides", headers=token("auditor", "320104"))).json()
    assert [(o["date"], o["is_working_day"]) for o in listed] == [(HOLIDAY, False)]

    # The 低保 workflow's first step has 5 working days: Tue..Mon would end 03-09; without Tuesday, 03-10.
    aid = await route_case(approval_app)
    a = await approval_app.state.approvals.load(aid)
    assert a.due_date == "2026-03-10"
    r = await api.get("/v1/calendar/due-date", params={"from": T0.isoformat(), "days": 5}, headers=admin)
    assert r.json()["due_date"] == "2026-03-10"
