"""intake owns the district's working-day calendar: an admin of the district sets an override or
confirms a year's announced schedule; each is an event of the district's calendar (published
for approval and statistics through the outbox) and counts at once in intake's own due dates."""
from __future__ import annotations

import json
from datetime import date

from civicgrid_common.calendar.contract import OVERRIDE_SET, SCHEDULE_CONFIRMED
from civicgrid_common.calendar.overrides import install_calendar_schema
from civicgrid_common.calendar.working_days import official_years

from civicgrid_intake.config import IntakeSettings
from civicgrid_intake.entrypoints.main import build_app

UNCOVERED = max(official_years()) + 1


async def calendar_events(intake_app) -> list[dict]:
    rows = await intake_app.state.pool.fetch(
        "SELECT e.type, e.data, o.topic FROM events e JOIN outbox o ON o.event_id = e.id "
        "WHERE e.stream_type = 'calendar' ORDER BY e.position")
    return [{"type": r["type"], "data": r["data"], "topic": r["topic"]} for r in rows]


async def test_a_district_admin_sets_an_override_as_an_event_every_service_receives(intake, intake_app, token):
    admin = token("admin", "320104", subject="district-admin")
    body = {"is_working_day": False, "reason": "台风: offices closed"}
    for who in (token("window_clerk", "320104001"), token("admin", "320105", subject="other-admin")):
        r = await intake.put("/v1/calendar/overrides/2026-03-03", json=body, headers=who)
        assert r.status_code == 403, r.text
    r = await intake.put("/v1/calendar/overrides/2026-03-03", json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["date"], r.json()["set_by"]) == ("2026-03-03", "district-admin")
    [event] = await calendar_events(intake_app)
    assert (event["type"], event["topic"]) == (OVERRIDE_SET, "civicgrid.intake.calendar")
    assert {k: event["data"][k] for k in ("district", "date", "is_working_day", "set_by")} == {
        "district": "320104", "date": "2026-03-03", "is_working_day": False, "set_by": "district-admin"}
    due = await intake.get("/v1/calendar/due-date", params={"from": "2026-03-02T09:00:00+08:00", "days": 1},
                           headers=admin)
    assert due.json()["due_date"] == "2026-03-04"


async def test_a_year_the_package_does_not_cover_is_missing_until_its_schedule_is_confirmed(intake, intake_app, token):
    admin = token("admin", "320104", subject="district-admin")
    years = await intake.get("/v1/calendar/schedules", params={"from_year": UNCOVERED, "to_year": UNCOVERED},
                             headers=admin)
    assert [(y["year"], y["missing"]) for y in years.json()] == [(UNCOVERED, True)]
    due = await intake.get("/v1/calendar/due-date", params={"from": f"{UNCOVERED - 1}-12-31T10:00:00+08:00",
                                                            "days": 1}, headers=admin)
    assert due.json()["schedule_missing_years"] == [UNCOVERED]
    # New Year's Day is a statutory holiday whatever the year: the rule knows it without the package.
    assert due.json()["due_date"] != f"{UNCOVERED}-01-01"

    official = await intake.put(f"/v1/calendar/schedules/{UNCOVERED - 1}", json={"source": "notice"}, headers=admin)
    assert official.status_code == 409, official.text
    r = await intake.put(f"/v1/calendar/schedules/{UNCOVERED}", headers=admin,
                         json={"source": "国务院办公厅关于放假安排的通知"})
    assert r.status_code == 200, r.text
    assert r.json()["missing"] is False
    assert [e["type"] for e in await calendar_events(intake_app)] == [SCHEDULE_CONFIRMED]
    years = await intake.get("/v1/calendar/schedules", params={"from_year": UNCOVERED, "to_year": UNCOVERED},
                             headers=admin)
    assert years.json()[0]["confirmed"]["confirmed_by"] == "district-admin"


async def test_overrides_set_before_the_calendar_was_an_aggregate_become_its_events_once(fresh_db):
    """An intake that kept overrides in its table alone: on start they become events (so approval
    and statistics receive them), once."""
    import asyncpg

    settings = IntakeSettings(pg_database=fresh_db.pg_database, outbox_relay=False, approval_consumer=False)
    pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
    try:
        await install_calendar_schema(pool)
        await pool.execute("INSERT INTO calendar_overrides (day, is_working_day, reason, set_by) "
                           "VALUES ($1, false, 'typhoon', 'old-admin')", date(2025, 10, 13))
    finally:
        await pool.close()
    for _ in range(2):
        app = build_app(settings)
        async with app.router.lifespan_context(app):
            events = await calendar_events(app)
    assert [(e["type"], e["data"]["date"], e["data"]["set_by"]) for e in events] == [
        (OVERRIDE_SET, "2025-10-13", "old-admin")]
    assert json.dumps(events[0]["data"])  # a plain JSON object, as the contract has it
