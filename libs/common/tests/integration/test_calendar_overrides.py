"""A service's copy of the district's calendar in the real PostgreSQL of the local stack: the
owner's events applied to it, the due dates counted on it, and the calendar's read API."""
from __future__ import annotations

from datetime import date, datetime, timezone

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from civicgrid_common.calendar.api import calendar_router
from civicgrid_common.calendar.contract import OVERRIDE_SET, SCHEDULE_CONFIRMED
from civicgrid_common.calendar.overrides import (
    apply_calendar_event,
    apply_override,
    install_calendar_schema,
    list_overrides,
    load_calendar,
    load_overrides,
    year_statuses,
)
from civicgrid_common.calendar.working_days import official_years
from civicgrid_common.web.problems import install_problem_handlers

pytestmark = pytest.mark.integration
AT = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
UNCOVERED = max(official_years()) + 1  # the first year chinesecalendar does not cover


@pytest.fixture
async def calendar_pool(pool: asyncpg.Pool) -> asyncpg.Pool:
    await install_calendar_schema(pool)
    await install_calendar_schema(pool)  # idempotent: every replica installs it at start
    return pool


async def override(pool: asyncpg.Pool, day: date, working: bool, reason: str, who: str):
    async with pool.acquire() as conn, conn.transaction():
        return await apply_override(conn, day, working, reason, who, AT)


async def test_overrides_are_stored_and_change_due_dates(calendar_pool: asyncpg.Pool) -> None:
    assert await load_overrides(calendar_pool) == {}
    await override(calendar_pool, date(2025, 3, 4), False, "台风停工", "admin-1")
    await override(calendar_pool, date(2100, 1, 2), True, "make-up working day", "admin-1")
    assert await load_overrides(calendar_pool) == {date(2025, 3, 4): False, date(2100, 1, 2): True}
    calendar = await load_calendar(calendar_pool)
    assert not calendar.is_working_day(date(2025, 3, 4))
    assert calendar.is_working_day(date(2100, 1, 2))


async def test_setting_a_day_again_replaces_it_and_keeps_the_log(calendar_pool: asyncpg.Pool) -> None:
    await override(calendar_pool, date(2025, 3, 4), False, "typhoon warning", "admin-1")
    latest = await override(calendar_pool, date(2025, 3, 4), True, "warning lifted", "admin-2")
    assert (latest.is_working_day, latest.reason, latest.set_by) == (True, "warning lifted", "admin-2")
    assert [o.reason for o in await list_overrides(calendar_pool)] == ["warning lifted"]
    log = await calendar_pool.fetch("SELECT reason, set_by FROM calendar_override_log ORDER BY id")
    assert [(r["reason"], r["set_by"]) for r in log] == [("typhoon warning", "admin-1"), ("warning lifted", "admin-2")]


async def test_an_override_needs_a_reason_and_a_who(calendar_pool: asyncpg.Pool) -> None:
    with pytest.raises(ValueError, match="reason"):
        await override(calendar_pool, date(2025, 3, 4), False, "  ", "admin-1")
    with pytest.raises(ValueError, match="who"):
        await override(calendar_pool, date(2025, 3, 4), False, "closed", "")
    assert await load_overrides(calendar_pool) == {}


async def test_the_owners_events_are_applied_and_a_confirmed_year_is_no_longer_missing(calendar_pool) -> None:
    async with calendar_pool.acquire() as conn, conn.transaction():
        assert await apply_calendar_event(conn, OVERRIDE_SET, {
            "district": "320104", "date": f"{UNCOVERED}-02-07", "is_working_day": True,
            "reason": "调休: 春节", "set_by": "admin-1", "set_at": AT.isoformat()})
        assert not await apply_calendar_event(conn, "civicgrid.intake.calendar.renamed.v9", {})  # not ours
    assert await load_overrides(calendar_pool) == {date(UNCOVERED, 2, 7): True}
    [status] = await year_statuses(calendar_pool, UNCOVERED, UNCOVERED)
    assert (status.official, status.missing) == (False, True)
    [covered] = await year_statuses(calendar_pool, UNCOVERED - 1, UNCOVERED - 1)
    assert (covered.official, covered.missing) == (True, False)
    async with calendar_pool.acquire() as conn, conn.transaction():
        await apply_calendar_event(conn, SCHEDULE_CONFIRMED, {
            "district": "320104", "year": UNCOVERED, "source": "国务院办公厅关于放假安排的通知",
            "confirmed_by": "admin-1", "confirmed_at": AT.isoformat()})
    [status] = await year_statuses(calendar_pool, UNCOVERED, UNCOVERED)
    assert (status.missing, status.confirmed.confirmed_by) == (False, "admin-1")


def app_for(pool: asyncpg.Pool) -> FastAPI:
    async def get_pool() -> asyncpg.Pool:
        return pool

    app = FastAPI()
    install_problem_handlers(app)  # as create_app does: every refusal a problem+json
    app.include_router(calendar_router(get_pool))
    return app


async def test_calendar_api(calendar_pool: asyncpg.Pool) -> None:
    transport = httpx.ASGITransport(app=app_for(calendar_pool))
    async with httpx.AsyncClient(transport=transport, base_url="http://calendar.test") as client:
        due = await client.get("/v1/calendar/due-date", params={"from": "2025-03-03T08:00:00+08:00", "days": 1})
        assert due.status_code == 200, due.text
        assert due.json()["due_date"] == "2025-03-04"
        assert due.json()["from_local_date"] == "2025-03-03"
        assert due.json()["schedule_missing_years"] == []

        # The read router takes no change: the owner's router does (intake's tests).
        refused = await client.put("/v1/calendar/overrides/2025-03-04",
                                   json={"is_working_day": False, "reason": "typhoon"})
        assert refused.status_code in (404, 405)
        assert await load_overrides(calendar_pool) == {}

        await override(calendar_pool, date(2025, 3, 4), False, "typhoon", "admin-7")
        listed = await client.get("/v1/calendar/overrides")
        assert [(o["date"], o["is_working_day"], o["set_by"]) for o in listed.json()] == [
            ("2025-03-04", False, "admin-7")]

        due = await client.get("/v1/calendar/due-date", params={"from": "2025-03-03T08:00:00+08:00", "days": 1})
        assert due.json()["due_date"] == "2025-03-05"

        # A count into a year without the announced days says so: the date may still move.
        late = await client.get("/v1/calendar/due-date", params={"from": f"{UNCOVERED - 1}-12-30T10:00:00+08:00",
                                                                  "days": 5})
        assert late.json()["schedule_missing_years"] == [UNCOVERED]
        years = await client.get("/v1/calendar/schedules", params={"from_year": UNCOVERED - 1, "to_year": UNCOVERED})
        assert [(y["year"], y["official"], y["missing"]) for y in years.json()] == [
            (UNCOVERED - 1, True, False), (UNCOVERED, False, True)]
        too_many = await client.get("/v1/calendar/schedules", params={"from_year": 2000, "to_year": 2100})
        assert too_many.status_code == 422
        assert [e["field"] for e in too_many.json()["errors"]] == ["to_year"]


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "2025-03-03T08:00:00", "days": 1}, "from"),  # no offset: which day would it be?
    ({"from": "2025-03-03T08:00:00+08:00", "days": 0}, "days"),
    ({"from": "not a time", "days": 1}, "from"),
])
async def test_due_date_rejects_bad_input(calendar_pool: asyncpg.Pool, params: dict, field: str) -> None:
    transport = httpx.ASGITransport(app=app_for(calendar_pool))
    async with httpx.AsyncClient(transport=transport, base_url="http://calendar.test") as client:
        response = await client.get("/v1/calendar/due-date", params=params)
    assert response.status_code == 422
    assert [(e["in"], e["field"]) for e in response.json()["errors"]] == [("query", field)]
