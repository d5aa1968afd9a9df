"""The district's working-day calendar as intake keeps it (工作日历): intake owns the overrides
an admin sets and publishes them, so every service counts due dates on the same days.

One aggregate per district (stream `calendar:<district>`). An override makes one day a working
day or not, with why, who and when; a year's schedule is confirmed once the bridging and swapped
working days (调休) the State Council announced for it are entered, for a year the calendar
package does not cover yet. The events are the platform's calendar contract
(civicgrid_common.calendar.contract): every service applies them to its own copy.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Mapping

from civicgrid_common.aggregate import Aggregate, applies
from civicgrid_common.calendar.contract import CALENDAR_STREAM_TYPE, OVERRIDE_SET, SCHEDULE_CONFIRMED
from civicgrid_common.calendar.working_days import MAX_DATE, MIN_DATE, official_years
from civicgrid_common.problems import Refusal, RuleViolation


class CalendarRuleViolation(RuleViolation):
    refusal = Refusal.INVALID


class DistrictCalendar(Aggregate):
    stream_type = CALENDAR_STREAM_TYPE

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.overrides: dict[date, bool] = {}
        self.confirmed_years: set[int] = set()

    @staticmethod
    def stream_for(district: str) -> str:
        return f"calendar:{district}"

    @property
    def district(self) -> str:
        return self.id.removeprefix("calendar:")

    def set_override(self, day: date, is_working_day: bool, *, reason: str, by: str, at: datetime) -> None:
        if not MIN_DATE <= day <= MAX_DATE:
            raise CalendarRuleViolation("day_out_of_range", f"the calendar covers {MIN_DATE} to {MAX_DATE}",
                                        parameter=("day", "path"))
        if not reason.strip():
            raise CalendarRuleViolation("reason_required", "an override needs a reason", field="reason")
        self._emit(OVERRIDE_SET, {"district": self.district, "date": day.isoformat(),
                                  "is_working_day": is_working_day, "reason": reason.strip(), "set_by": by,
                                  "set_at": at.isoformat()})

    def confirm_schedule(self, year: int, *, source: str, by: str, at: datetime) -> None:
        if not source.strip():
            raise CalendarRuleViolation("source_required", "name the announcement whose days were entered",
                                        field="source")
        if year in official_years():
            raise RuleViolation("schedule_official", f"the State Council's schedule of {year} is in the calendar "
                                "package already: there is nothing to confirm", parameter=("year", "path"))
        self._emit(SCHEDULE_CONFIRMED, {"district": self.district, "year": year, "source": source.strip(),
                                        "confirmed_by": by, "confirmed_at": at.isoformat()})

    @applies(OVERRIDE_SET)
    def _override_set(self, d: Mapping[str, Any]) -> None:
        self.overrides[date.fromisoformat(d["date"])] = bool(d["is_working_day"])

    @applies(SCHEDULE_CONFIRMED)
    def _schedule_confirmed(self, d: Mapping[str, Any]) -> None:
        self.confirmed_years.add(int(d["year"]))
