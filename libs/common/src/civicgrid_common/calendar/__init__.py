"""China's working-day calendar: official holidays, swapped working days (调休), local overrides.

The pure rules live in `working_days` (no I/O); `overrides` keeps an admin's overrides in
PostgreSQL and `api` exposes them over HTTP. Import those two explicitly: this package's
top level stays free of I/O so that domain code may use it.
"""
from civicgrid_common.calendar.working_days import (
    CHINA_TZ,
    MAX_DATE,
    MIN_DATE,
    WorkingCalendar,
    official_years,
    statutory_holidays,
    years_without_official_schedule,
)

__all__ = [
    "CHINA_TZ",
    "MAX_DATE",
    "MIN_DATE",
    "WorkingCalendar",
    "official_years",
    "statutory_holidays",
    "years_without_official_schedule",
]
