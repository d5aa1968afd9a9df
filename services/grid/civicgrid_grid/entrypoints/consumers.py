"""What grid consumes, each handler in the consumer's inbox transaction (effectively once), and
the timers' handler.

- `civicgrid.intake.complaints`: a complaint received with a location inside a grid of the
  district becomes an incident (source resident_complaint) for on-site verification; the
  complaint stays intake's. One without a location, or outside every grid, is not the grid's.
- `civicgrid.approval.access`: approved access applications become access grants (准入).
- `civicgrid.departments.<department>.results`: a department system's result on a grid task.
  It must come from that department's system (CloudEvents source `/civicgrid/departments/<d>`),
  be of its result type and valid against the contract; anything else is a PoisonEvent,
  dead-lettered at once with the reason.
- timers: incidents' warnings and overdue marks; the daily missing-report check.
"""
from __future__ import annotations

import logging
import re
from datetime import date, datetime
from typing import Awaitable, Callable

import asyncpg

from civicgrid_common.cloudevents import CloudEvent
from civicgrid_common.consumer import PoisonEvent
from civicgrid_common.consumer.runtime import Handler
from civicgrid_common.contracts import Contracts, SchemaViolation
from civicgrid_common.problems import RuleViolation
from civicgrid_common.timers import Timer

from civicgrid_grid.adapters.deadlines import MISSING_CHECK, schedule_community_check, schedule_missing_check
from civicgrid_grid.adapters.grants import AccessGrants
from civicgrid_grid.application.field_work import FieldWorkService
from civicgrid_grid.application.incidents import IncidentService
from civicgrid_grid.application.ports import Calendars, Locator
from civicgrid_grid.domain.classification import ClassKey, Kind
from civicgrid_grid.domain.geometry import GeoPoint
from civicgrid_grid.domain.rules import instant

log = logging.getLogger(__name__)

COMPLAINT_RECEIVED = "civicgrid.intake.complaint.received.v1"
ACCESS_DECIDED = "civicgrid.approval.access.decided.v1"
RESULT = re.compile(r"^civicgrid\.department\.([a-z][a-z0-9_]{1,39})\.incident_handled\.v1$")
DEPARTMENT_SOURCE = "/civicgrid/departments/"
# A complaint's category, as the grid files it (the centre may correct the class at creation).
COMPLAINT_CLASSES = {
    "urban_construction": ("event", "03", "02"), "planning": ("event", "03", "03"),
    "municipal_works": ("event", "04", "01"), "environmental_protection": ("event", "01", "01"),
    "housing_management": ("event", "06", "01"), "epidemic_prevention": ("event", "01", "01"),
    "public_order": ("event", "05", "01"), "other": ("event", "06", "01"),
}
URGENT = frozenset({"life_or_property", "utilities"})


class RejectedResult(PoisonEvent):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


def complaints_handler(incidents: IncidentService, locator: Locator) -> Handler:
    within = incidents.transactions.within

    async def handle(conn: asyncpg.Connection, event: CloudEvent) -> None:
        if event.type != COMPLAINT_RECEIVED:
            return
        data = event.data or {}
        where = data.get("location") or {}
        if "lat" not in where or "lon" not in where:
            return
        try:
            location = GeoPoint.parse(where["lat"], where["lon"])
        except RuleViolation:
            return  # outside China's bounds: no grid of ours
        grid = await locator.locate(location.lat, location.lon, fresh=True)
        if grid is None:
            log.info("complaint %s lies in no grid: not the grid's", data.get("complaint_id"))
            return
        kind, major, minor = COMPLAINT_CLASSES.get(data.get("category"), COMPLAINT_CLASSES["other"])
        key = ClassKey(Kind(kind), major, minor)
        await within(conn, incidents.complaint_received(data["complaint_id"], data, key, grid, location,
                                                        data.get("urgency") in URGENT))

    return handle


def access_handler(grants: AccessGrants) -> Handler:
    async def handle(conn: asyncpg.Connection, event: CloudEvent) -> None:
        if event.type == ACCESS_DECIDED:
            await grants.record(conn, event.data or {})

    return handle


def department_results_handler(incidents: IncidentService, contracts: Contracts) -> Handler:
    async def handle(conn: asyncpg.Connection, event: CloudEvent) -> None:
        m = RESULT.match(event.type)
        if m is None:
            raise RejectedResult("not-a-result", f"{event.type} is not a department's incident result")
        department = m.group(1)
        if event.source != DEPARTMENT_SOURCE + department:
            raise RejectedResult("wrong-source", f"the source {event.source!r} is not the {department} system")
        try:
            contracts.validate(event.type, event.data)
        except SchemaViolation as exc:
            raise RejectedResult("schema-violation", str(exc)) from exc
        try:
            await incidents.transactions.within(conn, incidents.department_result(department, event.data, event.id))
        except RuleViolation as exc:
            raise RejectedResult("refused", f"incident {event.data.get('incident_id')}: {exc.code}: {exc}") from exc

    return handle


def timers_handler(incidents: IncidentService, field_work: FieldWorkService,
                   calendar: Calendars) -> Callable[[asyncpg.Connection, Timer], Awaitable[None]]:
    async def on_timer(conn: asyncpg.Connection, timer: Timer) -> None:
        p = timer.payload
        if timer.kind == MISSING_CHECK:
            day, check_at = date.fromisoformat(p["date"]), datetime.fromisoformat(p["check_at"])
            if "community" in p:  # one community's grids, in a transaction of its own
                flagged = await field_work.transactions.within(
                    conn, field_work.missing_check(day, check_at, prefix=p["community"]))
                log.info("daily check %s, community %s: %d grid(s) without a report", day, p["community"],
                         len(flagged))
                return
            # The district's check: one timer per community, so that no transaction holds a city's
            # thousands of grids (an open transaction holds back every relay's commit-safe horizon).
            for community in await field_work.grids.active_communities(conn, field_work.district):
                await schedule_community_check(conn, check_at, day.isoformat(), community)
            nxt = field_work.next_check(check_at, await calendar())
            await schedule_missing_check(conn, nxt, field_work.day_of(nxt).isoformat())
            return
        await incidents.transactions.within(conn, incidents.deadline_reached(
            p["incident_id"], p["limit"], instant(p["due"]), overdue=timer.kind == "overdue"))

    return on_timer
