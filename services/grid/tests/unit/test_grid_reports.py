"""Daily reports (有事报事，无事报平安), the missing-report decision, and patrols with their GPS
track."""
from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from shapely import Polygon

from civicgrid_common.calendar import WorkingCalendar

from civicgrid_grid.domain.codes import GridCode
from civicgrid_grid.domain.geometry import GeoPoint
from civicgrid_grid.domain.patrol import ENDED, STARTED, TRACK_RECORDED, Patrol, TrackPoint
from civicgrid_grid.domain.reports import (
    SUBMITTED, DailyReport, ReportFact, may_check_again, missing_reports, next_missing_check, report_coverage,
)
from civicgrid_grid.domain.rules import InvalidInput, InvalidParameter, StateConflict

from grid_builders import china, grid_code, replayed, state

CALENDAR = WorkingCalendar()
GRID = GridCode(grid_code(1))
MONDAY, SATURDAY = date(2026, 3, 2), date(2026, 3, 7)
NATIONAL_DAY, WORKED_SATURDAY = date(2026, 10, 1), date(2026, 10, 10)  # 2026: 1-7 Oct off, Sat 10 Oct worked
WORKER = "gw-0031"


def report_for(day: date) -> DailyReport:
    return DailyReport(DailyReport.stream_for(GRID, day))


def submit(report: DailyReport, day: date, *, at=None, client_id: str = "c-1", **kwargs) -> bool:
    return report.submit(**{"grid": GRID, "day": day, "all_safe": True, "calendar": CALENDAR, "client_id": client_id,
                            "by": WORKER, "at": at or china(day.year, day.month, day.day, 16, 0), **kwargs})


def test_an_all_safe_report_for_a_working_day() -> None:
    report = report_for(MONDAY)
    assert report.id == "daily-report:320104001001001:2026-03-02"
    assert submit(report, MONDAY) is True
    event = report.pending_events[0]
    assert event.type == SUBMITTED == "civicgrid.grid.daily_report.submitted.v1"
    assert event.data | {"at": None} == {"grid": GRID.value, "date": "2026-03-02", "all_safe": True, "incidents": [],
                                         "late": False, "patrol_id": None, "client_id": "c-1", "by": WORKER,
                                         "at": None}
    assert state(replayed(report)) == state(report)


def test_a_report_with_the_incidents_found() -> None:
    report = report_for(MONDAY)
    submit(report, MONDAY, all_safe=False, incidents=["inc-0001", "inc-0002"], patrol_id="patrol-77")
    assert report.incidents == ("inc-0001", "inc-0002") and report.all_safe is False


def test_one_report_per_grid_per_day_and_the_same_one_sent_again_is_recorded_once() -> None:
    report = report_for(MONDAY)
    submit(report, MONDAY)
    assert submit(report, MONDAY) is False and report.version == 1
    with pytest.raises(StateConflict) as refused:
        submit(report, MONDAY, client_id="c-2", all_safe=False, incidents=["inc-9"])
    assert refused.value.code == "already_reported" and report.version == 1


@pytest.mark.parametrize("day", [SATURDAY, NATIONAL_DAY])
def test_a_report_for_a_day_that_is_not_a_working_day_is_refused_naming_the_date(day: date) -> None:
    with pytest.raises(InvalidInput) as refused:
        submit(report_for(day), day)
    assert (refused.value.code, refused.value.field) == ("not_a_working_day", "date")
    assert refused.value.problem().to_dict()["errors"] == [{"pointer": "#/date", "detail": refused.value.message}]


def test_a_saturday_worked_in_exchange_for_a_holiday_takes_a_report() -> None:
    assert submit(report_for(WORKED_SATURDAY), WORKED_SATURDAY) is True


@pytest.mark.parametrize("kwargs, code, field", [
    ({"incidents": ["inc-1"]}, "all_safe_with_incidents", "incidents"),
    ({"all_safe": False}, "incidents_required", "incidents"),
    ({"all_safe": False, "incidents": ["inc-1", "inc-1"]}, "invalid_incidents", "incidents"),
    ({"all_safe": False, "incidents": ["bad id"]}, "invalid_incident_id", "incidents/0"),
    ({"all_safe": "yes"}, "invalid_flag", "all_safe"),
    ({"at": china(2026, 3, 1, 23, 0)}, "day_in_future", "date"),
])
def test_a_report_that_does_not_hold_is_refused_naming_the_field(kwargs: dict, code: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        submit(report_for(MONDAY), MONDAY, **kwargs)
    assert (refused.value.code, refused.value.field) == (code, field)


def test_a_report_sent_the_next_day_from_an_offline_phone_is_taken_and_marked_late() -> None:
    report = report_for(MONDAY)
    submit(report, MONDAY, at=china(2026, 3, 3, 8, 0))
    assert report.late is True and report.pending_events[0].data["late"] is True


def test_the_missing_reports_of_a_day() -> None:
    grids = [GridCode(grid_code(n)) for n in (1, 2, 3, 4)]
    reports = [ReportFact(grid_code(1), MONDAY), ReportFact(grid_code(3), MONDAY),
               ReportFact(grid_code(2), date(2026, 3, 3))]  # another day's report does not count
    real = report_for(MONDAY)
    submit(real, MONDAY)  # a DailyReport itself will do as well (grid 1 again)
    assert missing_reports(MONDAY, grids, [*reports, real], CALENDAR) == [grid_code(2), grid_code(4)]
    assert missing_reports(SATURDAY, grids, [], CALENDAR) == []  # nothing was due
    assert missing_reports(MONDAY, [], reports, CALENDAR) == []
    coverage = report_coverage(MONDAY, grids, reports, CALENDAR)
    assert (coverage.numerator, coverage.denominator, coverage.value) == (2, 4, 0.5)
    assert report_coverage(SATURDAY, grids, reports, CALENDAR).value is None


def test_the_missing_report_check_runs_at_the_configured_hour_of_each_working_day() -> None:
    assert next_missing_check(china(2026, 3, 6, 10, 0), CALENDAR) == china(2026, 3, 6, 17, 0)  # Friday
    assert next_missing_check(china(2026, 3, 6, 17, 0), CALENDAR) == china(2026, 3, 9, 17, 0)  # then Monday
    assert next_missing_check(china(2026, 3, 7, 12, 0), CALENDAR) == china(2026, 3, 9, 17, 0)  # from a Saturday
    assert next_missing_check(china(2026, 9, 30, 18, 0), CALENDAR, hour=time(18, 30)) == china(2026, 9, 30, 18, 30)
    assert next_missing_check(china(2026, 9, 30, 19, 0), CALENDAR, hour=time(18, 30)) == china(2026, 10, 8, 18, 30)


# ---------------------------------------------------------------------------- patrols

AREA = Polygon([(118.782, 32.022), (118.790, 32.022), (118.790, 32.030), (118.782, 32.030)])
START = china(2026, 3, 2, 9, 0)


def point(lat: float, lon: float, minutes: int) -> TrackPoint:
    return TrackPoint(GeoPoint.parse(lat, lon), START + timedelta(minutes=minutes))


def started() -> Patrol:
    patrol = Patrol("patrol-77")
    patrol.start(grid=GRID, by=WORKER, at=START, client_id="c-start")
    return patrol


def test_todays_check_may_run_again_once_its_hour_has_passed_and_for_today_only() -> None:
    hour = time(17, 0)
    may_check_again(MONDAY, china(2026, 3, 2, 17, 0), CALENDAR, hour)  # from the hour on
    may_check_again(MONDAY, china(2026, 3, 2, 23, 59), CALENDAR, hour)
    with pytest.raises(StateConflict) as early:
        may_check_again(MONDAY, china(2026, 3, 2, 16, 59), CALENDAR, hour)
    assert early.value.code == "check_not_due"  # a grid may still report on time
    for day, now, code in ((MONDAY, china(2026, 3, 3, 18, 0), "not_today"),  # a past day's grids, as they stood?
                           (date(2026, 3, 3), china(2026, 3, 2, 18, 0), "not_today"),
                           (SATURDAY, china(2026, 3, 7, 18, 0), "not_a_working_day")):
        with pytest.raises(InvalidParameter) as refused:
            may_check_again(day, now, CALENDAR, hour)
        assert (refused.value.code, refused.value.parameter) == (code, ("day", "path"))
    # The day is China's: at 01:00 on Tuesday there (17:00 on Monday in UTC) Monday is a past day.
    with pytest.raises(InvalidParameter):
        may_check_again(MONDAY, china(2026, 3, 3, 1, 0), CALENDAR, hour)


def test_a_patrol_flags_points_outside_its_grid_and_refuses_none_of_them() -> None:
    patrol = started()
    inside, edge, across = point(32.025, 118.785, 1), point(32.026, 118.790, 2), point(32.026, 118.7905, 3)
    patrol.record_track([inside, edge, across], area=AREA, at=START + timedelta(minutes=5), client_id="c-b1")
    data = patrol.pending_events[-1].data
    assert [p["outside"] for p in data["points"]] == [False, False, True]  # the edge is the grid's
    assert data["outside"] == 1 and patrol.points_outside == 1 and patrol.point_count == 3
    patrol.end(area=AREA, at=START + timedelta(minutes=50), client_id="c-end",
               points=[point(32.040, 118.785, 40), point(32.024, 118.786, 45)])
    assert patrol.ended and patrol.points_outside == 2 and patrol.point_count == 5
    assert [e.type for e in patrol.pending_events] == [STARTED, TRACK_RECORDED, ENDED]
    assert state(replayed(patrol)) == state(patrol)


def test_a_batch_sent_twice_is_recorded_once() -> None:
    patrol = started()
    batch = [point(32.025, 118.785, 1)]
    assert patrol.record_track(batch, area=AREA, at=START + timedelta(minutes=2), client_id="c-b1") is True
    assert patrol.record_track([point(32.025, 118.786, 3)], area=AREA, at=START + timedelta(minutes=4),
                               client_id="c-b2") is True
    assert patrol.record_track(batch, area=AREA, at=START + timedelta(minutes=2), client_id="c-b1") is False
    assert patrol.point_count == 2
    assert patrol.start(grid=GRID, by=WORKER, at=START, client_id="c-start") is False


def test_a_track_out_of_order_or_stamped_in_the_future_is_refused() -> None:
    patrol = started()
    patrol.record_track([point(32.025, 118.785, 10)], area=AREA, at=START + timedelta(minutes=11), client_id="b1")
    with pytest.raises(InvalidInput) as refused:
        patrol.record_track([point(32.025, 118.785, 9)], area=AREA, at=START + timedelta(minutes=12), client_id="b2")
    assert (refused.value.code, refused.value.field) == ("track_out_of_order", "points/0/at")
    with pytest.raises(InvalidInput) as refused:
        patrol.record_track([point(32.025, 118.785, 30)], area=AREA, at=START + timedelta(minutes=12), client_id="b3")
    assert refused.value.code == "point_in_future"
    with pytest.raises(InvalidInput) as refused:
        patrol.record_track([], area=AREA, at=START + timedelta(minutes=12), client_id="b4")
    assert refused.value.field == "points"


def test_a_patrol_is_started_before_and_not_tracked_after_it_ends() -> None:
    with pytest.raises(StateConflict) as refused:
        Patrol("p").record_track([point(32.025, 118.785, 1)], area=AREA, at=START, client_id="b1")
    assert refused.value.code == "not_started"
    patrol = started()
    patrol.end(area=AREA, at=START + timedelta(hours=1), client_id="c-end")
    with pytest.raises(StateConflict) as refused:
        patrol.record_track([point(32.025, 118.785, 61)], area=AREA, at=START + timedelta(hours=2), client_id="b2")
    assert refused.value.code == "already_ended"
    with pytest.raises(StateConflict):
        patrol.start(grid=GRID, by=WORKER, at=START, client_id="c-other")
    forgotten = started()
    with pytest.raises(InvalidInput) as refused:
        forgotten.end(area=AREA, at=START + timedelta(hours=20), client_id="c-end")
    assert refused.value.code == "patrol_too_long"
