"""The working-day calendar computed by arithmetic, and the statutory holidays by rule.

A naive reference (the day-by-day walk the calendar used to do, with the holidays by rule
for the years chinesecalendar lacks) must agree with the arithmetic everywhere; the work
must not grow with the distance between dates; dates outside the supported range are
refused; and the rule must agree with the package's official data for every year the
package covers from 2008 (the first year of the 2007 edition of the regulation).
"""
from __future__ import annotations

import random
from bisect import bisect_left
from datetime import date, datetime, timedelta, timezone
from functools import cache
from itertools import accumulate

import chinese_calendar
import pytest
from lunar_python import Solar

from civicgrid_common.calendar import (
    CHINA_TZ,
    MAX_DATE,
    MIN_DATE,
    WorkingCalendar,
    official_years,
    statutory_holidays,
    years_without_official_schedule,
)
from civicgrid_common.calendar import working_days
from civicgrid_common.calendar.working_days import MAX_WORKING_DAYS, local_date

SEED = 20250101
RANGE = r"1900-01-01 to 2199-12-31"


# --- the naive reference ---------------------------------------------------------------------

@cache
def rule_holidays(year: int) -> frozenset[date]:
    return frozenset(statutory_holidays(year))


# The years the package has data for (it raises NotImplementedError for any other; asking it
# first for each of 110 000 days would spend seconds on raising).
PACKAGE_YEARS = range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)


def reference_is_working(day: date, overrides: dict[date, bool]) -> bool:
    if day in overrides:
        return overrides[day]
    if day.year in PACKAGE_YEARS:
        return bool(chinese_calendar.is_workday(day))
    return day.weekday() < 5 and day not in rule_holidays(day.year)


class Reference:
    """Every supported day's status, found one by one; counts and due dates from the running
    count of working days up to each day (what a walk day by day would add up, at once)."""

    def __init__(self, overrides: dict[date, bool]) -> None:
        self.first = MIN_DATE.toordinal()
        self.working = [reference_is_working(date.fromordinal(o), overrides)
                        for o in range(self.first, MAX_DATE.toordinal() + 1)]
        self.counted = list(accumulate(self.working, initial=0))  # counted[i]: working days before day i

    def between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end`."""
        if end < start:
            return -self.between(end, start)
        return self.counted[end.toordinal() - self.first + 1] - self.counted[start.toordinal() - self.first + 1]

    def nth_after(self, day: date, n: int) -> date | None:
        """The day the n-th working day after `day` is counted on; None when that runs off the
        supported dates."""
        wanted = self.counted[day.toordinal() - self.first + 1] + n
        reached = bisect_left(self.counted, wanted)  # first i with counted[i] >= wanted: day i-1 counted it
        if reached == len(self.counted):
            return None
        return date.fromordinal(self.first + reached - 1)


def random_day(rng: random.Random, first: date, last: date) -> date:
    return date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))


def random_overrides(rng: random.Random) -> dict[date, bool]:
    """Weekends worked, weekdays closed, and days the package or the rule already decide, flipped."""
    overrides: dict[date, bool] = {}
    for _ in range(150):
        day = random_day(rng, date(1990, 1, 1), MAX_DATE)
        overrides[day] = day.weekday() >= 5  # a worked weekend day, or a closed weekday
    for listed in rng.sample(sorted({*chinese_calendar.holidays, *chinese_calendar.workdays}), 60):
        overrides[listed] = not chinese_calendar.is_workday(listed)
    for year in rng.sample(range(2027, 2200), 20):
        for day in rng.sample(sorted(statutory_holidays(year)), 3):
            overrides[day] = True  # opened, e.g. a holiday moved by the year's schedule
    # Runs of closed days (a typhoon week, a month's closure) and of worked days.
    for _ in range(5):
        start, status = random_day(rng, date(1990, 1, 1), date(2199, 11, 1)), rng.random() < 0.5
        for k in range(rng.randint(5, 40)):
            overrides[start + timedelta(days=k)] = status
    return overrides


def random_n(rng: random.Random) -> int:
    return rng.choice([rng.randint(1, 30), rng.randint(1, 400), rng.randint(1, MAX_WORKING_DAYS)])


@pytest.fixture(scope="module", params=["official", "overrides-a", "overrides-b"])
def calendars(request) -> tuple[WorkingCalendar, Reference, random.Random]:
    rng = random.Random(f"{SEED}-{request.param}")
    overrides = {} if request.param == "official" else random_overrides(rng)
    return WorkingCalendar(overrides), Reference(overrides), rng


# --- (a) the arithmetic agrees with the walk ---------------------------------------------------

def test_is_working_day_agrees_with_the_reference_on_every_supported_day(calendars) -> None:
    calendar, reference, _ = calendars
    days = (date.fromordinal(reference.first + i) for i in range(len(reference.working)))
    assert [calendar.is_working_day(d) for d in days] == reference.working


def test_working_days_between_agrees_with_the_reference(calendars) -> None:
    calendar, reference, rng = calendars
    for _ in range(3000):
        start = random_day(rng, date(1990, 1, 1), MAX_DATE)
        end = rng.choice([
            start + timedelta(days=rng.randint(-30, 30)),
            start + timedelta(days=rng.randint(-800, 800)),
            random_day(rng, MIN_DATE, MAX_DATE),
        ])
        end = min(max(end, MIN_DATE), MAX_DATE)
        assert calendar.working_days_between(start, end) == reference.between(start, end), (start, end)
    assert calendar.working_days_between(MIN_DATE, MAX_DATE) == reference.between(MIN_DATE, MAX_DATE)


def test_add_working_days_agrees_with_the_reference(calendars) -> None:
    calendar, reference, rng = calendars
    for _ in range(2000):
        day, n = random_day(rng, date(1990, 1, 1), MAX_DATE), random_n(rng)
        # the same China day, given in China time or in UTC (the day before, after 16:00)
        instant = rng.choice([
            datetime(day.year, day.month, day.day, rng.randint(0, 23), rng.randint(0, 59), tzinfo=CHINA_TZ),
            datetime(day.year, day.month, day.day, rng.randint(0, 15), tzinfo=timezone.utc),
        ])
        expected = reference.nth_after(local_date(instant), n)
        if expected is None:
            with pytest.raises(ValueError, match="beyond 2199-12-31"):
                calendar.add_working_days(instant, n)
        else:
            assert calendar.add_working_days(instant, n) == expected, (instant, n)
            assert calendar.nth_working_day_after(local_date(instant), n) == expected


def test_near_the_edges_of_the_supported_dates(calendars) -> None:
    calendar, reference, rng = calendars
    for day in [MIN_DATE, *(MAX_DATE - timedelta(days=k) for k in range(1, 40))]:
        for n in (1, 2, 5, 20):
            expected = reference.nth_after(day, n)
            if expected is None:
                with pytest.raises(ValueError, match="beyond 2199-12-31"):
                    calendar.nth_working_day_after(day, n)
            else:
                assert calendar.nth_working_day_after(day, n) == expected


def test_a_closure_longer_than_the_estimate_is_searched_past() -> None:
    closed_year = {date(2030, 1, 1) + timedelta(days=k): False for k in range(365)}
    calendar, reference = WorkingCalendar(closed_year), Reference(closed_year)
    for n in (1, 10, 250, 9_000):
        assert calendar.nth_working_day_after(date(2029, 12, 28), n) == reference.nth_after(date(2029, 12, 28), n)
    # the year closed, then New Year's Day 2031 by rule: Thursday 2 January
    assert calendar.nth_working_day_after(date(2029, 12, 31), 1) == date(2031, 1, 2)


# --- (b) the work is bounded -------------------------------------------------------------------

@pytest.fixture
def lookups(monkeypatch) -> dict[str, int]:
    """How often the calendar looks a day up, and how often it bisects its lists of exceptions."""
    counts = {"is_working_day": 0, "bisections": 0}
    is_working_day, through = WorkingCalendar.is_working_day, working_days._Corrections.through

    def counting_is_working_day(self, day):
        counts["is_working_day"] += 1
        return is_working_day(self, day)

    def counting_through(self, ordinal):
        counts["bisections"] += 1
        return through(self, ordinal)

    monkeypatch.setattr(WorkingCalendar, "is_working_day", counting_is_working_day)
    monkeypatch.setattr(working_days._Corrections, "through", counting_through)
    return counts


def test_counting_three_centuries_costs_a_handful_of_bisections(lookups: dict[str, int]) -> None:
    calendar = WorkingCalendar({date(2100, 1, 4): False, date(2100, 1, 9): True})
    calendar.working_days_between(MIN_DATE, MAX_DATE)  # the first time computes the years by rule
    lookups.update(is_working_day=0, bisections=0)
    assert calendar.working_days_between(MIN_DATE, MAX_DATE) > 75_000
    assert calendar.working_days_between(MAX_DATE, MIN_DATE) < -75_000
    assert lookups["is_working_day"] <= 36
    assert lookups["bisections"] <= 8  # two ends, national and local, twice


@pytest.mark.parametrize("overrides", [
    {},
    {date(2030, 1, 1) + timedelta(days=k): False for k in range(3 * 365)},  # three years closed
])
def test_the_nth_working_day_costs_a_binary_search(lookups: dict[str, int], overrides: dict[date, bool]) -> None:
    calendar = WorkingCalendar(overrides)
    for n in (1, 7, 250, MAX_WORKING_DAYS):
        calendar.add_working_days(datetime(2029, 12, 31, 10, tzinfo=CHINA_TZ), n)  # years by rule computed
        lookups.update(is_working_day=0, bisections=0)
        calendar.add_working_days(datetime(2029, 12, 31, 10, tzinfo=CHINA_TZ), n)
        assert lookups["is_working_day"] <= 36
        # two ends per estimate (doubled at most ~13 times) and ~17 halvings, each national and local
        assert lookups["bisections"] <= 2 * (2 * 14 + 18), n
    with pytest.raises(ValueError):
        calendar.add_working_days(datetime(2199, 12, 1, tzinfo=CHINA_TZ), MAX_WORKING_DAYS)
    assert lookups["bisections"] <= 4 * (2 * 14 + 18)


# --- (c) the supported range -------------------------------------------------------------------

official = WorkingCalendar()


@pytest.mark.parametrize("day", [date(1, 1, 1), date(1899, 12, 31), date(2200, 1, 1), date(9999, 12, 31)])
def test_a_date_outside_the_supported_range_is_refused_clearly(day: date) -> None:
    with pytest.raises(ValueError, match=RANGE):
        official.is_working_day(day)
    with pytest.raises(ValueError, match=RANGE):
        official.working_days_between(date(2025, 1, 1), day)
    with pytest.raises(ValueError, match=RANGE):
        official.working_days_between(day, date(2025, 1, 1))
    with pytest.raises(ValueError, match=RANGE):
        official.nth_working_day_after(day, 1)
    with pytest.raises(ValueError, match=RANGE):
        official.add_working_days(datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc), 1)
    with pytest.raises(ValueError, match=RANGE):
        years_without_official_schedule(date(2025, 1, 1), day)
    with pytest.raises(ValueError, match=f"{MIN_DATE.year} to {MAX_DATE.year}"):
        statutory_holidays(day.year)


@pytest.mark.parametrize("instant", [
    datetime(9999, 12, 31, 20, tzinfo=timezone.utc),  # already year 10000 in Beijing
    datetime(1, 1, 1, 0, tzinfo=timezone(timedelta(hours=14))),  # still year 0 in Beijing
    datetime.max.replace(tzinfo=timezone.utc),
])
def test_an_instant_beyond_what_a_date_can_hold_is_a_value_error(instant: datetime) -> None:
    with pytest.raises(ValueError, match=RANGE):
        official.add_working_days(instant, 1)


def test_a_due_date_beyond_the_last_supported_date_is_refused() -> None:
    with pytest.raises(ValueError, match=r"working day number 10000 after 2199-12-31 is beyond 2199-12-31"):
        official.add_working_days(datetime(2199, 12, 31, 10, tzinfo=CHINA_TZ), MAX_WORKING_DAYS)
    with pytest.raises(ValueError, match="beyond 2199-12-31"):
        official.add_working_days(datetime(2190, 1, 1, 10, tzinfo=CHINA_TZ), MAX_WORKING_DAYS)
    # Tuesday 2199-12-31 is the last supported day and a working day; Monday 30 the one before.
    assert official.add_working_days(datetime(2199, 12, 27, 10, tzinfo=CHINA_TZ), 2) == date(2199, 12, 31)
    with pytest.raises(ValueError, match="working day number 3 after 2199-12-27 is beyond"):
        official.add_working_days(datetime(2199, 12, 27, 10, tzinfo=CHINA_TZ), 3)
    # a huge n is refused by the same range, not by an overflow
    with pytest.raises(ValueError, match="beyond"):
        official.nth_working_day_after(date(2025, 1, 1), 10**18)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="from 1"):
        official.nth_working_day_after(date(2025, 1, 1), 0)
    with pytest.raises(TypeError):
        official.working_days_between(datetime(2025, 1, 1, tzinfo=CHINA_TZ), date(2025, 2, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        official.nth_working_day_after(datetime(2025, 1, 1, tzinfo=CHINA_TZ), 1)  # type: ignore[arg-type]


# --- (d) the statutory holidays by rule --------------------------------------------------------

def test_the_package_still_ends_before_2027() -> None:
    assert 2027 not in official_years() and 2026 in official_years()


def test_2027_by_rule() -> None:
    assert statutory_holidays(2027) == {
        date(2027, 1, 1): "元旦 New Year's Day",
        date(2027, 2, 5): "春节 Spring Festival",  # the eve: lunar New Year's Day is 2027-02-06
        date(2027, 2, 6): "春节 Spring Festival",
        date(2027, 2, 7): "春节 Spring Festival",
        date(2027, 2, 8): "春节 Spring Festival",
        date(2027, 4, 5): "清明节 Qingming Festival",
        date(2027, 5, 1): "劳动节 Labour Day",
        date(2027, 5, 2): "劳动节 Labour Day",
        date(2027, 6, 9): "端午节 Dragon Boat Festival",
        date(2027, 9, 15): "中秋节 Mid-Autumn Festival",
        date(2027, 10, 1): "国庆节 National Day",
        date(2027, 10, 2): "国庆节 National Day",
        date(2027, 10, 3): "国庆节 National Day",
    }
    assert not official.is_working_day(date(2027, 1, 1))  # a Friday
    assert [official.is_working_day(date(2027, 2, d)) for d in range(4, 10)] == [True, False, False, False, False,
                                                                                 True]
    assert not official.is_working_day(date(2027, 4, 5))  # a Monday
    # Accepted on Thursday 31 December 2026: New Year's Day and the weekend do not count.
    assert official.add_working_days(datetime(2026, 12, 31, 10, tzinfo=CHINA_TZ), 1) == date(2027, 1, 4)


def test_a_holiday_on_a_weekend_is_not_made_up_by_the_rule() -> None:
    # Labour Day 2027 is Saturday and Sunday; National Day ends on Sunday 3 October.
    assert date(2027, 5, 1).weekday() == 5 and official.is_working_day(date(2027, 5, 3))
    assert date(2027, 10, 3).weekday() == 6 and official.is_working_day(date(2027, 10, 4))
    assert official.working_days_between(date(2027, 9, 30), date(2027, 10, 8)) == 5  # Mon 4 .. Fri 8


def test_an_override_still_decides_in_a_year_by_rule() -> None:
    schedule = WorkingCalendar({date(2027, 1, 1): True, date(2027, 10, 4): False, date(2027, 9, 26): True})
    assert schedule.is_working_day(date(2027, 1, 1))
    assert not schedule.is_working_day(date(2027, 10, 4))
    # From Friday 24 September: Mon 27 .. Thu 30 and Mon 4 .. Fri 8 by rule ...
    assert official.working_days_between(date(2027, 9, 24), date(2027, 10, 8)) == 9
    # ... and with Sunday 26 worked, Monday 4 off: Sun 26 .. Thu 30 and Tue 5 .. Fri 8
    assert schedule.working_days_between(date(2027, 9, 24), date(2027, 10, 8)) == 9
    assert schedule.add_working_days(datetime(2027, 9, 24, 10, tzinfo=CHINA_TZ), 1) == date(2027, 9, 26)
    assert schedule.add_working_days(datetime(2027, 9, 30, 10, tzinfo=CHINA_TZ), 1) == date(2027, 10, 5)


def test_the_editions_of_the_regulation() -> None:
    def spring(year: int) -> list[date]:
        return [d for d, name in statutory_holidays(year).items() if "Spring" in name]

    # 2007 edition (2008-2013): the eve, the 1st and the 2nd
    assert spring(2010) == [date(2010, 2, 13), date(2010, 2, 14), date(2010, 2, 15)]
    # 2013 edition (2014-2024): the 1st to the 3rd; the eve is worked
    assert spring(2024) == [date(2024, 2, 10), date(2024, 2, 11), date(2024, 2, 12)]
    # 2024 edition (from 2025): the eve and the 1st to the 3rd; Labour Day two days
    assert spring(2025) == [date(2025, 1, 28), date(2025, 1, 29), date(2025, 1, 30), date(2025, 1, 31)]
    assert [d for d, n in statutory_holidays(2024).items() if "Labour" in n] == [date(2024, 5, 1)]
    assert [d for d, n in statutory_holidays(2025).items() if "Labour" in n] == [date(2025, 5, 1), date(2025, 5, 2)]
    # before the package's years, the 2007 edition (earlier history is out of scope)
    assert spring(1990) == [date(1990, 1, 26), date(1990, 1, 27), date(1990, 1, 28)]
    assert len(statutory_holidays(1995)) == 11
    assert len(statutory_holidays(1990)) == 10  # Mid-Autumn on 3 October


def test_mid_autumn_on_national_day_is_one_day_with_both_names() -> None:
    assert statutory_holidays(2020)[date(2020, 10, 1)] == "中秋节 Mid-Autumn Festival / 国庆节 National Day"
    assert len(statutory_holidays(2020)) == 10


@pytest.mark.parametrize("year", range(MIN_DATE.year, MAX_DATE.year + 1))
def test_the_lunar_dates_are_the_right_lunar_days(year: int) -> None:
    by_name: dict[str, list[date]] = {}
    for day, names in statutory_holidays(year).items():
        assert day.year == year
        for name in names.split(" / "):
            by_name.setdefault(name.split()[0], []).append(day)

    @cache
    def lunar(day: date):  # lunar-python takes milliseconds a conversion
        return Solar.fromYmd(day.year, day.month, day.day).getLunar()

    spring = by_name["春节"]
    assert spring == [spring[0] + timedelta(days=k) for k in range(len(spring))]
    new_year = next(d for d in spring if (lunar(d).getMonth(), lunar(d).getDay()) == (1, 1))
    if year >= 2025 or year < 2014:
        # the eve is the last day of the 12th month (a leap 12th is negative), the 29th or the 30th
        eve = lunar(spring[0])
        assert spring[0] == new_year - timedelta(days=1) and abs(eve.getMonth()) == 12 and eve.getDay() in (29, 30)
    else:
        assert spring[0] == new_year
    [qingming] = by_name["清明节"]
    assert qingming.month == 4 and 4 <= qingming.day <= 6 and lunar(qingming).getJieQi() == "清明"
    [dragon_boat] = by_name["端午节"]
    assert (lunar(dragon_boat).getMonth(), lunar(dragon_boat).getDay()) == (5, 5)
    [mid_autumn] = by_name["中秋节"]
    assert (lunar(mid_autumn).getMonth(), lunar(mid_autumn).getDay()) == (8, 15)


def test_both_lengths_of_the_12th_month_give_an_eve() -> None:
    def eve(year: int) -> date:
        return next(d for d, name in statutory_holidays(year).items() if "Spring" in name)

    days = {Solar.fromYmd(d.year, d.month, d.day).getLunar().getDay() for d in map(eve, range(2025, 2100))}
    assert days == {29, 30}
    assert eve(2025) == date(2025, 1, 28)  # the 29th: the 12th month of 2024 had no 30th


# The package's names for the holidays of the regulation.
PACKAGE_NAMES = {
    "元旦": "New Year's Day", "春节": "Spring Festival", "清明节": "Tomb-sweeping Day", "劳动节": "Labour Day",
    "端午节": "Dragon Boat Festival", "中秋节": "Mid-autumn Festival", "国庆节": "National Day",
}
RULE_YEARS_CHECKED = range(2008, official_years().stop)


@pytest.mark.parametrize("year", RULE_YEARS_CHECKED)
def test_every_statutory_day_is_an_official_holiday(year: int) -> None:
    for day, names in statutory_holidays(year).items():
        assert not chinese_calendar.is_workday(day), (day, names)
        assert day not in chinese_calendar.workdays, (day, names)
        if day in chinese_calendar.holidays:  # the package leaves some weekend days unnamed
            ours = {PACKAGE_NAMES[name.split()[0]] for name in names.split(" / ")}
            assert chinese_calendar.holidays[day] in ours, (day, names, chinese_calendar.holidays[day])


def official_holiday_periods() -> list[list[date]]:
    """The package's holiday periods from 2008: runs of consecutive days off with a named holiday
    (runs, because the package does not name every weekend day inside a period)."""
    day, runs, run = date(RULE_YEARS_CHECKED.start, 1, 1), [], []
    while day.year in RULE_YEARS_CHECKED:
        if chinese_calendar.is_workday(day):
            if run:
                runs.append(run)
            run = []
        else:
            run.append(day)
        day += timedelta(days=1)
    runs.append(run)
    return [r for r in runs if any(d in chinese_calendar.holidays for d in r)]


def test_every_official_holiday_period_holds_a_statutory_day() -> None:
    periods = official_holiday_periods()
    assert len(periods) > 7 * len(RULE_YEARS_CHECKED) - 10  # about 7 a year, some merged
    statutory = {d for year in RULE_YEARS_CHECKED for d in statutory_holidays(year)}
    without = [(p[0], p[-1]) for p in periods if not statutory.intersection(p)]
    # The one exception: the 70th anniversary of the victory in the War of Resistance
    # (3 September 2015, a one-off holiday by its own State Council notice, not by the
    # regulation), with Friday 4 September bridging to the weekend.
    assert without == [(date(2015, 9, 3), date(2015, 9, 5))]
    assert {chinese_calendar.holidays.get(d) for d in periods[[p[0] for p in periods].index(date(2015, 9, 3))]} == {
        "Anti-Fascist 70th Day", None}


def test_years_without_official_schedule() -> None:
    last = official_years().stop - 1
    assert years_without_official_schedule(date(last, 6, 1), date(last + 2, 1, 1)) == [last + 1, last + 2]
    assert years_without_official_schedule(date(2025, 1, 1), date(2026, 12, 31)) == []
    assert years_without_official_schedule(date(2002, 1, 1), date(2005, 1, 1)) == [2002, 2003]
    assert years_without_official_schedule(date(2030, 1, 1), date(2029, 1, 1)) == []
    assert len(years_without_official_schedule(MIN_DATE, MAX_DATE)) == 300 - len(official_years())
