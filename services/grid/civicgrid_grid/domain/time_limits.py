"""Time limits of the closed loop (时限): clock minutes, clock hours, working hours, working
days. Pure: the working-day calendar comes in as a value (civicgrid_common's WorkingCalendar).

- **Clock** minutes and hours run day and night: creating and dispatching an incident
  (10 minutes urgent, 30 otherwise), verifying on site (1 hour), and the handling limit of an
  emergency class (a gas leak at 22:00 does not wait for the office to open).
- **Working hours** run only in office hours of working days (`OfficeHours`, China time): a
  streetlight reported on Friday at 17:00 with 4 working hours is due on Monday morning.
- **Working days**: the N-th working day after the day the clock started, which does not
  count (the platform's convention for every "within N working days"), due by the end of
  that day: the due instant is 24:00 China time of the due date, when approval's overdue
  marks fire as well.

Every due instant is inclusive: done at `at` is on time when `at <= due`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Mapping, Protocol

from civicgrid_common.calendar.working_days import CHINA_TZ, local_date

from civicgrid_grid.domain.rules import InvalidInput

URGENT_DISPATCH = timedelta(minutes=10)  # 紧急: created and dispatched within 10 minutes of the report
NORMAL_DISPATCH = timedelta(minutes=30)
VERIFICATION = timedelta(hours=1)  # on-site check (核查) within 1 hour of the handler's feedback
MAX_AMOUNT = {"hours": 720, "working_hours": 480, "working_days": 120}


class Calendar(Protocol):
    """What the limits need of civicgrid_common.calendar.WorkingCalendar."""

    def is_working_day(self, day: date) -> bool: ...
    def nth_working_day_after(self, day: date, n: int) -> date: ...


@dataclass(frozen=True)
class OfficeHours:
    """The office hours of a working day, China time: by default 08:30-12:00 and 14:00-17:30,
    the usual hours of a street office (a district may pass others)."""

    periods: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(14, 0), time(17, 30)))

    def __post_init__(self) -> None:
        last = time(0, 0)
        for start, end in self.periods:
            if not last <= start < end:
                raise ValueError("office hours are increasing, non-overlapping periods within a day")
            last = end
        if not self.periods:
            raise ValueError("office hours need at least one period")


DEFAULT_OFFICE_HOURS = OfficeHours()


def add_working_hours(start: datetime, hours: int, calendar: Calendar,
                      office: OfficeHours = DEFAULT_OFFICE_HOURS) -> datetime:
    """The instant `hours` office hours after `start`, counted only on working days.

    Jumps from working day to working day with the calendar's arithmetic (no walk over
    holidays), so a long holiday costs nothing. Ends at a period's end when the hours run out
    exactly there (17:30, not the next morning)."""
    left = timedelta(hours=hours)
    local = start.astimezone(CHINA_TZ)
    day, clock = local.date(), local.time()
    if not calendar.is_working_day(day):
        day, clock = calendar.nth_working_day_after(day, 1), time(0, 0)
    while True:
        for begin, end in office.periods:
            if clock >= end:
                continue
            frm = datetime.combine(day, max(begin, clock), tzinfo=CHINA_TZ)
            until = datetime.combine(day, end, tzinfo=CHINA_TZ)
            if until - frm >= left:
                return (frm + left).astimezone(timezone.utc)
            left -= until - frm
        day, clock = calendar.nth_working_day_after(day, 1), time(0, 0)


def end_of_day(day: date) -> datetime:
    """24:00 China time of `day`, in UTC."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=CHINA_TZ).astimezone(timezone.utc)


class LimitUnit(str, enum.Enum):
    HOURS = "hours"  # clock hours, day and night (emergencies)
    WORKING_HOURS = "working_hours"  # office hours of working days
    WORKING_DAYS = "working_days"


@dataclass(frozen=True)
class HandlingLimit:
    """A minor class's handling limit (处置时限), counted from dispatch: e.g. {"working_hours": 4}."""

    unit: LimitUnit
    amount: int

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) \
                or not 1 <= self.amount <= MAX_AMOUNT[self.unit.value]:
            raise ValueError(f"{self.unit.value} must be a whole number from 1 to {MAX_AMOUNT[self.unit.value]}")

    @classmethod
    def from_data(cls, data: Any, field: str = "limit") -> HandlingLimit:
        """{"working_hours": 4}, {"working_days": 3} or {"hours": 2}: exactly one unit."""
        if not isinstance(data, Mapping) or len(data) != 1:
            raise InvalidInput("invalid_limit", 'a limit is one of {"hours": n}, {"working_hours": n}, '
                               '{"working_days": n}', field=field)
        (unit, amount), = data.items()
        try:
            return cls(LimitUnit(unit), amount)
        except ValueError as exc:
            raise InvalidInput("invalid_limit", f"{unit}: {exc}" if unit in MAX_AMOUNT else
                               f"unknown unit {unit!r}; expected hours, working_hours or working_days",
                               field=f"{field}/{unit}") from None

    def to_data(self) -> dict[str, int]:
        return {self.unit.value: self.amount}

    def due(self, start: datetime, calendar: Calendar, office: OfficeHours = DEFAULT_OFFICE_HOURS) -> datetime:
        if self.unit is LimitUnit.HOURS:
            return (start + timedelta(hours=self.amount)).astimezone(timezone.utc)
        if self.unit is LimitUnit.WORKING_HOURS:
            return add_working_hours(start, self.amount, calendar, office)
        return end_of_day(calendar.nth_working_day_after(local_date(start), self.amount))
