"""The daily report of a grid (有事报事，无事报平安): every working day, each grid reports either
"all safe" or the incidents found. Pure: no I/O.

One aggregate per grid and day (stream `daily-report:<grid>:<YYYY-MM-DD>`), so a day has one
report by construction: a second is refused, and the same report sent again by a phone's
offline queue (same client id) is recorded once. A report for a day that is not a working day
is refused naming `date`: nobody patrols then, and the missing-report check does not ask.

`missing_reports` decides, for a day, which grids have not reported (pure: the application
runs it at the district's configured hour on its durable timer, `next_missing_check`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Any, Iterable, Protocol, Sequence

from civicgrid_common.aggregate import applies
from civicgrid_common.calendar.working_days import CHINA_TZ, local_date

from civicgrid_grid.domain.codes import GridCode
from civicgrid_grid.domain.rates import Rate
from civicgrid_grid.domain.rules import (
    PREFIX, GridAggregate, InvalidInput, InvalidParameter, StateConflict, iso, subject, utc,
)
from civicgrid_grid.domain.rules import client_id as _client_id
from civicgrid_grid.domain.time_limits import Calendar

SUBMITTED = PREFIX + "daily_report.submitted.v1"
MISSING = PREFIX + "daily_report.missing.v1"
EVENT_TYPES = (SUBMITTED, MISSING)

MAX_INCIDENTS = 50
DEFAULT_CHECK_HOUR = time(17, 0)  # China time; a district configures its own
_INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class DailyReport(GridAggregate):
    stream_type = "daily_report"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.grid: str | None = None
        self.day: date | None = None
        self.all_safe: bool | None = None
        self.incidents: tuple[str, ...] = ()
        self.late = False
        self.submitted_at: datetime | None = None
        self.missing_at: datetime | None = None  # when the day's check found no report

    @staticmethod
    def stream_for(grid: GridCode | str, day: date) -> str:
        return f"daily-report:{grid}:{day.isoformat()}"

    @property
    def submitted(self) -> bool:
        return self.submitted_at is not None

    def submit(self, *, grid: GridCode, day: date, all_safe: bool, incidents: Sequence[str] = (),
               calendar: Calendar, client_id: str, by: str, at: datetime, patrol_id: str | None = None) -> bool:
        """Report the day: all safe (平安), or the incidents found (each an incident id).
        Returns False when this client id's report is recorded already."""
        at = utc(at)
        if self.submitted:
            if self._seen(client_id, SUBMITTED):
                return False
            raise StateConflict("already_reported", f"grid {self.grid} has reported for {self.day} already")
        if self.id != self.stream_for(grid, day):
            raise ValueError(f"a report of grid {grid} for {day} does not belong in {self.id}")
        if not calendar.is_working_day(day):
            raise InvalidInput("not_a_working_day", f"{day} is not a working day: no report is due", field="date")
        today = local_date(at)
        if day > today:
            raise InvalidInput("day_in_future", f"{day} has not begun yet (it is {today} in China)", field="date")
        if not isinstance(all_safe, bool):
            raise InvalidInput("invalid_flag", "all_safe is true or false", field="all_safe")
        found = list(incidents)
        if all_safe and found:
            raise InvalidInput("all_safe_with_incidents", "an all-safe report lists no incidents", field="incidents")
        if not all_safe and not found:
            raise InvalidInput("incidents_required", "a report that is not all safe lists the incidents found",
                               field="incidents")
        if len(found) > MAX_INCIDENTS or len(set(found)) != len(found):
            raise InvalidInput("invalid_incidents", f"at most {MAX_INCIDENTS} different incident ids",
                               field="incidents")
        for i, incident in enumerate(found):
            if not isinstance(incident, str) or not _INCIDENT_ID.match(incident):
                raise InvalidInput("invalid_incident_id", "an incident id is 1 to 64 letters, digits or _.:-",
                                   field=f"incidents/{i}")
        self._emit(SUBMITTED, {"grid": grid.value, "date": day.isoformat(), "all_safe": all_safe,
                               "incidents": found, "late": day < today or self.missing_at is not None,
                               "patrol_id": _client_id(patrol_id, "patrol_id") if patrol_id else None,
                               "client_id": _client_id(client_id), "by": subject(by), "at": iso(at)})
        return True

    def mark_missing(self, *, grid: GridCode, day: date, check_at: datetime, at: datetime) -> bool:
        """The day's check (the durable timer at the configured hour) found no report: raised
        once per grid and day; a report that comes later is still taken, marked late."""
        if self.id != self.stream_for(grid, day):
            raise ValueError(f"grid {grid}'s day {day} does not belong in {self.id}")
        if self.submitted or self.missing_at is not None:
            return False
        self._emit(MISSING, {"grid": grid.value, "date": day.isoformat(), "check_at": iso(utc(check_at, "check_at")),
                             "at": iso(utc(at))})
        return True

    @applies(MISSING)
    def _missing(self, d: Any) -> None:
        self.grid = d["grid"]
        self.day = date.fromisoformat(d["date"])
        self.missing_at = datetime.fromisoformat(d["at"]).astimezone(timezone.utc)

    @applies(SUBMITTED)
    def _submitted(self, d: Any) -> None:
        self.grid = d["grid"]
        self.day = date.fromisoformat(d["date"])
        self.all_safe = d["all_safe"]
        self.incidents = tuple(d["incidents"])
        self.late = d["late"]
        self.submitted_at = datetime.fromisoformat(d["at"]).astimezone(timezone.utc)


class ReportLike(Protocol):
    """What the missing-report decision needs of a report: a DailyReport, or a read model's row."""

    @property
    def grid(self) -> str | None: ...

    @property
    def day(self) -> date | None: ...


@dataclass(frozen=True)
class ReportFact:
    grid: str
    day: date


def missing_reports(day: date, grids: Iterable[GridCode | str], reports: Iterable[ReportLike],
                    calendar: Calendar) -> list[str]:
    """The grids (in code order) without a report for `day`. None on a day that is not a working
    day: no report was due. Reports of other days do not count for this one."""
    if not calendar.is_working_day(day):
        return []
    reported = {str(r.grid) for r in reports if r.day == day}
    return sorted({str(g) for g in grids} - reported)


def report_coverage(day: date, grids: Iterable[GridCode | str], reports: Iterable[ReportLike],
                    calendar: Calendar) -> Rate:
    """The share of grids that reported on a working day (a KPI); 0 ÷ 0 on other days."""
    expected = {str(g) for g in grids} if calendar.is_working_day(day) else set()
    reported = {str(r.grid) for r in reports if r.day == day} & expected
    return Rate(len(reported), len(expected))


def next_missing_check(after: datetime, calendar: Calendar, hour: time = DEFAULT_CHECK_HOUR) -> datetime:
    """When to look for missing reports next: `hour` (China time) of the first working day
    whose check is still to come after `after`. The application's durable timer fires then."""
    after = utc(after, "after")
    day = local_date(after)
    if not calendar.is_working_day(day):
        day = calendar.nth_working_day_after(day, 1)
    check = datetime.combine(day, hour, tzinfo=CHINA_TZ)
    if check <= after:
        check = datetime.combine(calendar.nth_working_day_after(day, 1), hour, tzinfo=CHINA_TZ)
    return check.astimezone(timezone.utc)


def may_check_again(day: date, now: datetime, calendar: Calendar, hour: time = DEFAULT_CHECK_HOUR) -> None:
    """May the day's missing-report check run again now? A district's admin asks for it after
    registering grids that the day's timer ran without (a registry imported on go-live day
    after the check hour, a community's grids drawn late): from then on they are expected
    that day. Only for today, a working day, once its hour has passed: before it a grid may
    still report on time, and a past day's grids are not known as they stood then."""
    now = utc(now, "now")
    today = local_date(now)
    if day != today:
        raise InvalidParameter("not_today", f"only today's check ({today} in China) can be run again, not {day}'s",
                               parameter=("day", "path"))
    if not calendar.is_working_day(day):
        raise InvalidParameter("not_a_working_day", f"{day} is not a working day: no report is due",
                               parameter=("day", "path"))
    due = datetime.combine(day, hour, tzinfo=CHINA_TZ)
    if now < due:
        raise StateConflict("check_not_due", f"today's check is due at {hour:%H:%M} China time; until then a grid "
                                             "may still report on time")
