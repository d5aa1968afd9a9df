"""Working days on China's official calendar, with local overrides. Pure: no I/O.

Which days are working days:
1. an override (added by an admin, e.g. a local closure or a year's holidays published
   after our `chinesecalendar` release) decides if there is one;
2. else the `chinesecalendar` package decides: it knows the State Council's official
   holidays AND the swapped working days (调休, e.g. a Saturday that is worked);
3. for a year the package does not cover, the statutory holidays by rule (below) and the
   weekends are off, every other day is worked. Never an error: a case accepted in such a
   year still gets a due date. What no rule can tell is the schedule the State Council
   publishes each year: the bridging days off and the weekend days worked in exchange
   (调休). An admin enters those as overrides once they are published;
   `years_without_official_schedule` names the years that still need them.

The statutory holidays (全国年节及纪念日放假办法, the regulation on national annual
holidays) as amended in 2024, in force from 2025: New Year's Day (1 January), the Spring
Festival (4 days: lunar New Year's Eve 除夕, the last day of the 12th lunar month, and the
1st to 3rd of the 1st month), Qingming (the day of the solar term), Labour Day (1-2 May),
the Dragon Boat Festival (5/5 lunar), the Mid-Autumn Festival (8/15 lunar) and National Day
(1-3 October). Earlier editions differ in the Spring Festival and Labour Day only (see
`_EDITIONS`). A holiday on a weekend is not made up on a weekday by the rule: only the
State Council's yearly schedule does that.

Due dates ("within N working days") follow the usual reading of statutory time limits: the
day of the instant does not count (even if it is a working day and the case came in at
08:00); the due date is the N-th working day after it. Days are China Standard Time
(Asia/Shanghai), whatever time zone the instant is given in.

Nothing walks day by day: a request may name any date, and a walk over centuries would
block the event loop. Counting is arithmetic: Monday to Friday by whole weeks, corrected by
the few exceptional days (a weekday off, a weekend day worked) found with `bisect` in
sorted lists; the n-th working day is a binary search on that count. Dates are supported
from MIN_DATE to MAX_DATE, which bounds every search; outside them a ValueError says so.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Callable, Collection, Iterable, Mapping
from zoneinfo import ZoneInfo

import chinese_calendar
from lunar_python import Lunar, LunarYear, Solar

CHINA_TZ = ZoneInfo("Asia/Shanghai")
# Beyond this a due date is surely a typo (about 40 years of working days).
MAX_WORKING_DAYS = 10_000
# The dates the calendar answers for: far wider than any case's life, and narrow enough
# that the lunar calendar by rule stays trustworthy and every search stays short.
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2199, 12, 31)

_SUPPORTED_YEARS = range(MIN_DATE.year, MAX_DATE.year + 1)
_MAX_ORDINAL = MAX_DATE.toordinal()


def official_years() -> range:
    """The years the installed chinesecalendar release knows (e.g. 2004..2026 for 1.11.0)."""
    known = list(chinese_calendar.holidays) + list(chinese_calendar.workdays)
    return range(min(known).year, max(known).year + 1)


_OFFICIAL_YEARS = official_years()


# --- statutory holidays by rule ------------------------------------------------------------

@dataclass(frozen=True)
class _Edition:
    """What an edition of the regulation says where the editions differ."""
    in_force_from: int  # the first year it applies to
    spring_festival: tuple[int, ...]  # days from lunar New Year's Day; -1 is the eve (除夕)
    labour_day: tuple[int, ...]  # days of May


# Newest first. Before 2008 we apply the 2007 edition too: the package covers 2004-2007, and
# the older editions (no Qingming, Dragon Boat or Mid-Autumn holiday) are out of scope.
_EDITIONS = (
    _Edition(2025, spring_festival=(-1, 0, 1, 2), labour_day=(1, 2)),  # 国务院令第795号 (2024)
    _Edition(2014, spring_festival=(0, 1, 2), labour_day=(1,)),  # 第644号 (2013): the eve is worked
    _Edition(2008, spring_festival=(-1, 0, 1), labour_day=(1,)),  # 第513号 (2007): eve, 1st, 2nd
)

_QINGMING = Lunar.JIE_QI_IN_USE.index("清明")


def _edition(year: int) -> _Edition:
    return next((e for e in _EDITIONS if year >= e.in_force_from), _EDITIONS[-1])


def _solar_date(julian_day: float) -> date:
    """The China day of a Julian day as lunar-python reckons it (its terms are in Beijing time)."""
    solar = Solar.fromJulianDay(julian_day)
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


@cache
def _statutory_days(year: int) -> Mapping[date, str]:
    lunar = LunarYear.fromYear(year)  # the year's months and solar terms: a few ms to compute

    def lunar_date(month: int, day: int) -> date:
        return _solar_date(lunar.getMonth(month).getFirstJulianDay()) + timedelta(days=day - 1)

    edition = _edition(year)
    # The eve is the day before New Year's Day, whether the 12th month has 29 days or 30.
    new_year = lunar_date(1, 1)
    days: dict[date, list[str]] = {}
    for day, name in [
        (date(year, 1, 1), "元旦 New Year's Day"),
        *((new_year + timedelta(days=k), "春节 Spring Festival") for k in edition.spring_festival),
        (_solar_date(lunar.getJieQiJulianDays()[_QINGMING]), "清明节 Qingming Festival"),
        *((date(year, 5, d), "劳动节 Labour Day") for d in edition.labour_day),
        (lunar_date(5, 5), "端午节 Dragon Boat Festival"),
        (lunar_date(8, 15), "中秋节 Mid-Autumn Festival"),
        *((date(year, 10, d), "国庆节 National Day") for d in (1, 2, 3)),
    ]:
        days.setdefault(day, []).append(name)  # Mid-Autumn may fall on National Day (2020)
    return {day: " / ".join(names) for day, names in sorted(days.items())}


def statutory_holidays(year: int) -> dict[date, str]:
    """The statutory public holidays of `year` by the rule of that year: date -> name.

    Only what the regulation fixes: no bridging days and no swapped working days (调休),
    which the State Council announces year by year. Lunar dates by `lunar-python`.
    """
    if year not in _SUPPORTED_YEARS:
        raise ValueError(f"year {year} is outside the supported years {MIN_DATE.year} to {MAX_DATE.year}")
    return dict(_statutory_days(year))


def years_without_official_schedule(start: date, end: date) -> list[int]:
    """The years from `start`'s to `end`'s that chinesecalendar does not cover: their
    holidays are known by rule only, and their bridging and swapped working days must be
    entered as overrides."""
    _check(start)
    _check(end)
    return [year for year in range(start.year, end.year + 1) if year not in _OFFICIAL_YEARS]


# --- the national calendar -----------------------------------------------------------------

def _is_weekday(day: date) -> bool:
    return day.weekday() < 5


def _national_is_working(day: date) -> bool:
    if day.year in _OFFICIAL_YEARS:
        return bool(chinese_calendar.is_workday(day))
    return _is_weekday(day) and day not in _statutory_days(day.year)


def _national_candidates(years: Collection[int]) -> Iterable[date]:
    """Every day of `years` that may not be a plain weekday or weekend day nationally."""
    for year in years:
        if year not in _OFFICIAL_YEARS:
            yield from _statutory_days(year)
    # The package's holidays include weekend days inside a holiday period: they are
    # candidates only, and drop out as their status equals the weekday baseline.
    yield from (d for d in (*chinese_calendar.holidays, *chinese_calendar.workdays) if d.year in years)


class _Corrections:
    """The days whose status differs from a reference calendar's, as sorted ordinals: each
    day gained (worked where the reference rests) counts +1, each day lost counts -1."""

    def __init__(self, statuses: Mapping[date, bool], reference: Callable[[date], bool]) -> None:
        self._gained = sorted(d.toordinal() for d, working in statuses.items() if working and not reference(d))
        self._lost = sorted(d.toordinal() for d, working in statuses.items() if not working and reference(d))

    def through(self, ordinal: int) -> int:
        """The net correction for the days up to and including day number `ordinal`."""
        return bisect_right(self._gained, ordinal) - bisect_right(self._lost, ordinal)


class _NationalCorrections:
    """The national calendar's exceptional days against Monday to Friday, for the years
    asked for so far: a year by rule costs a few milliseconds of lunar computation, so a
    process pays once for each year it reaches, and only for those. A count needs every
    year of its span; years outside it add the same to both ends of a difference."""

    def __init__(self) -> None:
        years = tuple(y for y in _OFFICIAL_YEARS if y in _SUPPORTED_YEARS)  # the package's cost nothing
        # Years and their days are swapped as one pair: no thread sees one without the other.
        self._state = (years, self._build(years))

    @staticmethod
    def _build(years: tuple[int, ...]) -> _Corrections:
        statuses = {d: _national_is_working(d) for d in _national_candidates(frozenset(years))}
        return _Corrections(statuses, _is_weekday)

    def covering(self, first_year: int, last_year: int) -> _Corrections:
        years, corrections = self._state  # sorted
        if bisect_right(years, last_year) - bisect_left(years, first_year) < last_year - first_year + 1:
            years = tuple(sorted({*years, *range(first_year, last_year + 1)}))
            corrections = self._build(years)
            self._state = (years, corrections)
        return corrections


_NATIONAL = _NationalCorrections()


def warm_up() -> None:
    """Compute every supported year's statutory holidays now (about a second of lunar
    arithmetic), so that no request pays for the years it happens to reach. A service runs it
    once at start-up, off the event loop, before it serves."""
    _NATIONAL.covering(MIN_DATE.year, MAX_DATE.year)


def _weekdays_through(ordinal: int) -> int:
    """Mondays to Fridays among day numbers 1 .. `ordinal` (day 1, 1 January of year 1, is a Monday)."""
    weeks, rest = divmod(ordinal, 7)
    return weeks * 5 + min(rest, 5)


@dataclass(frozen=True)
class _Tally:
    national: _Corrections
    local: _Corrections

    def through(self, ordinal: int) -> int:
        """Working days up to and including day number `ordinal`, from an origin of its own:
        only the difference of two tallies means something."""
        return _weekdays_through(ordinal) + self.national.through(ordinal) + self.local.through(ordinal)


def _check(day: date) -> None:
    if isinstance(day, datetime):  # a datetime is a date subclass: refuse the ambiguity
        raise TypeError("the calendar takes a date; use local_date(instant) for an instant")
    if not MIN_DATE <= day <= MAX_DATE:
        raise ValueError(f"{day} is outside the dates the calendar supports, {MIN_DATE} to {MAX_DATE}")


class WorkingCalendar:
    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        self._overrides = dict(overrides or {})
        # Against the national calendar; a day outside the supported dates is never asked for.
        self._local = _Corrections({d: working for d, working in self._overrides.items()
                                    if MIN_DATE <= d <= MAX_DATE}, _national_is_working)

    @property
    def overrides(self) -> Mapping[date, bool]:
        return dict(self._overrides)

    def is_working_day(self, day: date) -> bool:
        _check(day)
        if day in self._overrides:
            return self._overrides[day]
        return _national_is_working(day)

    def add_working_days(self, instant: datetime, n: int) -> date:
        """The due date: the n-th working day after the (China) day of `instant`, n >= 1."""
        if not 1 <= n <= MAX_WORKING_DAYS:
            raise ValueError(f"number of working days must be between 1 and {MAX_WORKING_DAYS}, got {n}")
        return self.nth_working_day_after(local_date(instant), n)

    def nth_working_day_after(self, day: date, n: int) -> date:
        """The n-th working day after `day` (n >= 1), which does not count itself."""
        _check(day)
        if n < 1:
            raise ValueError(f"n counts working days from 1, got {n}")
        start = day.toordinal()
        # 5 days in 7 are worked, less a few holidays a year: the estimate with a tenth more
        # and a golden week's margin nearly always brackets the answer; if overrides closed
        # more, double the span until it does. Then a binary search on the count.
        span = n * 7 // 5 + n // 10 + 14
        while True:
            end = min(_MAX_ORDINAL, start + span)
            tally = self._tally(day, date.fromordinal(end))
            target = tally.through(start) + n
            if tally.through(end) >= target:
                first = start + n  # at most one working day a day
                return date.fromordinal(first + bisect_left(range(first, end + 1), target, key=tally.through))
            if end == _MAX_ORDINAL:
                break
            span *= 2
        raise ValueError(f"working day number {n} after {day} is beyond {MAX_DATE}, "
                         f"the last date the calendar supports (from {MIN_DATE})")

    def working_days_between(self, start: date, end: date) -> int:
        """Working days d with start < d <= end (negative if end is before start).

        The same convention as due dates: add_working_days(x, n) == d implies
        working_days_between(local_date(x), d) == n.
        """
        _check(start)
        _check(end)
        tally = self._tally(min(start, end), max(start, end))
        return tally.through(end.toordinal()) - tally.through(start.toordinal())

    def _tally(self, first: date, last: date) -> _Tally:
        return _Tally(_NATIONAL.covering(first.year, last.year), self._local)


def local_date(instant: datetime) -> date:
    """The calendar day of an instant in China Standard Time."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware (e.g. 2026-09-30T17:00:00+08:00)")
    try:
        return instant.astimezone(CHINA_TZ).date()
    except OverflowError:  # within hours of year 1 or 9999
        raise ValueError(f"{instant.isoformat()} is outside the dates the calendar supports, "
                         f"{MIN_DATE} to {MAX_DATE}") from None
