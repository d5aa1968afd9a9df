"""Every event the grid service's aggregates emit validates against its schema in the real
contracts/, and goes on the topic services/grid/README.md's table names.

The scenarios below drive each aggregate through its commands (optional members present and
absent, every branch that shapes the data differently), so that every event type of the domain
is emitted at least once; an event type without a schema, or without a channel, fails here.
"""
from __future__ import annotations

import copy
import re
import uuid
from datetime import date, timedelta
from typing import Any, Iterable

import pytest
from shapely import Polygon

from civicgrid_common.calendar import WorkingCalendar
from civicgrid_common.contracts import Contracts, SchemaViolation
from civicgrid_common.paths import contracts_dir

from civicgrid_grid.domain import (
    classification, community_work, disputes, incident, patrol, registry, reports, stability,
)
from civicgrid_grid.domain.classification import ClassKey, Classification, Kind, MinorClass, classes_from_seed
from civicgrid_grid.domain.classification import seed_classification
from civicgrid_grid.domain.codes import GridCode
from civicgrid_grid.domain.community_work import AccessGrant, CommunityWork, WorkKind
from civicgrid_grid.domain.disputes import Dispute
from civicgrid_grid.domain.geometry import GeoPoint
from civicgrid_grid.domain.incident import TASK_SYSTEMS, Handler, Incident, department_task_type
from civicgrid_grid.domain.patrol import Patrol, TrackPoint
from civicgrid_grid.domain.reports import DailyReport
from civicgrid_grid.domain.seed import seed_document
from civicgrid_grid.domain.stability import StabilitySweep
from civicgrid_grid.domain.time_limits import HandlingLimit, LimitUnit

from grid_builders import ADMIN, COMMUNITY, DISTRICT, ROOT, box, china, departments, grid, grid_code, registry as new_registry
from grid_builders import ticks

CONTRACTS = Contracts(contracts_dir())
CALENDAR = WorkingCalendar()
KNOWN = departments()
WORKER, LEAD, CENTRE, HANDLER, MEDIATOR = "gw-0031", "gw-0032", "centre-0001", "um-officer-7", "mediator-3"
PHOTO_A, PHOTO_B = "a" * 64, "0123456789abcdef" * 4
RUBBISH = ClassKey(Kind.EVENT, "01", "01")  # exposed rubbish: urban management, 4 working hours
MANHOLE = ClassKey(Kind.PART, "01", "01")
MONDAY = date(2026, 3, 2)


def every_domain_event_type() -> set[str]:
    modules = (registry, classification, patrol, reports, incident, disputes, stability, community_work)
    return {t for m in modules for t in m.EVENT_TYPES} | {department_task_type(d) for d in TASK_SYSTEMS}


def readme_topics() -> dict[str, str]:
    """services/grid/README.md's topic table, its brace lists expanded: event type -> topic."""
    table: dict[str, str] = {}
    for line in (ROOT / "services" / "grid" / "README.md").read_text("utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`civicgrid."):
            continue
        topic = cells[0].strip("`")
        for written in re.findall(r"`(civicgrid\.[^`]+)`", cells[2]):
            m = re.fullmatch(r"(.*)\{([^}]*)\}(.*)", written)
            for event_type in ([m.group(1) + name + m.group(3) for name in m.group(2).split(",")] if m
                               else [written]):
                assert event_type not in table, f"{event_type} is in the README's table twice"
                table[event_type] = topic
    return table


# ---------------------------------------------------------------------------- the scenarios


def seeded_table() -> Classification:
    table = Classification(Classification.stream_for(DISTRICT))
    seed_classification(table, classes_from_seed(seed_document()), known_departments=KNOWN, by=ADMIN,
                        at=china(2026, 1, 5, 9, 0))
    return table


TABLE = seeded_table()


def classification_scenario() -> Classification:
    table = seeded_table()
    rubbish = table.current(RUBBISH).minor_class
    table.revise_class(MinorClass(rubbish.key, rubbish.name_zh, "exposed rubbish and overflowing bins", "urban_management",
                                  HandlingLimit(LimitUnit.WORKING_HOURS, 6)),
                       reason="the district allows six working hours now", known_departments=KNOWN, by=ADMIN,
                       at=china(2026, 2, 2, 9, 0))
    retired = next(c.key for c in table.active(Kind.EVENT) if c.key != RUBBISH)
    table.retire_class(retired, reason="merged into another class", by=ADMIN, at=china(2026, 2, 2, 9, 5))
    return table


def registry_scenario() -> registry.GridRegistry:
    r, t = new_registry(), ticks()
    r.define_grid(grid(1, box(118.782, 32.022, 118.790, 32.030)), by=ADMIN, at=next(t))
    r.define_grid(grid(2, box(118.790, 32.022, 118.798, 32.030)), by=ADMIN, at=next(t))
    r.define_grid(grid(3, box(118.782, 32.032, 118.790, 32.036), kind="unit", unit_type="school", households=0,
                       residents=0, name="第一中学"), by=ADMIN, at=next(t))
    r.revise_grid(grid_code(2), {"households": 120, "name": "东片"}, reason="households recounted", by=ADMIN,
                  at=next(t))  # outside 250-500: recorded with a warning
    r.redraw_grid(grid_code(3), box(118.782, 32.032, 118.791, 32.037), reason="the school's new wall", by=ADMIN,
                  at=next(t))
    r.register_building(grid_code(1), "00007", box(118.783, 32.023, 118.784, 32.024), name="3号楼", by=ADMIN,
                        at=next(t))
    r.register_building(grid_code(1), "00008", {"type": "Point", "coordinates": [118.785, 32.028]}, by=ADMIN,
                        at=next(t))
    r.register_component("3201040101000001", GeoPoint(32.028, 118.786),
                         part_classes={k for k in TABLE.keys() if k.kind is Kind.PART}, by=ADMIN, at=next(t))
    r.assign_workers(grid_code(2), [WORKER, LEAD], lead=LEAD, by=ADMIN, at=next(t))
    r.split_grid(grid_code(1), [grid(4, box(118.782, 32.022, 118.790, 32.026), households=100),
                                grid(5, box(118.782, 32.026, 118.790, 32.030))],
                 reason="too large to walk in a morning", by=ADMIN, at=next(t))
    r.merge_grids([grid_code(4), grid_code(5)], grid(6, box(118.782, 32.022, 118.790, 32.030), households=600),
                  reason="the split was undone", by=ADMIN, at=next(t))
    r.retire_grid(grid_code(3), reason="the school runs its own grid now", by=ADMIN, at=next(t))
    return r


GRID = GridCode(grid_code(2))
AREA = Polygon([(118.790, 32.022), (118.798, 32.022), (118.798, 32.030), (118.790, 32.030)])
START = china(2026, 3, 2, 9, 0)


def point(lat: float, lon: float, minutes: int) -> TrackPoint:
    return TrackPoint(GeoPoint.parse(lat, lon), START + timedelta(minutes=minutes))


def patrol_scenario() -> list[Patrol]:
    walked = Patrol(str(uuid.UUID(int=1)))
    walked.start(grid=GRID, by=WORKER, at=START, client_id="c-start-1")
    walked.record_track([point(32.025, 118.795, 1), point(32.026, 118.7985, 2)], area=AREA,
                        at=START + timedelta(minutes=5), client_id="c-track-1")
    walked.end(area=AREA, at=START + timedelta(minutes=50), client_id="c-end-1", points=[point(32.027, 118.796, 45)])
    short = Patrol(str(uuid.UUID(int=2)))
    short.start(grid=GRID, by=WORKER, at=START, client_id="c-start-2")
    short.end(area=AREA, at=START + timedelta(minutes=10), client_id="c-end-2")  # no last points
    return [walked, short]


def report_scenario() -> list[DailyReport]:
    safe = DailyReport(DailyReport.stream_for(GRID, MONDAY))
    safe.submit(grid=GRID, day=MONDAY, all_safe=True, calendar=CALENDAR, client_id="c-r1", by=LEAD,
                at=china(2026, 3, 2, 16, 0))
    tuesday = MONDAY + timedelta(days=1)
    found = DailyReport(DailyReport.stream_for(GRID, tuesday))
    found.mark_missing(grid=GRID, day=tuesday, check_at=china(2026, 3, 3, 17, 0), at=china(2026, 3, 3, 17, 0, 2))
    found.submit(grid=GRID, day=tuesday, all_safe=False, incidents=["inc-0001", str(uuid.UUID(int=7))],
                 calendar=CALENDAR, client_id="c-r2", by=LEAD, at=china(2026, 3, 4, 8, 40),
                 patrol_id=str(uuid.UUID(int=1)))
    return [safe, found]


URBAN = Handler.department("urban_management", KNOWN)
SANITATION = Handler.squad("sanitation")
REPORTED_AT = china(2026, 3, 2, 9, 0)
MIN = timedelta(minutes=1)


def incident_scenario() -> list[Incident]:
    # A manhole cover from a patrol, with photos and its component: the whole loop with a rework,
    # dispatched to urban management, whose system gets the task.
    manhole = Incident(str(uuid.UUID(int=101)))
    manhole.report(source="patrol", classification=MANHOLE, location=GeoPoint(32.028, 118.786), grid=GRID,
                   urgent=True, description="井盖缺失，已设警示", client_id="c-i1", by=WORKER, at=REPORTED_AT,
                   observed_at=REPORTED_AT - 3 * MIN, component_id="3201040101000001", photo_ids=[PHOTO_A])
    manhole.create(TABLE.current(MANHOLE), by=CENTRE, at=REPORTED_AT + 4 * MIN)
    manhole.dispatch(URBAN, calendar=CALENDAR, by=CENTRE, at=REPORTED_AT + 6 * MIN, note="cordon it off first",
                     client_id="c-d1", task_systems=TASK_SYSTEMS)
    due = manhole.handling_due
    manhole.deadline_reached("handling", due, overdue=False, at=due - 30 * MIN)
    manhole.deadline_reached("handling", due, overdue=True, at=due + MIN)
    manhole.feedback(URBAN, result="cover replaced", by=HANDLER, at=due + 2 * MIN, photo_ids=[PHOTO_B])
    manhole.verify(passed=False, note="the new cover rocks", by=WORKER, at=due + 30 * MIN, photo_ids=[PHOTO_A])
    manhole.feedback(URBAN, result="cover bedded in mortar", by=HANDLER, at=due + 90 * MIN)
    manhole.verify(passed=True, note="firm", by=WORKER, at=due + 100 * MIN, client_id="c-v2")
    manhole.evaluate("fair", note="late, but done well", by=CENTRE, at=due + 120 * MIN)
    # Rubbish from a resident's complaint: created late, after its limits were warned and marked
    # overdue, dispatched to the street's squad (no task), deferred, closed out of the on-time figures.
    rubbish = Incident(str(uuid.UUID(int=102)))
    rubbish.report(source="resident_complaint", source_ref="complaint/CP-20260302-0042", classification=RUBBISH,
                   location=GeoPoint(32.025, 118.795), grid=GRID, urgent=False, description="路口垃圾堆积",
                   client_id="c-i2", by="intake-bridge", at=REPORTED_AT)
    rubbish.deadline_reached("create", REPORTED_AT + 30 * MIN, overdue=False, at=REPORTED_AT + 25 * MIN)
    rubbish.deadline_reached("dispatch", REPORTED_AT + 30 * MIN, overdue=True, at=REPORTED_AT + 31 * MIN)
    rubbish.create(TABLE.current(RUBBISH), urgent=False, by=CENTRE, at=REPORTED_AT + 32 * MIN, client_id="c-c2")
    rubbish.dispatch(SANITATION, calendar=CALENDAR, by=CENTRE, at=REPORTED_AT + 33 * MIN,
                     task_systems=TASK_SYSTEMS)
    rubbish.defer(reason="the owner of the shed must consent first", by=HANDLER, at=REPORTED_AT + 60 * MIN)
    rubbish.feedback(SANITATION, result="shed removed, rubbish cleared", by=HANDLER, at=china(2026, 3, 5, 10, 0))
    rubbish.verify(passed=True, by=WORKER, at=china(2026, 3, 5, 10, 30))
    rubbish.evaluate("good", by=CENTRE, at=china(2026, 3, 5, 11, 0))
    return [manhole, rubbish]


def dispute_scenario() -> list[Dispute]:
    at = china(2026, 3, 2, 10, 0)
    settled = Dispute(str(uuid.UUID(int=201)))
    settled.file(grid=GRID, nature="neighbourhood", urgency="urgent", summary="water leaking into the flat below",
                 parties=2, by=WORKER, at=at, client_id="c-f1")
    settled.mediate(mediator=MEDIATOR, outcome="partial", by=MEDIATOR, at=at + timedelta(days=1))
    settled.mediate(mediator=MEDIATOR, outcome="agreed", note="the upstairs owner pays the repair", by=MEDIATOR,
                    at=at + timedelta(days=3), client_id="c-m2")
    settled.settle(by=MEDIATOR, at=at + timedelta(days=3, hours=1))
    settled.follow_up(note="repaired, both satisfied", holding=True, by=WORKER, at=at + timedelta(days=30))
    referred = Dispute(str(uuid.UUID(int=202)))
    referred.file(grid=GRID, nature="labour", urgency="major", summary="wages unpaid for three months", parties=140,
                  by=WORKER, at=at, client_id="c-f2")
    referred.refer(to="judicial_office", reason="a collective labour dispute for arbitration", by=MEDIATOR,
                   at=at + timedelta(hours=2))
    return [settled, referred]


def sweep_scenario() -> list[StabilitySweep]:
    found = StabilitySweep(StabilitySweep.stream_for(COMMUNITY.value, "2026-03"))
    found.record([{"category": "labour", "level": "high", "grid": grid_code(2), "summary": "a site owes wages"},
                  {"category": "neighbourhood", "level": "low", "grid": grid_code(1), "summary": "parking quarrels"}],
                 client_id="c-s1", by=LEAD, at=china(2026, 3, 25, 10, 0))
    nothing = StabilitySweep(StabilitySweep.stream_for(COMMUNITY.value, "2026-02"))
    nothing.record([], client_id="c-s2", by=LEAD, at=china(2026, 3, 1, 10, 0))
    return [found, nothing]


def community_work_scenario() -> CommunityWork:
    work = CommunityWork(CommunityWork.stream_for(COMMUNITY.value))
    grant = AccessGrant(str(uuid.UUID(int=301)), "market_regulation", WorkKind.INSPECTION,
                        frozenset({COMMUNITY.value}), date(2026, 3, 1), date(2026, 6, 30))
    work.receive(department="market_regulation", work_kind="inspection", title="食品安全检查",
                 description="check the market's stalls", grants=[grant], client_id="c-w1", by="mr-clerk-2",
                 at=china(2026, 3, 2, 9, 30))
    work.receive(department="tax", work_kind="survey", title="纳税人调查", description=None, grants=[grant],
                 client_id="c-w2", by="tax-clerk-9", at=china(2026, 3, 2, 9, 40))
    return work


def emitted() -> list[tuple[str, dict[str, Any]]]:
    aggregates: Iterable[Any] = [
        registry_scenario(), classification_scenario(), *patrol_scenario(), *report_scenario(),
        *incident_scenario(), *dispute_scenario(), *sweep_scenario(), community_work_scenario(),
    ]
    return [(e.type, dict(e.data)) for a in aggregates for e in a.pending_events]


EVENTS = emitted()


def first(event_type: str) -> dict[str, Any]:
    return copy.deepcopy(next(d for t, d in EVENTS if t == event_type))


# ---------------------------------------------------------------------------- the checks


def test_the_scenarios_emit_every_event_type_of_the_domain_and_each_has_a_schema() -> None:
    expected = every_domain_event_type()
    assert {t for t, _ in EVENTS} == expected
    on_file = {t for t in CONTRACTS.event_types() if t.startswith("civicgrid.grid.")}
    assert on_file == expected  # no schema without an event type, no event type without a schema


@pytest.mark.parametrize("event_type, data", EVENTS, ids=[f"{i}-{t}" for i, (t, _) in enumerate(EVENTS)])
def test_every_emitted_event_validates_against_its_schema(event_type: str, data: dict[str, Any]) -> None:
    CONTRACTS.validate(event_type, data)


def test_every_event_type_goes_on_the_topic_of_the_readme_table() -> None:
    table = readme_topics()
    expected = every_domain_event_type() | {"civicgrid.department.urban_management.incident_handled.v1"}
    assert set(table) == expected
    assert {t: CONTRACTS.topic_for(t) for t in expected} == table


def test_the_urban_management_task_and_its_result() -> None:
    task = first(department_task_type("urban_management"))
    assert CONTRACTS.topic_for(department_task_type("urban_management")) == \
        "civicgrid.departments.urban_management.tasks"
    assert task["incident_id"] == str(uuid.UUID(int=101)) and task["component_id"] == "3201040101000001"
    assert not {"by", "client_id", "source", "source_ref"} & set(task)  # never who reported it
    result = {"incident_id": task["incident_id"], "task_at": task["at"], "result": "cover replaced",
              "handled_by": "um-operator-0042", "handled_at": "2026-03-02T07:10:00+00:00", "photos": [PHOTO_B]}
    handled = "civicgrid.department.urban_management.incident_handled.v1"
    CONTRACTS.validate(handled, result)
    assert CONTRACTS.topic_for(handled) == "civicgrid.departments.urban_management.results"
    for broken in ({**result, "incident_id": "inc-0001"}, {**result, "result": ""}, {**result, "photos": ["A" * 64]},
                   {**result, "photos": [PHOTO_B] * 10}, {k: v for k, v in result.items() if k != "task_at"},
                   {**result, "handled_by": "x" * 129}):
        with pytest.raises(SchemaViolation):
            CONTRACTS.validate(handled, broken)


def test_urban_management_has_task_and_result_topics_but_is_no_approval_system() -> None:
    topics = {t.name for t in CONTRACTS.topics}
    assert {"civicgrid.departments.urban_management.tasks", "civicgrid.departments.urban_management.results"} <= topics
    assert "civicgrid.departments.urban_management.opinions" not in topics
    assert CONTRACTS.departments["urban_management"].system is False


def test_an_extra_member_is_refused() -> None:
    data = first(incident.REPORTED)
    with pytest.raises(SchemaViolation) as refused:
        CONTRACTS.validate(incident.REPORTED, {**data, "reporter_phone": "13800000000"})
    assert refused.value.errors[0].pointer == ""
    grid_data = first(registry.GRID_DEFINED)
    grid_data["grid"]["colour"] = "red"
    with pytest.raises(SchemaViolation) as refused:
        CONTRACTS.validate(registry.GRID_DEFINED, grid_data)
    assert refused.value.errors[0].pointer == "/grid"


@pytest.mark.parametrize("code", ["320104001001000", "32010400100100", "3201040010010011", "000104001001001",
                                  "320100001001001", "320104000001001", "32010400100100a"])
def test_a_bad_grid_code_is_refused(code: str) -> None:
    data = first(patrol.STARTED)
    CONTRACTS.validate(patrol.STARTED, data)
    with pytest.raises(SchemaViolation) as refused:
        CONTRACTS.validate(patrol.STARTED, {**data, "grid": code})
    assert {e.pointer for e in refused.value.errors} == {"/grid"}


def test_the_schemas_hold_the_domains_rules() -> None:
    # An all-safe report lists no incidents, and one that is not lists some.
    safe = first(reports.SUBMITTED)
    with pytest.raises(SchemaViolation):
        CONTRACTS.validate(reports.SUBMITTED, {**safe, "incidents": ["inc-0001"]})
    with pytest.raises(SchemaViolation):
        CONTRACTS.validate(reports.SUBMITTED, {**safe, "all_safe": False})
    # A unit grid names its unit type, a residential one none.
    defined = first(registry.GRID_DEFINED)
    defined["grid"]["unit_type"] = "school"
    with pytest.raises(SchemaViolation):
        CONTRACTS.validate(registry.GRID_DEFINED, defined)
    # A complaint's incident names the complaint; a squad is one of the street's.
    complaint = next(d for t, d in EVENTS if t == incident.REPORTED and d["source"] == "resident_complaint")
    with pytest.raises(SchemaViolation):
        CONTRACTS.validate(incident.REPORTED, {**complaint, "source_ref": None})
    dispatched = first(incident.DISPATCHED)
    with pytest.raises(SchemaViolation):
        CONTRACTS.validate(incident.DISPATCHED, {**dispatched, "handler": {"kind": "street_squad", "code": "tax"}})
    # A polygon's ring is closed of four positions at least, each [lon, lat].
    boundary = first(registry.BOUNDARY_SET)
    for coordinates in ([[[118.78, 32.02], [118.8, 32.02], [118.78, 32.02]]], [[[118.78, 32.02, 5.0]] * 4], []):
        with pytest.raises(SchemaViolation):
            CONTRACTS.validate(registry.BOUNDARY_SET,
                               {**boundary, "polygon": {"type": "Polygon", "coordinates": coordinates}})
