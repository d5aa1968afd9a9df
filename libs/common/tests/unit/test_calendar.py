"""The pure working-day calendar: official holidays, swapped working days, overrides, fallback.

Dates of 2025 (State Council notice): National Day + Mid-Autumn holidays 1-8 October, with
Sunday 28 September and Saturday 11 October worked; Spring Festival holidays 28 January -
4 February, with Sunday 26 January and Saturday 8 February worked.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicgrid_common.calendar import CHINA_TZ, WorkingCalendar, official_years
from civicgrid_common.calendar.working_days import local_date, statutory_holidays


def at(y: int, m: int, d: int, hour: int = 10) -> datetime:
    return datetime(y, m, d, hour, tzinfo=CHINA_TZ)


official = WorkingCalendar()


def test_installed_package_covers_the_years_the_tests_rely_on() -> None:
    years = official_years()
    assert 2004 in years and 2025 in years
    assert 2100 not in years and 2003 not in years


def test_national_day_golden_week() -> None:
    assert not any(official.is_working_day(date(2025, 10, d)) for d in range(1, 9))
    # accepted on the last working day before the holiday: the 8 days off do not count
    assert official.add_working_days(at(2025, 9, 30), 1) == date(2025, 10, 9)
    # Thu 9, Fri 10, and Sat 11 (a swapped working day)
    assert official.add_working_days(at(2025, 9, 30), 3) == date(2025, 10, 11)
    assert official.add_working_days(at(2025, 9, 30), 4) == date(2025, 10, 13)


def test_spring_festival() -> None:
    assert not any(official.is_working_day(date(2025, 1, 28) + timedelta(days=k)) for k in range(8))
    assert official.add_working_days(at(2025, 1, 27), 1) == date(2025, 2, 5)
    # Wed 5, Thu 6, Fri 7, Sat 8 (swapped working day)
    assert official.add_working_days(at(2025, 1, 27), 4) == date(2025, 2, 8)


def test_swapped_weekend_working_days() -> None:
    assert date(2025, 10, 11).weekday() == 5 and official.is_working_day(date(2025, 10, 11))
    assert date(2025, 9, 28).weekday() == 6 and official.is_working_day(date(2025, 9, 28))
    # a swapped Sunday counts inside a due date: accepted Friday 26 Sept 2025
    assert official.add_working_days(at(2025, 9, 26), 1) == date(2025, 9, 28)
    # an ordinary Saturday does not
    assert not official.is_working_day(date(2025, 3, 8))


def test_the_day_of_the_instant_does_not_count() -> None:
    # Monday 3 March 2025, 08:00: day one is Tuesday
    assert official.add_working_days(at(2025, 3, 3, hour=8), 1) == date(2025, 3, 4)
    assert official.add_working_days(at(2025, 3, 3, hour=8), 5) == date(2025, 3, 10)


def test_the_day_is_taken_in_china_standard_time() -> None:
    # Sunday 2 March 23:00 in Beijing (15:00 UTC): Monday is day one
    assert official.add_working_days(datetime(2025, 3, 2, 15, tzinfo=timezone.utc), 1) == date(2025, 3, 3)
    # 17:00 UTC is already Monday 01:00 in Beijing: Tuesday is day one
    assert official.add_working_days(datetime(2025, 3, 2, 17, tzinfo=timezone.utc), 1) == date(2025, 3, 4)


def test_a_year_beyond_the_package_knows_the_statutory_holidays_and_takes_overrides() -> None:
    # The package raises NotImplementedError for 2100; 1 January 2100 is a Friday, and New Year's
    # Day by the State Council's regulation whatever the year.
    assert date(2100, 1, 1).weekday() == 4
    assert not official.is_working_day(date(2100, 1, 1))
    assert not official.is_working_day(date(2100, 1, 2))
    assert official.add_working_days(at(2100, 1, 1), 1) == date(2100, 1, 4)
    closed = WorkingCalendar({date(2100, 1, 4): False, date(2100, 1, 9): True})
    assert closed.add_working_days(at(2100, 1, 1), 1) == date(2100, 1, 5)
    # Tue 5 .. Fri 8 and the overridden Saturday 9
    assert closed.add_working_days(at(2100, 1, 1), 5) == date(2100, 1, 9)


def test_the_first_year_after_coverage_never_fails() -> None:
    # Weekdays are working days there, but for the holidays the regulation fixes by rule.
    year = official_years().stop
    holidays = statutory_holidays(year)
    days = [date(year, 1, 1) + timedelta(days=k) for k in range(21)]
    assert [official.is_working_day(d) for d in days] == [d.weekday() < 5 and d not in holidays for d in days]
    assert official.add_working_days(at(year - 1, 12, 30), 3) > date(year - 1, 12, 31)


def test_an_override_closes_a_normal_working_day_and_opens_a_holiday() -> None:
    cal = WorkingCalendar({date(2025, 3, 4): False, date(2025, 10, 2): True})
    assert not cal.is_working_day(date(2025, 3, 4))
    assert cal.add_working_days(at(2025, 3, 3), 1) == date(2025, 3, 5)
    assert cal.is_working_day(date(2025, 10, 2))
    assert cal.add_working_days(at(2025, 9, 30), 1) == date(2025, 10, 2)
    assert official.is_working_day(date(2025, 3, 4))  # overrides belong to their calendar only


def test_working_days_between() -> None:
    assert official.working_days_between(date(2025, 9, 30), date(2025, 10, 11)) == 3
    assert official.working_days_between(date(2025, 10, 11), date(2025, 9, 30)) == -3
    assert official.working_days_between(date(2025, 10, 1), date(2025, 10, 1)) == 0
    assert official.working_days_between(date(2025, 10, 1), date(2025, 10, 8)) == 0


@settings(max_examples=60, deadline=None)
@given(
    day=st.dates(min_value=date(2023, 1, 1), max_value=date(2028, 12, 31)),
    hour=st.integers(0, 23),
    n=st.integers(1, 40),
    closed=st.sets(st.dates(min_value=date(2023, 1, 1), max_value=date(2029, 6, 30)), max_size=5),
)
def test_due_date_is_the_nth_working_day_after(day: date, hour: int, n: int, closed: set[date]) -> None:
    cal = WorkingCalendar({d: False for d in closed})
    instant = datetime(day.year, day.month, day.day, hour, tzinfo=CHINA_TZ)
    due = cal.add_working_days(instant, n)
    assert cal.is_working_day(due)
    assert cal.working_days_between(local_date(instant), due) == n
    assert cal.working_days_between(local_date(instant), due - timedelta(days=1)) == n - 1


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        official.add_working_days(datetime(2025, 3, 3, 10), 1)
    with pytest.raises(ValueError, match="between 1 and"):
        official.add_working_days(at(2025, 3, 3), 0)
    with pytest.raises(TypeError):
        official.is_working_day(at(2025, 3, 3))  # type: ignore[arg-type]
