"""Grid workers' field work: patrols with their GPS tracks, the daily report of each grid
(有事报事，无事报平安) and the daily check for grids that did not report.

A grid worker acts in the grids of their token's jurisdictions (the route checks the grid in
the path); a patrol is its worker's own, and another's answers 404 like an unknown one. Every
write carries the phone's client id: a queue sent twice records each write once."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Sequence

from civicgrid_common.calendar.working_days import local_date
from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.identity.principal import Principal
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_grid.application.ports import ActiveGrids, Calendars, GridNotFound, Locator, check_in, load_or_none
from civicgrid_grid.domain.codes import GridCode
from civicgrid_grid.domain.patrol import Patrol, TrackPoint
from civicgrid_grid.domain.reports import DailyReport, may_check_again, next_missing_check
from civicgrid_grid.domain.rules import InvalidInput, InvalidParameter, StateConflict


@dataclass(frozen=True)
class PatrolState:
    id: str
    grid: str
    worker: str
    started_at: datetime | None
    ended_at: datetime | None
    points: int
    points_outside: int
    recorded: bool  # False: this client id's write was recorded before (a replayed queue)


def _state(p: Patrol, recorded: bool) -> PatrolState:
    return PatrolState(p.id, str(p.grid), p.worker or "", p.started_at, p.ended_at, p.point_count,
                       p.points_outside, recorded)


@dataclass(frozen=True)
class ReportState:
    grid: str
    day: date
    all_safe: bool | None
    incidents: tuple[str, ...]
    late: bool
    submitted_at: datetime | None
    missing_at: datetime | None
    recorded: bool


class FieldWorkService:
    def __init__(self, transactions: Transactions, locator: Locator, calendar: Calendars, grids: ActiveGrids, *,
                 district: str, check_hour: time, clock: Clock = utc_now) -> None:
        self.transactions = transactions
        self.locator = locator
        self.calendar = calendar
        self.grids = grids
        self.district = district
        self.check_hour = check_hour
        self.clock = clock

    # ------------------------------------------------------------------ patrols

    async def start_patrol(self, principal: Principal, grid: str, patrol_id: str, client_id: str) -> PatrolState:
        code = GridCode.parse(grid, "grid")
        check_in(principal, code.value, "grid")
        if await self.locator.area(code.value) is None:
            raise GridNotFound("grid", code.value)
        at = self.clock()

        async def start(uow: UnitOfWork) -> PatrolState:
            patrol = await uow.find(Patrol, patrol_id)
            if patrol is not None and patrol.worker != principal.subject:
                raise StateConflict("patrol_id_taken", f"patrol {patrol_id} is another's", field="id")
            patrol = patrol or uow.add(Patrol(patrol_id))
            return _state(patrol, patrol.start(grid=code, by=principal.subject, at=at, client_id=client_id))

        return await self.transactions(start)

    async def track(self, principal: Principal, patrol_id: str, points: Sequence[Any], client_id: str, *,
                    end: bool = False) -> PatrolState:
        parsed = [TrackPoint.parse(p, f"points/{i}") for i, p in enumerate(points)]
        at = self.clock()

        async def record(uow: UnitOfWork) -> PatrolState:
            patrol = await uow.find(Patrol, patrol_id)
            if patrol is None or patrol.worker != principal.subject:
                raise GridNotFound("patrol", patrol_id)
            area = await self.locator.area(str(patrol.grid))
            if area is None:  # the grid was split or merged during the patrol: no point is inside it now
                raise StateConflict("grid_retired", f"grid {patrol.grid} is no longer active")
            if end:
                recorded = patrol.end(area=area, at=at, client_id=client_id, points=parsed)
            else:
                recorded = patrol.record_track(parsed, area=area, at=at, client_id=client_id)
            return _state(patrol, recorded)

        return await self.transactions(record)

    async def patrol(self, principal: Principal, patrol_id: str) -> PatrolState:
        patrol = await load_or_none(self.transactions, Patrol, patrol_id)
        if patrol is None or not patrol.started or not principal.may_act_in(str(patrol.grid)):
            raise GridNotFound("patrol", patrol_id)
        return _state(patrol, True)

    # ------------------------------------------------------------------ daily reports

    async def submit_report(self, principal: Principal, grid: str, day: date, all_safe: bool,
                            incidents: Sequence[str], client_id: str, patrol_id: str | None) -> ReportState:
        code = GridCode.parse(grid, "grid")
        check_in(principal, code.value, "grid")
        if await self.locator.area(code.value) is None:
            raise GridNotFound("grid", code.value)
        calendar = await self.calendar()
        at = self.clock()
        unknown = await self.grids.unknown_incidents(code.value, list(incidents)) if incidents else []
        if unknown:
            raise InvalidInput("unknown_incident", f"no incident {unknown[0]!r} was filed in grid {code}",
                               field=f"incidents/{list(incidents).index(unknown[0])}")

        async def submit(uow: UnitOfWork) -> ReportState:
            if patrol_id is not None:
                patrol = await uow.find(Patrol, patrol_id)
                if patrol is None or patrol.worker != principal.subject or str(patrol.grid) != code.value:
                    raise InvalidInput("unknown_patrol", f"no patrol {patrol_id!r} of yours in grid {code}",
                                       field="patrol_id")
            stream = DailyReport.stream_for(code, day)
            report = await uow.find(DailyReport, stream) or uow.add(DailyReport(stream))
            recorded = report.submit(grid=code, day=day, all_safe=all_safe, incidents=incidents, calendar=calendar,
                                     client_id=client_id, by=principal.subject, at=at, patrol_id=patrol_id)
            return _report(report, recorded)

        return await self.transactions(submit)

    async def report(self, principal: Principal, grid: str, day: date) -> ReportState:
        code = GridCode.parse(grid, "grid")
        check_in(principal, code.value, "grid")
        report = await load_or_none(self.transactions, DailyReport, DailyReport.stream_for(code, day))
        if report is None or report.grid is None:
            raise GridNotFound("daily report", f"{code}/{day}")
        return _report(report, True)

    # ------------------------------------------------------------------ the daily check

    def next_check(self, after: datetime, calendar: Any) -> datetime:
        return next_missing_check(after, calendar, self.check_hour)

    def missing_check(self, day: date, check_at: datetime, *, prefix: str | None = None):
        """The command a check's timer runs in its firing transaction: every active grid under
        `prefix` (a community; the district if None) without a report for `day` gets
        `daily_report.missing` (once)."""
        scope = prefix or self.district

        async def check(uow: UnitOfWork) -> list[str]:
            calendar = await self.calendar()
            if not calendar.is_working_day(day):
                return []
            active = await self.grids.active_codes(uow.conn, scope)
            reported = await self.grids.reported(uow.conn, scope, day)
            at = self.clock()
            flagged = []
            for grid in sorted(set(active) - reported):
                stream = DailyReport.stream_for(grid, day)
                report = await uow.find(DailyReport, stream) or uow.add(DailyReport(stream))
                if report.mark_missing(grid=GridCode(grid), day=day, check_at=check_at, at=at):
                    flagged.append(grid)
            return flagged

        return check

    async def check_again(self, principal: Principal, jurisdiction: str, day: date) -> tuple[datetime, list[str]]:
        """Today's check run again now over the communities under `jurisdiction` (a district, a
        street or a community), each in a transaction of its own as the timer runs them: the
        grids without a report get `daily_report.missing`, those flagged already or reported
        are left as they are. The instant it ran and the grids it flagged."""
        check_in(principal, jurisdiction, "jurisdiction")
        at = self.clock()
        may_check_again(day, at, await self.calendar(), self.check_hour)
        flagged: list[str] = []
        for community in await self.grids.active_communities(None, jurisdiction):
            flagged += await self.transactions(self.missing_check(day, at, prefix=community))
        return at, flagged

    def day_of(self, at: datetime) -> date:
        return local_date(at)


def _report(r: DailyReport, recorded: bool) -> ReportState:
    return ReportState(str(r.grid), r.day, r.all_safe, r.incidents, r.late, r.submitted_at,  # type: ignore[arg-type]
                       r.missing_at, recorded)


def parse_patrol_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise InvalidParameter("invalid_patrol_id", "a patrol id is a UUID made on the phone",
                           parameter=("patrol_id", "path")) from None
