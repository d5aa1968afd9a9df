"""The incident's closed loop: each transition and each refusal, the 10- and 30-minute limits,
the handling limit from dispatch, verification within the hour, on time or not, deferral out of
the figures, rework counted, a phone's queue replayed, and replay of the events."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from civicgrid_common.calendar import WorkingCalendar
from civicgrid_common.problems import Refusal

from civicgrid_grid.domain.classification import ClassKey, Classification, Kind, classes_from_seed, seed_classification
from civicgrid_grid.domain.codes import GridCode
from civicgrid_grid.domain.geometry import GeoPoint
from civicgrid_grid.domain.incident import (
    CLOSED, CREATED, DEFERRED, DISPATCHED, EVALUATED, FED_BACK, REPORTED, REWORK_ORDERED, Evaluation, Handler,
    Incident, State, closure_figures,
)
from civicgrid_grid.domain.rules import InvalidInput, NotYours, StateConflict
from civicgrid_grid.domain.seed import seed_document

from grid_builders import ADMIN, china, departments, replayed, state

CALENDAR = WorkingCalendar()
KNOWN = departments()
TABLE = Classification(Classification.stream_for("320104"))
seed_classification(TABLE, classes_from_seed(seed_document()), known_departments=KNOWN, by=ADMIN,
                    at=china(2026, 1, 5, 9, 0))
RUBBISH = ClassKey(Kind.EVENT, "01", "01")  # exposed rubbish: 4 working hours, urban management
COLLAPSE = ClassKey(Kind.EVENT, "04", "01")  # road surface collapse: 2 clock hours
MANHOLE = ClassKey(Kind.PART, "01", "01")
GRID = GridCode("320104001001003")
URBAN = Handler.department("urban_management", KNOWN)
WORKER, CENTRE, HANDLER = "gw-0031", "centre-0001", "um-officer-7"
# Monday 2 March 2026, 09:00 China time: a working morning.
REPORTED_AT = china(2026, 3, 2, 9, 0)
MIN = timedelta(minutes=1)


def reported(*, urgent: bool = False, key: ClassKey = RUBBISH, at=REPORTED_AT, **kwargs) -> Incident:
    incident = Incident("inc-0001")
    incident.report(**{"source": "patrol", "classification": key, "location": GeoPoint(32.031, 118.791),
                       "grid": GRID, "urgent": urgent, "description": "垃圾堆在路口", "client_id": "c-report",
                       "by": WORKER, "at": at, **kwargs})
    return incident


def dispatched(*, urgent: bool = False, key: ClassKey = RUBBISH, after: timedelta = 5 * MIN) -> Incident:
    incident = reported(urgent=urgent, key=key)
    incident.create(TABLE.current(key), by=CENTRE, at=REPORTED_AT + after - MIN)
    incident.dispatch(URBAN, calendar=CALENDAR, by=CENTRE, at=REPORTED_AT + after)
    return incident


def test_the_whole_loop_closed_on_time_and_evaluated() -> None:
    incident = reported()
    assert incident.state is State.REPORTED and incident.grid == GRID
    assert incident.deadlines() == {"create": REPORTED_AT + 30 * MIN, "dispatch": REPORTED_AT + 30 * MIN}
    incident.create(TABLE.current(RUBBISH), by=CENTRE, at=REPORTED_AT + 4 * MIN)
    assert incident.deadlines() == {"dispatch": REPORTED_AT + 30 * MIN}
    incident.dispatch(URBAN, calendar=CALENDAR, by=CENTRE, at=REPORTED_AT + 6 * MIN)
    # 4 working hours from 09:06: 09:06-12:00 is 2 h 54, then 14:00 + 1 h 06.
    assert incident.handling_due == china(2026, 3, 2, 15, 6)
    assert incident.deadlines() == {"handling": china(2026, 3, 2, 15, 6)}
    incident.feedback(URBAN, result="cleared, bins emptied", by=HANDLER, at=china(2026, 3, 2, 11, 0),
                      photo_ids=["a" * 64])
    assert incident.deadlines() == {"verification": china(2026, 3, 2, 12, 0)}
    incident.verify(passed=True, by=WORKER, at=china(2026, 3, 2, 11, 40), note="clean")
    assert incident.state is State.CLOSED and incident.closed_on_time is True
    incident.evaluate("good", by=CENTRE, at=china(2026, 3, 2, 12, 0))
    assert incident.evaluation is Evaluation.GOOD and incident.deadlines() == {}
    assert [e.type for e in incident.pending_events] == [REPORTED, CREATED, DISPATCHED, FED_BACK, CLOSED, EVALUATED]
    assert DISPATCHED == "civicgrid.grid.incident.dispatched.v1"
    created, dispatch, _, closed, _ = (e.data for e in incident.pending_events[1:])
    assert created["on_time"] is True and created["classification"]["department"] == "urban_management"
    assert created["classification"]["version"] == 1
    assert dispatch["handling_due"] == "2026-03-02T07:06:00+00:00" and dispatch["on_time"] is True
    assert closed["on_time"] is True and closed["verified_on_time"] is True and closed["rework_count"] == 0


@pytest.mark.parametrize("urgent, minutes, on_time", [
    (True, 10, True), (True, 11, False), (False, 30, True), (False, 31, False), (False, 11, True),
])
def test_creation_and_dispatch_within_10_minutes_if_urgent_30_otherwise(urgent: bool, minutes: int,
                                                                          on_time: bool) -> None:
    incident = reported(urgent=urgent)
    assert incident.create_due == REPORTED_AT + (10 if urgent else 30) * MIN == incident.dispatch_due
    incident.create(TABLE.current(RUBBISH), by=CENTRE, at=REPORTED_AT + minutes * MIN)
    incident.dispatch(URBAN, calendar=CALENDAR, by=CENTRE, at=REPORTED_AT + minutes * MIN)
    assert incident.pending_events[1].data["on_time"] is on_time
    assert incident.pending_events[2].data["on_time"] is on_time


def test_the_centre_may_make_an_incident_urgent_when_it_creates_it() -> None:
    incident = reported()
    incident.create(TABLE.current(COLLAPSE), urgent=True, by=CENTRE, at=REPORTED_AT + 12 * MIN)
    assert incident.urgent and incident.dispatch_due == REPORTED_AT + 10 * MIN
    assert incident.pending_events[-1].data["on_time"] is False
    assert incident.pending_events[-1].data["reclassified"] is True


def test_an_emergency_class_runs_on_the_clock_day_and_night() -> None:
    incident = reported(urgent=True, key=COLLAPSE, at=china(2026, 3, 7, 23, 0))  # a Saturday night
    incident.create(TABLE.current(COLLAPSE), by=CENTRE, at=china(2026, 3, 7, 23, 3))
    incident.dispatch(URBAN, calendar=CALENDAR, by=CENTRE, at=china(2026, 3, 7, 23, 5))
    assert incident.handling_due == china(2026, 3, 8, 1, 5)


def test_late_feedback_or_late_verification_is_not_on_time() -> None:
    late_feedback = dispatched()
    late_feedback.feedback(URBAN, result="done", by=HANDLER, at=china(2026, 3, 2, 16, 0))
    assert late_feedback.pending_events[-1].data["on_time"] is False
    late_feedback.verify(passed=True, by=WORKER, at=china(2026, 3, 2, 16, 30))
    assert late_feedback.closed_on_time is False

    late_check = dispatched()
    late_check.feedback(URBAN, result="done", by=HANDLER, at=china(2026, 3, 2, 10, 0))
    late_check.verify(passed=True, by=WORKER, at=china(2026, 3, 2, 11, 1))
    assert late_check.pending_events[-1].data["verified_on_time"] is False and late_check.closed_on_time is False


def test_rework_goes_back_to_the_handler_is_counted_and_keeps_the_handling_limit() -> None:
    incident = dispatched()
    due = incident.handling_due
    incident.feedback(URBAN, result="done", by=HANDLER, at=china(2026, 3, 2, 10, 0))
    with pytest.raises(InvalidInput) as refused:
        incident.verify(passed=False, by=WORKER, at=china(2026, 3, 2, 10, 30))
    assert refused.value.field == "note"  # a failed check says what is still wrong
    incident.verify(passed=False, note="rubbish still behind the kiosk", by=WORKER, at=china(2026, 3, 2, 10, 30))
    assert incident.state is State.DISPATCHED and incident.rework_count == 1
    assert incident.pending_events[-1].type == REWORK_ORDERED and incident.pending_events[-1].data["rework"] == 1
    assert incident.deadlines() == {"handling": due}
    incident.feedback(URBAN, result="kiosk side cleared", by=HANDLER, at=china(2026, 3, 2, 14, 30))
    incident.verify(passed=False, note="still not", by=WORKER, at=china(2026, 3, 2, 14, 50))
    incident.feedback(URBAN, result="all gone", by=HANDLER, at=china(2026, 3, 2, 15, 0))
    incident.verify(passed=True, by=WORKER, at=china(2026, 3, 2, 15, 20))
    assert incident.rework_count == 2 and incident.pending_events[-1].data["rework_count"] == 2
    assert incident.closed_on_time is True  # the last feedback came by 15:05


def test_a_deferred_incident_leaves_the_on_time_figures() -> None:
    incident = dispatched()
    with pytest.raises(InvalidInput) as refused:
        incident.defer(reason="  ", by=HANDLER, at=china(2026, 3, 2, 10, 0))
    assert refused.value.field == "reason"
    incident.defer(reason="needs the owner's consent to remove the shed", by=HANDLER, at=china(2026, 3, 2, 10, 0))
    assert incident.state is State.DEFERRED and incident.pending_events[-1].type == DEFERRED
    assert incident.counts_for_on_time is False and incident.deadlines() == {}
    with pytest.raises(StateConflict):
        incident.defer(reason="again", by=HANDLER, at=china(2026, 3, 2, 10, 5))
    incident.feedback(URBAN, result="removed after consent", by=HANDLER, at=china(2026, 3, 20, 10, 0))
    assert incident.pending_events[-1].data["on_time"] is None
    incident.verify(passed=True, by=WORKER, at=china(2026, 3, 20, 10, 30))
    assert incident.state is State.CLOSED and incident.closed_on_time is None


def test_closure_figures_take_deferred_incidents_out_of_both_rates() -> None:
    # Each dispatched at 09:05 on Monday 2 March, due by 15:05; `overdue` never fed back.
    on_time, late, deferred, overdue, running = (dispatched() for _ in range(5))
    on_time.feedback(URBAN, result="ok", by=HANDLER, at=china(2026, 3, 2, 10, 0))
    on_time.verify(passed=True, by=WORKER, at=china(2026, 3, 2, 10, 30))
    late.feedback(URBAN, result="ok", by=HANDLER, at=china(2026, 3, 3, 10, 0))
    late.verify(passed=False, note="not yet", by=WORKER, at=china(2026, 3, 3, 10, 20))
    late.feedback(URBAN, result="ok", by=HANDLER, at=china(2026, 3, 3, 11, 0))
    late.verify(passed=True, by=WORKER, at=china(2026, 3, 3, 11, 30))
    deferred.defer(reason="winter", by=HANDLER, at=china(2026, 3, 2, 10, 0))
    figures = closure_figures([on_time, late, deferred, overdue], as_of=china(2026, 3, 4, 9, 0))
    assert (figures.due, figures.closed, figures.closed_on_time, figures.deferred, figures.reworks) == (3, 2, 1, 1, 1)
    assert figures.closure_rate.value == pytest.approx(2 / 3)
    assert figures.on_time_closure_rate.value == pytest.approx(1 / 3)
    early = closure_figures([running], as_of=china(2026, 3, 2, 12, 0))
    assert early.due == 0 and early.on_time_closure_rate.value is None


@pytest.mark.parametrize("setup, command, code", [
    ("new", "create", "illegal_transition"), ("reported", "dispatch", "illegal_transition"),
    ("reported", "feedback", "illegal_transition"), ("dispatched", "verify", "illegal_transition"),
    ("dispatched", "evaluate", "illegal_transition"), ("dispatched", "create", "illegal_transition"),
    ("closed", "defer", "illegal_transition"), ("closed", "report", "already_reported"),
])
def test_a_transition_the_state_does_not_allow_is_a_conflict(setup: str, command: str, code: str) -> None:
    incident = {"new": lambda: Incident("inc-x"), "reported": reported, "dispatched": dispatched,
                "closed": _closed}[setup]()
    version = incident.version
    at = china(2026, 3, 2, 13, 0)
    commands = {
        "create": lambda: incident.create(TABLE.current(RUBBISH), by=CENTRE, at=at),
        "dispatch": lambda: incident.dispatch(URBAN, calendar=CALENDAR, by=CENTRE, at=at),
        "feedback": lambda: incident.feedback(URBAN, result="x", by=HANDLER, at=at),
        "verify": lambda: incident.verify(passed=True, by=WORKER, at=at),
        "evaluate": lambda: incident.evaluate("fair", by=CENTRE, at=at),
        "defer": lambda: incident.defer(reason="x", by=HANDLER, at=at),
        "report": lambda: incident.report(source="video", classification=RUBBISH, location=GeoPoint(32.03, 118.79),
                                          grid=GRID, urgent=False, description="x", client_id="other", by=WORKER,
                                          at=at),
    }
    with pytest.raises(StateConflict) as refused:
        commands[command]()
    assert refused.value.code == code and refused.value.refusal is Refusal.CONFLICT
    assert refused.value.problem().status == 409
    assert incident.version == version


def _closed() -> Incident:
    incident = dispatched()
    incident.feedback(URBAN, result="ok", by=HANDLER, at=china(2026, 3, 2, 10, 0))
    incident.verify(passed=True, by=WORKER, at=china(2026, 3, 2, 10, 30))
    return incident


def test_only_the_unit_it_was_dispatched_to_may_feed_back() -> None:
    incident = dispatched()
    with pytest.raises(NotYours) as refused:
        incident.feedback(Handler.squad("sanitation"), result="x", by="squad-1", at=china(2026, 3, 2, 10, 0))
    assert refused.value.refusal is Refusal.FORBIDDEN and refused.value.problem().status == 403


def test_dispatch_to_the_streets_own_squad() -> None:
    incident = reported()
    incident.create(TABLE.current(RUBBISH), by=CENTRE, at=REPORTED_AT + MIN)
    squad = Handler.squad("sanitation")
    incident.dispatch(squad, calendar=CALENDAR, by=CENTRE, at=REPORTED_AT + 2 * MIN, note="环卫所 today")
    assert incident.handler == squad and incident.pending_events[-1].data["handler"] == {
        "kind": "street_squad", "code": "sanitation"}
    with pytest.raises(InvalidInput) as refused:
        Handler.squad("navy")
    assert refused.value.field == "handler/code"
    with pytest.raises(InvalidInput) as refused:
        Handler.department("water_company", KNOWN)
    assert refused.value.code == "unknown_department"


@pytest.mark.parametrize("change, code, field", [
    ({"source": "rumour"}, "unknown_source", "source"),
    ({"source": "resident_complaint"}, "source_ref_required", "source_ref"),
    ({"urgent": "yes"}, "invalid_flag", "urgent"),
    ({"description": ""}, "description_required", "description"),
    ({"client_id": "has space"}, "invalid_client_id", "client_id"),
    ({"observed_at": REPORTED_AT + MIN}, "observed_after_report", "observed_at"),
    ({"at": REPORTED_AT.replace(tzinfo=None)}, "naive_instant", "at"),
    ({"component_id": "3201040102000001", "classification": MANHOLE}, "component_class_mismatch", "component_id"),
    ({"component_id": "3201040101000001"}, "component_class_mismatch", "component_id"),
    ({"photo_ids": ["not-a-digest"]}, "invalid_photo", "photos/0"),
])
def test_bad_input_in_a_report_is_refused_naming_the_field(change: dict, code: str, field: str) -> None:
    incident = Incident("inc-bad")
    with pytest.raises(InvalidInput) as refused:
        reported_into(incident, **change)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert refused.value.problem().status == 422 and incident.version == 0


def reported_into(incident: Incident, **change) -> None:
    incident.report(**{"source": "patrol", "classification": RUBBISH, "location": GeoPoint(32.031, 118.791),
                       "grid": GRID, "urgent": False, "description": "垃圾", "client_id": "c-1", "by": WORKER,
                       "at": REPORTED_AT, **change})


def test_a_resident_complaint_keeps_its_complaint_and_a_part_its_component() -> None:
    incident = Incident("inc-2")
    reported_into(incident, source="resident_complaint", source_ref="cmp-20260302-0007", classification=MANHOLE,
                  component_id="3201040101000042", observed_at=REPORTED_AT - 20 * MIN)
    data = incident.pending_events[0].data
    assert data["source_ref"] == "cmp-20260302-0007" and data["component_id"] == "3201040101000042"
    assert data["observed_at"] == "2026-03-02T00:40:00+00:00" and data["at"] == "2026-03-02T01:00:00+00:00"
    # The limits run from the report reaching the centre, not from when the phone saw it.
    assert incident.create_due == REPORTED_AT + 30 * MIN


def test_a_phones_queue_sent_twice_records_each_command_once() -> None:
    incident = dispatched()
    feedback_at = china(2026, 3, 2, 10, 0)
    assert incident.feedback(URBAN, result="done", by=HANDLER, at=feedback_at, client_id="c-fb") is True
    assert incident.verify(passed=True, by=WORKER, at=china(2026, 3, 2, 10, 20), client_id="c-check") is True
    version = incident.version
    # The same queue again, with its original (now older) instants: nothing new, no refusal.
    assert incident.report(source="patrol", classification=RUBBISH, location=GeoPoint(32.031, 118.791), grid=GRID,
                           urgent=False, description="垃圾堆在路口", client_id="c-report", by=WORKER,
                           at=REPORTED_AT) is False
    assert incident.feedback(URBAN, result="done", by=HANDLER, at=feedback_at, client_id="c-fb") is False
    assert incident.verify(passed=True, by=WORKER, at=china(2026, 3, 2, 10, 20), client_id="c-check") is False
    assert incident.version == version
    with pytest.raises(StateConflict) as refused:
        incident.evaluate("good", by=CENTRE, at=china(2026, 3, 2, 11, 0), client_id="c-fb")
    assert refused.value.code == "client_id_reused"


def test_instants_do_not_go_backwards() -> None:
    incident = dispatched()
    with pytest.raises(StateConflict) as refused:
        incident.feedback(URBAN, result="x", by=HANDLER, at=REPORTED_AT)
    assert refused.value.code == "time_goes_backwards"


def test_the_incident_keeps_the_class_version_it_was_created_under() -> None:
    table = Classification(Classification.stream_for("320104"))
    seed_classification(table, classes_from_seed(seed_document()), known_departments=KNOWN, by=ADMIN,
                        at=china(2026, 1, 5, 9, 0))
    incident = reported()
    incident.create(table.current(RUBBISH), by=CENTRE, at=REPORTED_AT + MIN)
    revised = table.current(RUBBISH).minor_class
    table.revise_class(replace(revised, department="environmental_protection"), reason="reorganised",
                       known_departments=KNOWN, by=ADMIN, at=china(2026, 3, 2, 9, 2))
    assert table.current(RUBBISH).version == 2
    assert incident.classification.version == 1 and incident.classification.minor_class.department == "urban_management"


def test_replaying_the_incidents_events_gives_the_same_state() -> None:
    incident = dispatched(urgent=True)
    incident.feedback(URBAN, result="done", by=HANDLER, at=china(2026, 3, 2, 10, 0), client_id="c-1")
    incident.verify(passed=False, note="no", by=WORKER, at=china(2026, 3, 2, 10, 30), client_id="c-2")
    incident.defer(reason="budget", by=HANDLER, at=china(2026, 3, 2, 11, 0))
    incident.feedback(URBAN, result="done", by=HANDLER, at=china(2026, 3, 9, 10, 0), client_id="c-3")
    incident.verify(passed=True, by=WORKER, at=china(2026, 3, 9, 10, 30), client_id="c-4")
    incident.evaluate("fair", by=CENTRE, at=china(2026, 3, 9, 11, 0))
    again = replayed(incident)
    assert state(again) == state(incident)
    assert again.state is State.EVALUATED and again.rework_count == 1 and again.deferred
    assert again.client_ids == {"c-report": REPORTED, "c-1": FED_BACK, "c-2": REWORK_ORDERED, "c-3": FED_BACK,
                                "c-4": CLOSED}
