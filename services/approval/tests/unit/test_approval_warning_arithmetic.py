"""The deadline warning computed by arithmetic on the calendar gives exactly what the old walk
over every working day up to the due date gave. Pure: no database, no Kafka."""
from __future__ import annotations

import math
import random
from datetime import date, datetime, time, timedelta, timezone

import pytest

from civicgrid_common.calendar.working_days import CHINA_TZ, WorkingCalendar, local_date

from civicgrid_approval.adapters.deadlines import overdue_at, warning_at


def walked_warning_at(started: datetime, due_date: str, share: float, calendar: WorkingCalendar) -> datetime:
    """The implementation before the calendar counted by arithmetic, kept as the reference."""
    due = date.fromisoformat(due_date)
    day, days = local_date(started), []
    while day < due:
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            days.append(day)
    if not days:
        return started + (overdue_at(due_date) - started) * share
    passed = share * len(days)
    whole = math.floor(passed)
    if passed == whole:
        return datetime.combine(days[whole - 1] + timedelta(days=1), time(0), CHINA_TZ)
    return datetime.combine(days[whole], time(0), CHINA_TZ) + timedelta(days=1) * (passed - whole)


def random_calendar(rng: random.Random) -> WorkingCalendar:
    overrides = {}
    for _ in range(rng.choice([0, 5, 40])):
        day = date(2024, 1, 1) + timedelta(days=rng.randint(0, 7 * 365))
        overrides[day] = rng.random() < 0.5
    return WorkingCalendar(overrides)


@pytest.mark.parametrize("seed", range(8))
def test_the_warning_is_what_the_walk_gave(seed: int) -> None:
    rng = random.Random(seed)
    calendars = [WorkingCalendar(), *(random_calendar(rng) for _ in range(3))]
    for _ in range(400):
        calendar = rng.choice(calendars)
        start = date(2024, 1, 1) + timedelta(days=rng.randint(0, 6 * 365))  # across 2026 | 2027 too
        started = rng.choice([
            datetime.combine(start, time(rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)), CHINA_TZ),
            datetime.combine(start, time(rng.randint(0, 23)), timezone.utc),
        ])
        due = (local_date(started) + timedelta(days=rng.choice([rng.randint(-3, 3), rng.randint(-5, 40),
                                                                rng.randint(0, 400)]))).isoformat()
        share = rng.choice([0.8, 0.5, 2 / 3, 0.25, 0.1, 0.9, rng.random() or 0.5])
        assert warning_at(started, due, share, calendar) == walked_warning_at(started, due, share, calendar), (
            started, due, share, calendar.overrides)


@pytest.mark.parametrize(("started", "due"), [
    (datetime(2025, 9, 30, 17, tzinfo=CHINA_TZ), "2025-10-08"),  # no working day left: wall clock
    (datetime(2025, 9, 30, 17, tzinfo=CHINA_TZ), "2025-09-29"),  # due before the start: wall clock too
    (datetime(2025, 9, 30, 17, tzinfo=CHINA_TZ), "2025-10-09"),  # one working day
    (datetime(2026, 12, 31, 9, tzinfo=CHINA_TZ), "2027-02-10"),  # into the years by rule
])
def test_the_edges(started: datetime, due: str) -> None:
    calendar = WorkingCalendar()
    for share in (0.8, 0.5, 1 / 3, 0.999):
        assert warning_at(started, due, share, calendar) == walked_warning_at(started, due, share, calendar)
