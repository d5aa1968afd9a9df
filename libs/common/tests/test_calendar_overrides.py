"""Calendar overrides in the real PostgreSQL of the local stack, and the calendar HTTP API."""
from __future__ import annotations

from datetime import date

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException

from civicgrid_common.calendar.api import calendar_router
from civicgrid_common.calendar.overrides import (
    add_override,
    install_calendar_schema,
    list_overrides,
    load_calendar,
    load_overrides,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def calendar_pool(pool: asyncpg.Pool) -> asyncpg.Pool:
    await install_calendar_schema(pool)
    await install_calendar_schema(pool)  # idempotent: every replica installs it at start
    return pool


async def test_overrides_are_stored_and_change_due_dates(calendar_pool: asyncpg.Pool) -> None:
    assert await load_overrides(calendar_pool) == {}
    await add_override(calendar_pool, date(2025, 3, 4), False, "台风停工", "admin-1")
    await add_override(calendar_pool, date(2100, 1, 2), True, "make-up working day", "admin-1")
    assert await load_overrides(calendar_pool) == {date(2025, 3, 4): False, date(2100, 1, 2): True}
    calendar = await load_calendar(calendar_pool)
    assert not calendar.is_working_day(date(2025, 3, 4))
    assert calendar.is_working_day(date(2100, 1, 2))


async def test_setting_a_day_again_replaces_it_and_keeps_the_log(calendar_pool: asyncpg.Pool) -> None:
    await add_override(calendar_pool, date(2025, 3, 4), False, "typhoon warning", "admin-1")
    latest = await add_override(calendar_pool, date(2025, 3, 4), True, "warning lifted", "admin-2")
    assert (latest.is_working_day, latest.reason, latest.set_by) == (True, "warning lifted", "admin-2")
    assert [o.reason for o in await list_overrides(calendar_pool)] == ["warning lifted"]
    log = await calendar_pool.fetch("SELECT reason, set_by FROM calendar_override_log ORDER BY id")
    assert [(r["reason"], r["set_by"]) for r in log] == [("typhoon warning", "admin-1"), ("warning lifted", "admin-2")]


async def test_an_override_needs_a_reason_and_a_who(calendar_pool: asyncpg.Pool) -> None:
    with pytest.raises(ValueError, match="reason"):
        await add_override(calendar_pool, date(2025, 3, 4), False, "  ", "admin-1")
    with pytest.raises(ValueError, match="who"):
        await add_override(calendar_pool, date(2025, 3, 4), False, "closed", "")
    assert await load_overrides(calendar_pool) == {}


def app_for(pool: asyncpg.Pool) -> FastAPI:
    async def get_pool() -> asyncpg.Pool:
        return pool

    # Stands in for the service's identity dependency: this module must work with any.
    async def require_admin(x_test_admin: str | None = Header(default=None)) -> str:
        if not x_test_admin:
            raise HTTPException(status_code=403, detail="admin role required")
        return x_test_admin

    app = FastAPI()
    app.include_router(calendar_router(get_pool, require_admin))
    return app


async def test_calendar_api(calendar_pool: asyncpg.Pool) -> None:
    transport = httpx.ASGITransport(app=app_for(calendar_pool))
    async with httpx.AsyncClient(transport=transport, base_url="http://calendar.test") as client:
        due = await client.get("/v1/calendar/due-date", params={"from": "2025-03-03T08:00:00+08:00", "days": 1})
        assert due.status_code == 200, due.text
        assert due.json()["due_date"] == "2025-03-04"
        assert due.json()["from_local_date"] == "2025-03-03"

        refused = await client.put("/v1/calendar/overrides/2025-03-04",
                                   json={"is_working_day": False, "reason": "typhoon"})
        assert refused.status_code == 403
        assert await load_overrides(calendar_pool) == {}

        put = await client.put("/v1/calendar/overrides/2025-03-04", headers={"x-test-admin": "admin-7"},
                               json={"is_working_day": False, "reason": "typhoon"})
        assert put.status_code == 200, put.text
        assert put.json()["set_by"] == "admin-7"

        listed = await client.get("/v1/calendar/overrides")
        assert [(o["date"], o["is_working_day"]) for o in listed.json()] == [("2025-03-04", False)]

        due = await client.get("/v1/calendar/due-date", params={"from": "2025-03-03T08:00:00+08:00", "days": 1})
        assert due.json()["due_date"] == "2025-03-05"


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
    assert [e["loc"] for e in response.json()["detail"]] == [["query", field]]


async def test_put_rejects_an_empty_reason(calendar_pool: asyncpg.Pool) -> None:
    transport = httpx.ASGITransport(app=app_for(calendar_pool))
    async with httpx.AsyncClient(transport=transport, base_url="http://calendar.test") as client:
        response = await client.put("/v1/calendar/overrides/2025-03-04", headers={"x-test-admin": "a"},
                                    json={"is_working_day": False, "reason": ""})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "reason"]]
