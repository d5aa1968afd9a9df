"""Working days on China's official calendar, with local overrides. Pure: no I/O.

Which days are working days:
1. an override (added by an admin, e.g. a local closure or a year's holidays published
   after our `chinesecalendar` release) decides if there is one;
2. else the `chinesecalendar` package decides: it knows the State Council's official
   holidays AND the swapped working days (调休, e.g. a Saturday that is worked);
3. for a year the package does not cover (it raises NotImplementedError), Monday to Friday.
   Never an error: a case accepted in such a year still gets a due date, and an admin adds
   the official holidays as overrides once they are published.

Due dates ("within N working days") follow the usual reading of statutory time limits: the
day of the instant does not count (even if it is a working day and the case came in at
08:00); the due date is the N-th working day after it. Days are China Standard Time
(Asia/Shanghai), whatever time zone the instant is given in.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Mapping
from zoneinfo import ZoneInfo

import chinese_calendar

CHINA_TZ = ZoneInfo("Asia/Shanghai")
# Beyond this a due date is surely a typo (about 40 years of working days).
MAX_WORKING_DAYS = 10_000


def official_years() -> range:
    """The years the installed chinesecalendar release knows (e.g. 2004..2026 for 1.11.0)."""
    known = list(chinese_calendar.holidays) + list(chinese_calendar.workdays)
    return range(min(known).year, max(known).year + 1)


class WorkingCalendar:
    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        self._overrides = dict(overrides or {})

    @property
    def overrides(self) -> Mapping[date, bool]:
        return dict(self._overrides)

    def is_working_day(self, day: date) -> bool:
        if isinstance(day, datetime):  # a datetime is a date subclass: refuse the ambiguity
            raise TypeError("is_working_day takes a date; use local_date(instant) for an instant")
        if day in self._overrides:
            return self._overrides[day]
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            return day.weekday() < 5

    def add_working_days(self, instant: datetime, n: int) -> date:
        """The due date: the n-th working day after the (China) day of `instant`, n >= 1."""
        if not 1 <= n <= MAX_WORKING_DAYS:
            raise ValueError(f"number of working days must be between 1 and {MAX_WORKING_DAYS}, got {n}")
        day = local_date(instant)
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days d with start < d <= end (negative if end is before start).

        The same convention as due dates: add_working_days(x, n) == d implies
        working_days_between(local_date(x), d) == n.
        """
        if end < start:
            return -self.working_days_between(end, start)
        return sum(1 for k in range(1, (end - start).days + 1) if self.is_working_day(start + timedelta(days=k)))


def local_date(instant: datetime) -> date:
    """The calendar day of an instant in China Standard Time."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware (e.g. 2026-09-30T17:00:00+08:00)")
    return instant.astimezone(CHINA_TZ).date()
