"""HTTP API of the district's working-day calendar, mounted by every service with one call.

    GET /v1/calendar/overrides                 every override (any signed-in caller)
    GET /v1/calendar/schedules                 per year: the official schedule known, or the
                                               bridging and swapped days entered (missing if neither)
    GET /v1/calendar/due-date?from=...&days=N  the due date N working days after an instant
    PUT /v1/calendar/overrides/{day}           set one            (the owner service only: an admin
    PUT /v1/calendar/schedules/{year}          confirm a year      of its district)

`district_calendar_router(owner=...)` is what a service mounts. Every service answers the reads
from its own copy of the overrides (applied from the owner's events, civicgrid_common.calendar.
overrides), so the due dates agree everywhere; only the owner (intake) takes changes, through
its `app.state.calendar` (the CalendarCommands of its application layer, which decides who may).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Callable, Protocol

import asyncpg
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from civicgrid_common.calendar.overrides import Override, Schedule, list_overrides, load_calendar, year_statuses
from civicgrid_common.calendar.working_days import CHINA_TZ, MAX_DATE, MAX_WORKING_DAYS, MIN_DATE, local_date
from civicgrid_common.identity import Principal, Role
from civicgrid_common.identity.dependencies import require
from civicgrid_common.problems import VALIDATION_ERROR, Problem, parameter_error
from civicgrid_common.web.models import Day, Flag, Instant, RequestBody

MAX_YEARS_LISTED = 20


class CalendarCommands(Protocol):
    """The owner's changes to the calendar (intake's CalendarService)."""

    async def set_override(self, principal: Principal, day: date, is_working_day: bool, reason: str) -> Override: ...

    async def confirm_schedule(self, principal: Principal, year: int, source: str) -> Schedule: ...


class OverrideIn(RequestBody):
    is_working_day: Flag
    reason: str = Field(min_length=1, max_length=500, description="why, e.g. 'typhoon: offices closed'")


class ScheduleIn(RequestBody):
    source: str = Field(min_length=1, max_length=500,
                        description="the announcement whose bridging and swapped working days were entered, "
                                    "e.g. the State Council General Office's notice of the year's holidays")


class OverrideOut(BaseModel):
    date: date
    is_working_day: bool
    reason: str
    set_by: str
    set_at: datetime


class ScheduleOut(BaseModel):
    source: str
    confirmed_by: str
    confirmed_at: datetime


class YearOut(BaseModel):
    year: int
    official: bool = Field(description="the calendar package has the State Council's schedule of this year")
    confirmed: ScheduleOut | None = Field(description="an admin entered the year's announced days as overrides")
    missing: bool = Field(description="holidays known by rule only; the bridging and swapped working days "
                                      "(调休) are still to be entered: due dates in this year may move")


class DueDate(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    from_local_date: date = Field(description="the day of `from` in China Standard Time; it does not count")
    days: int
    due_date: date = Field(description="the days-th working day after from_local_date")
    time_zone: str = str(CHINA_TZ)
    schedule_missing_years: list[int] = Field(
        description="years the count crosses whose bridging and swapped working days are not entered yet: "
                    "the due date may move once they are")


def _override(o: Override) -> OverrideOut:
    return OverrideOut(date=o.day, is_working_day=o.is_working_day, reason=o.reason, set_by=o.set_by,
                       set_at=o.set_at)


def _schedule(s: Schedule) -> ScheduleOut:
    return ScheduleOut(source=s.source, confirmed_by=s.confirmed_by, confirmed_at=s.confirmed_at)


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


def _commands(request: Request) -> CalendarCommands:
    return request.app.state.calendar


def calendar_router(get_pool: Callable[..., Any] = _pool) -> APIRouter:
    """The reads, on the service's own copy of the overrides (`get_pool`: a dependency giving
    its asyncpg pool, calendar schema installed)."""
    router = APIRouter(prefix="/v1/calendar", tags=["calendar"])
    # Defaults rather than a local Annotated alias: with postponed annotations FastAPI
    # resolves names in module scope and would not find a local one.
    pool_dep = Depends(get_pool)

    @router.get("/overrides", response_model=list[OverrideOut])
    async def get_overrides(pool: asyncpg.Pool = pool_dep) -> list[OverrideOut]:
        return [_override(o) for o in await list_overrides(pool)]

    @router.get("/schedules", response_model=list[YearOut])
    async def get_schedules(
        from_year: Annotated[int | None, Query(ge=MIN_DATE.year, le=MAX_DATE.year, description="default: this year")] = None,
        to_year: Annotated[int | None, Query(ge=MIN_DATE.year, le=MAX_DATE.year, description="default: next year")] = None,
        pool: asyncpg.Pool = pool_dep,
    ) -> list[YearOut]:
        this_year = local_date(datetime.now(CHINA_TZ)).year
        first, last = from_year or this_year, to_year or (from_year or this_year) + 1
        if last < first or last - first >= MAX_YEARS_LISTED:
            detail = f"to_year is from from_year to {MAX_YEARS_LISTED - 1} years after it"
            raise Problem(VALIDATION_ERROR, detail, errors=[parameter_error("to_year", "query", detail)])
        return [YearOut(year=s.year, official=s.official, missing=s.missing,
                        confirmed=_schedule(s.confirmed) if s.confirmed else None)
                for s in await year_statuses(pool, first, last)]

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
        start = local_date(from_)
        missing = [s.year for s in await year_statuses(pool, start.year, due.year) if s.missing]
        return DueDate(from_=from_, from_local_date=start, days=days, due_date=due, schedule_missing_years=missing)

    return router


def calendar_owner_router(get_commands: Callable[..., Any] = _commands) -> APIRouter:
    """The changes, on the owner service only (its application layer decides who may)."""
    router = APIRouter(prefix="/v1/calendar", tags=["calendar"])
    commands_dep = Depends(get_commands)
    admin_dep = Depends(require(Role.ADMIN))

    @router.put("/overrides/{day}", response_model=OverrideOut)
    async def put_override(body: OverrideIn, day: Annotated[Day, Path(description="the day, China time")],
                           commands: CalendarCommands = commands_dep, who: Principal = admin_dep) -> OverrideOut:
        return _override(await commands.set_override(who, day, body.is_working_day, body.reason))

    @router.put("/schedules/{year}", response_model=YearOut)
    async def put_schedule(body: ScheduleIn, year: Annotated[int, Path(ge=MIN_DATE.year, le=MAX_DATE.year)],
                           commands: CalendarCommands = commands_dep, who: Principal = admin_dep) -> YearOut:
        confirmed = await commands.confirm_schedule(who, year, body.source)
        return YearOut(year=year, official=False, confirmed=_schedule(confirmed), missing=False)

    return router


def district_calendar_router(*, owner: bool = False) -> APIRouter:
    """The calendar as every service mounts it: the reads for any signed-in caller; the changes
    too on the one service that owns the overrides."""
    router = APIRouter()
    signed_in = [Depends(require())]
    router.include_router(calendar_router(), dependencies=signed_in)
    if owner:
        router.include_router(calendar_owner_router(), dependencies=signed_in)
    return router
