"""HTTP API of the working-day calendar, as a FastAPI router a service mounts.

    GET /v1/calendar/overrides                 every override (anyone authenticated by the app)
    PUT /v1/calendar/overrides/{date}          set one (admins only)
    GET /v1/calendar/due-date?from=...&days=N  the due date N working days after an instant

This module knows nothing of identity: the service passes `require_admin`, a FastAPI
dependency that rejects a non-admin and returns the name to record as "who".
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Callable

import asyncpg
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from civicgrid_common.calendar.overrides import add_override, list_overrides, load_calendar
from civicgrid_common.calendar.working_days import MAX_WORKING_DAYS, CHINA_TZ, local_date
from civicgrid_common.problems import VALIDATION_ERROR, Problem, parameter_error
from civicgrid_common.web.models import Day, Flag, Instant, RequestBody


class OverrideIn(RequestBody):
    is_working_day: Flag
    reason: str = Field(min_length=1, max_length=500, description="why, e.g. 'typhoon: offices closed'")


class OverrideOut(BaseModel):
    date: date
    is_working_day: bool
    reason: str
    set_by: str
    set_at: datetime


class DueDate(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    from_local_date: date = Field(description="the day of `from` in China Standard Time; it does not count")
    days: int
    due_date: date = Field(description="the days-th working day after from_local_date")
    time_zone: str = str(CHINA_TZ)


def _out(o: Any) -> OverrideOut:
    return OverrideOut(date=o.day, is_working_day=o.is_working_day, reason=o.reason, set_by=o.set_by, set_at=o.set_at)


def calendar_router(get_pool: Callable[..., Any], require_admin: Callable[..., Any]) -> APIRouter:
    """`get_pool`: a dependency giving the service's asyncpg pool (calendar schema installed)."""
    router = APIRouter(prefix="/v1/calendar", tags=["calendar"])
    # Defaults rather than a local Annotated alias: with postponed annotations FastAPI
    # resolves names in module scope and would not find a local one.
    pool_dep = Depends(get_pool)
    admin_dep = Depends(require_admin)

    @router.get("/overrides", response_model=list[OverrideOut])
    async def get_overrides(pool: asyncpg.Pool = pool_dep) -> list[OverrideOut]:
        return [_out(o) for o in await list_overrides(pool)]

    @router.put("/overrides/{day}", response_model=OverrideOut)
    async def put_override(body: OverrideIn, day: Annotated[Day, Path(description="the day, China time")],
                           pool: asyncpg.Pool = pool_dep, who: str = admin_dep) -> OverrideOut:
        return _out(await add_override(pool, day, body.is_working_day, body.reason, str(who)))

    @router.get("/due-date", response_model=DueDate, response_model_by_alias=True)
    async def due_date(
        from_: Annotated[Instant, Query(alias="from", description="an instant with its offset, RFC 3339")],
        days: Annotated[int, Query(ge=1, le=MAX_WORKING_DAYS)],
        pool: asyncpg.Pool = pool_dep,
    ) -> DueDate:
        calendar = await load_calendar(pool)
        try:
            due = calendar.add_working_days(from_, days)
        except ValueError as exc:  # the due date would lie beyond the calendar's range
            raise Problem(VALIDATION_ERROR, str(exc), errors=[parameter_error("days", "query", str(exc))]) from None
        return DueDate(from_=from_, from_local_date=local_date(from_), days=days, due_date=due)

    return router
