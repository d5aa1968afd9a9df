"""The rules added beside the closed loop: limits' warnings and overdue marks (only while the
limit runs, once), the department system's task on dispatch and again on rework, the daily
check's missing report (once, never after a report, a later report marked late), the access
system (准入) on department work, the monthly sweep and a grid's workers."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from civicgrid_grid.domain.community_work import ACCEPTED, REFUSED, AccessGrant, CommunityWork, WorkKind
from civicgrid_grid.domain.incident import (
    DEADLINE_WARNED, OVERDUE, TASK_SYSTEMS, Handler, department_task_type,
)
from civicgrid_grid.domain.codes import GridCode
from civicgrid_grid.domain.reports import MISSING, SUBMITTED, DailyReport
from civicgrid_grid.domain.rules import InvalidInput, InvalidParameter, StateConflict
from civicgrid_grid.domain.stability import RECORDED, StabilitySweep

from grid_builders import ADMIN, box, china, grid, registry, replayed
from test_grid_incident import CALENDAR, CENTRE, HANDLER, KNOWN, MIN, REPORTED_AT, TABLE, WORKER, dispatched, reported

TASK = department_task_type("urban_management")


def types(aggregate) -> list[str]:
    return [e.type for e in aggregate.pending_events]


def test_a_limits_timer_marks_once_and_only_while_the_limit_runs() -> None:
    incident = reported()
    due = incident.create_due
    assert incident.deadline_reached("create", due, overdue=False, at=due - 5 * MIN)
    assert not incident.deadline_reached("create", due, overdue=False, at=due - 4 * MIN)  # once
    assert incident.deadline_reached("create", due, overdue=True, at=due)
    assert types(incident)[-2:] == [DEADLINE_WARNED, OVERDUE] and incident.overdue == {"create"}
    # A timer for another due instant (the limit moved) or a limit no longer running: nothing.
    assert not incident.deadline_reached("create", due + MIN, overdue=True, at=due)
    assert not incident.deadline_reached("verification", due, overdue=True, at=due)
    assert replayed(incident).overdue == {"create"}


def test_a_dispatch_to_a_department_system_issues_its_task_and_a_rework_issues_it_again() -> None:
    assert "urban_management" in TASK_SYSTEMS
    incident = reported()
    incident.create(TABLE.current(incident.reported_class), by=CENTRE, at=REPORTED_AT + MIN)
    urban = Handler.department("urban_management", KNOWN)
    incident.dispatch(urban, calendar=CALENDAR, by=CENTRE, at=REPORTED_AT + 2 * MIN, task_systems=TASK_SYSTEMS)
    task = incident.pending_events[-1]
    assert task.type == TASK and task.data["rework"] == 0 and task.data["note"] is None
    assert WORKER not in str(task.data)  # what to do and where, never who reported it
    incident.feedback(urban, result="清理完毕", by=HANDLER, at=REPORTED_AT + 60 * MIN)
    incident.verify(passed=False, note="仍有垃圾", by=WORKER, at=REPORTED_AT + 70 * MIN)
    again = incident.pending_events[-1]
    assert again.type == TASK and again.data["rework"] == 1 and again.data["note"] == "仍有垃圾"
    assert replayed(incident).task_system == "urban_management"


def test_a_dispatch_to_a_department_without_a_system_or_a_squad_issues_no_task() -> None:
    incident = dispatched()  # urban management, but no task systems named
    assert TASK not in types(incident)
    incident = reported()
    incident.create(TABLE.current(incident.reported_class), by=CENTRE, at=REPORTED_AT + MIN)
    incident.dispatch(Handler.squad("sanitation"), calendar=CALENDAR, by=CENTRE, at=REPORTED_AT + 2 * MIN,
                      task_systems=TASK_SYSTEMS)
    assert TASK not in types(incident)


GRID = GridCode("320104001001003")
MONDAY = date(2026, 3, 2)


def test_the_daily_check_flags_a_missing_report_once_and_a_later_report_is_late() -> None:
    report = DailyReport(DailyReport.stream_for(GRID, MONDAY))
    check = china(2026, 3, 2, 17, 0)
    assert report.mark_missing(grid=GRID, day=MONDAY, check_at=check, at=check)
    assert not report.mark_missing(grid=GRID, day=MONDAY, check_at=check, at=check + MIN)
    report.submit(grid=GRID, day=MONDAY, all_safe=True, calendar=CALENDAR, client_id="r-late", by=WORKER,
                  at=check + 30 * MIN)
    assert types(report) == [MISSING, SUBMITTED] and report.pending_events[-1].data["late"] is True
    on_time = DailyReport(DailyReport.stream_for(GRID, MONDAY))
    on_time.submit(grid=GRID, day=MONDAY, all_safe=True, calendar=CALENDAR, client_id="r", by=WORKER,
                   at=check - 60 * MIN)
    assert not on_time.mark_missing(grid=GRID, day=MONDAY, check_at=check, at=check)
    assert on_time.pending_events[-1].data["late"] is False


GRANT = AccessGrant("a-1", "civil_affairs", WorkKind.SURVEY, frozenset({"320104001001"}), date(2026, 3, 1),
                    date(2026, 3, 31))


@pytest.mark.parametrize("department,kind,community,day,accepted", [
    ("civil_affairs", "survey", "320104001001", (2026, 3, 2), True),
    ("civil_affairs", "survey", "320104001001", (2026, 4, 1), False),  # expired
    ("civil_affairs", "inspection", "320104001001", (2026, 3, 2), False),  # another kind of work
    ("tax", "survey", "320104001001", (2026, 3, 2), False),  # another department
    ("civil_affairs", "survey", "320104001002", (2026, 3, 2), False),  # another community
])
def test_department_work_is_taken_only_under_a_grant_in_force(department, kind, community, day, accepted) -> None:
    work = CommunityWork(CommunityWork.stream_for(community))
    result = work.receive(department=department, work_kind=kind, title="入户调查", description=None, grants=[GRANT],
                          client_id="w-1", by="dept-user", at=china(*day, 10, 0))
    assert result == ((True, "a-1") if accepted else (False, "no_access_grant"))
    assert types(work) == [ACCEPTED if accepted else REFUSED]
    # The same push sent again: the first answer, recorded once.
    assert work.receive(department=department, work_kind=kind, title="入户调查", description=None, grants=[GRANT],
                        client_id="w-1", by="dept-user", at=china(*day, 10, 5)) == result
    assert len(work.pending_events) == 1


def test_a_grant_counts_on_chinas_date_not_utcs() -> None:
    work = CommunityWork(CommunityWork.stream_for("320104001001"))
    # 1 March 2026 00:30 China time is still 28 February in UTC: the grant is in force.
    assert work.receive(department="civil_affairs", work_kind="survey", title="t", description=None, grants=[GRANT],
                        client_id="w-2", by="u", at=china(2026, 3, 1, 0, 30))[0]


def test_the_monthly_sweep_is_recorded_once_and_not_before_its_month_in_china() -> None:
    sweep = StabilitySweep(StabilitySweep.stream_for("320104001001", "2026-03"))
    factor = {"category": "labour", "level": "medium", "grid": "320104001001003", "summary": "工资拖欠"}
    with pytest.raises(InvalidParameter):  # 28 Feb 23:00 China time: March has not begun
        sweep.record([factor], client_id="s-1", by=CENTRE, at=china(2026, 2, 28, 23, 0))
    assert sweep.record([factor], client_id="s-1", by=CENTRE, at=china(2026, 3, 1, 0, 30))  # UTC still February
    assert not sweep.record([factor], client_id="s-1", by=CENTRE, at=china(2026, 3, 1, 1, 0))
    with pytest.raises(StateConflict):
        sweep.record([], client_id="s-2", by=CENTRE, at=china(2026, 3, 2, 9, 0))
    with pytest.raises(InvalidInput) as refused:
        StabilitySweep(StabilitySweep.stream_for("320104001001", "2026-04")).record(
            [{**factor, "grid": "320104001002003"}], client_id="s-3", by=CENTRE, at=china(2026, 4, 2, 9, 0))
    assert refused.value.field == "factors/0/grid"
    assert types(sweep) == [RECORDED]


def test_a_grids_workers_have_a_lead_among_them() -> None:
    r = registry()
    r.define_grid(grid(1, box(118.78, 32.02, 118.79, 32.03)), by=ADMIN, at=REPORTED_AT)
    code = "320104001001001"
    with pytest.raises(InvalidInput) as refused:
        r.assign_workers(code, ["gw-1", "gw-2"], lead="gw-9", by=ADMIN, at=REPORTED_AT)
    assert refused.value.field == "lead"
    with pytest.raises(InvalidInput):
        r.assign_workers(code, ["gw-1", "gw-1"], lead="gw-1", by=ADMIN, at=REPORTED_AT)
    r.assign_workers(code, ["gw-2", "gw-1"], lead="gw-1", by=ADMIN, at=REPORTED_AT + timedelta(minutes=1))
    assert replayed(r).workers[code] == ("gw-1", "gw-2")
