"""The receipt's promised completion date: N working days after acceptance, China's calendar.

Dates here were counted by hand on the State Council's 2025 schedule: National Day and
Mid-Autumn 1-8 October (Wed-Wed) off, Sunday 28 September and Saturday 11 October worked.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from civicgrid_common.calendar import WorkingCalendar, official_years
from civicgrid_intake.domain.case import Actor, Affair, AffairLevel, Case
from civicgrid_intake.domain.routing import StreetHandles

CST = timezone(timedelta(hours=8))
CLERK = Actor.of("clerk-1", ["window_clerk"])


def due_date(time_limit: int, accepted_at: datetime, calendar: WorkingCalendar = WorkingCalendar()) -> date:
    affair = Affair("labour.unemployment_registration", 1, time_limit, ("form",), StreetHandles(), AffairLevel.STREET)
    case = Case("case-due")
    case.register(applicant_id="app-1", affair=affair, jurisdiction="320104001", channel="window",
                  materials_handed_in=["form"], actor=CLERK, at=accepted_at)
    receipt = case.accept(daily_sequence=1, calendar=calendar, actor=CLERK, at=accepted_at)
    assert case.pending_events[-1].data["due_date"] == receipt.due_date.isoformat()
    return receipt.due_date


@pytest.mark.parametrize("accepted_at, days, expected", [
    # the day of acceptance does not count, even at 08:00 on a working day
    (datetime(2025, 9, 29, 8, 0, tzinfo=CST), 1, date(2025, 9, 30)),
    # accepted on the eve of the holiday: the next working day is 9 October
    (datetime(2025, 9, 30, 17, 0, tzinfo=CST), 1, date(2025, 10, 9)),
    # Saturday 11 October is a swapped working day and counts
    (datetime(2025, 9, 30, 17, 0, tzinfo=CST), 3, date(2025, 10, 11)),
    (datetime(2025, 9, 30, 17, 0, tzinfo=CST), 5, date(2025, 10, 14)),
    (datetime(2025, 9, 30, 17, 0, tzinfo=CST), 20, date(2025, 11, 4)),
    # accepted online on Saturday 27 September: Sunday 28 September is worked
    (datetime(2025, 9, 27, 10, 0, tzinfo=CST), 1, date(2025, 9, 28)),
    # accepted during the holiday: counting starts on 9 October
    (datetime(2025, 10, 3, 10, 0, tzinfo=CST), 2, date(2025, 10, 10)),
    # 16:30 UTC on 30 September is already 1 October in Nanjing
    (datetime(2025, 9, 30, 16, 30, tzinfo=timezone.utc), 1, date(2025, 10, 9)),
])
def test_due_dates_across_national_day_2025(accepted_at: datetime, days: int, expected: date) -> None:
    assert due_date(days, accepted_at) == expected


def test_2027_is_beyond_the_calendar_package_so_its_statutory_holidays_come_by_rule() -> None:
    assert 2027 not in official_years()
    # National Day, 1 to 3 October by the regulation (a Friday to a Sunday in 2027); the bridging
    # days the State Council adds each year are not known yet (an admin enters them as overrides).
    assert due_date(1, datetime(2027, 9, 30, 10, 0, tzinfo=CST)) == date(2027, 10, 4)
    assert due_date(2, datetime(2027, 9, 30, 10, 0, tzinfo=CST)) == date(2027, 10, 5)
    assert due_date(10, datetime(2027, 9, 30, 10, 0, tzinfo=CST)) == date(2027, 10, 15)


def test_2027_holidays_added_as_overrides_count() -> None:
    holidays = {date(2027, 10, 1) + timedelta(days=k): False for k in range(7)}  # say, 1-7 October
    calendar = WorkingCalendar(holidays | {date(2027, 10, 9): True})  # and a worked Saturday
    assert due_date(1, datetime(2027, 9, 30, 10, 0, tzinfo=CST), calendar) == date(2027, 10, 8)
    assert due_date(2, datetime(2027, 9, 30, 10, 0, tzinfo=CST), calendar) == date(2027, 10, 9)


def test_new_year_2027_across_the_end_of_the_package() -> None:
    accepted_at = datetime(2026, 12, 31, 10, 0, tzinfo=CST)
    # New Year's Day (a Friday) is a statutory holiday whatever the year; an override still decides.
    assert due_date(1, accepted_at) == date(2027, 1, 4)
    assert due_date(1, accepted_at, WorkingCalendar({date(2027, 1, 1): True})) == date(2027, 1, 1)


def test_a_local_closure_moves_the_due_date() -> None:
    typhoon = WorkingCalendar({date(2025, 10, 9): False})
    assert due_date(1, datetime(2025, 9, 30, 17, 0, tzinfo=CST), typhoon) == date(2025, 10, 10)
