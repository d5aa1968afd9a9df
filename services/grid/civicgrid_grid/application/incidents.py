"""Incidents through the closed loop: reported (by a grid worker, or from a resident's
complaint that intake received with a location), created and dispatched by the street's grid
centre, handled by a department or one of the street's squads (deferred with a reason if it
must be), fed back, verified on site by the grid worker (closed, or rework), evaluated.

Who may do what (the route checks the role first):
- report, verify: a grid worker whose jurisdiction covers the grid;
- create, dispatch, evaluate: the centre, a community or street reviewer over the grid;
- defer, feed back: the handler: a department's staff or system for its own department, the
  street reviewer for the street's squads;
- see: staff over the grid, a department only what was dispatched to it; anything else is
  answered as no incident at all (404).

Every write takes the phone's client id. A report's incident id is made from the reporter and
that client id, so a report sent twice lands in the same stream and is recorded once."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Collection, Iterable, Mapping

from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.eventstore import AggregateNotFound
from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_grid.application.ports import Calendars, GridNotFound, Locator, Photos, check_in, load_or_none
from civicgrid_grid.domain.classification import ClassKey, Classification
from civicgrid_grid.domain.codes import GridCode
from civicgrid_grid.domain.geometry import GeoPoint
from civicgrid_grid.domain.incident import TASK_SYSTEMS, Handler, HandlerKind, Incident
from civicgrid_grid.domain.registry import GridRegistry
from civicgrid_grid.domain.rules import InvalidInput, NotYours, StateConflict, instant, iso

# Incident ids are UUID 5 in this namespace: of "<reporter>:<client id>" or "complaint:<id>".
INCIDENT_NAMESPACE = uuid.UUID("6f1c3a52-2b1e-4c44-9d7e-3f0a9b1d5e21")
CENTRE_ROLES = frozenset({Role.COMMUNITY_REVIEWER, Role.STREET_REVIEWER})


def incident_id_for(reporter: str, client_id: str) -> str:
    return str(uuid.uuid5(INCIDENT_NAMESPACE, f"{reporter}:{client_id}"))


def incident_id_for_complaint(complaint_id: str) -> str:
    return str(uuid.uuid5(INCIDENT_NAMESPACE, f"complaint:{complaint_id}"))


def may_see(principal: Principal, incident: Incident) -> bool:
    if incident.grid is None or not principal.may_act_in(incident.grid.value):
        return False
    if principal.roles - {Role.DEPARTMENT}:
        return True
    h = incident.handler
    return h is not None and h.kind is HandlerKind.DEPARTMENT and h.code == principal.department


@dataclass(frozen=True)
class IncidentWrite:
    """What a write answers: the incident's id, its state after it and whether this write was
    recorded now (False: the same client id's write was recorded before)."""

    id: str
    state: str
    grid: str
    version: int
    recorded: bool


def _write(i: Incident, recorded: bool) -> IncidentWrite:
    return IncidentWrite(i.id, i.state.value, str(i.grid), i.version, recorded)


class PhotosMissing(InvalidInput):
    pass


class IncidentService:
    def __init__(self, transactions: Transactions, locator: Locator, calendar: Calendars, photos: Photos, *,
                 district: str, departments: Collection[str], clock: Clock = utc_now) -> None:
        self.transactions = transactions
        self.locator = locator
        self.calendar = calendar
        self.photos = photos
        self.district = district
        self.departments = frozenset(departments)
        self.clock = clock

    async def _check_photos(self, digests: Iterable[str], field: str = "photos") -> None:
        digests = list(digests)
        missing = await self.photos.missing(digests) if digests else set()
        if missing:
            first = min(digests.index(d) for d in missing)
            raise PhotosMissing("photo_not_uploaded", f"no photo {digests[first]}: upload each photo first "
                                "(POST /v1/grids/{grid}/photos)", field=f"{field}/{first}")

    async def _table(self, uow: UnitOfWork) -> Classification:
        return await uow.get(Classification, Classification.stream_for(self.district))

    # ------------------------------------------------------------------ reports

    async def report(self, principal: Principal, body: Mapping[str, Any]) -> IncidentWrite:
        """信息收集 by a grid worker: the grid is where the point lies (the registry's R-tree)."""
        location = GeoPoint.parse((body.get("location") or {}).get("lat"), (body.get("location") or {}).get("lon"))
        grid = await self.locator.locate(location.lat, location.lon, fresh=True)
        if grid is None:
            raise InvalidInput("outside_every_grid", "the location lies in no grid of the district",
                               field="location")
        check_in(principal, grid, "location")
        await self._check_photos(body.get("photos") or ())
        key = ClassKey.from_data(body.get("classification"))
        incident_id = incident_id_for(principal.subject, body["client_id"])
        at = self.clock()

        component = body.get("component_id")

        async def report(uow: UnitOfWork) -> IncidentWrite:
            (await self._table(uow)).current(key)  # an unknown or retired class is refused at once
            if component is not None:
                registry = await uow.find(GridRegistry, GridRegistry.stream_for(grid[:12]))
                known = registry.components.get(component) if registry else None
                if known is None or known.grid.value != grid:
                    raise InvalidInput("unknown_component", f"no component {component} is registered in grid {grid}",
                                       field="component_id")
            incident = await uow.find(Incident, incident_id) or uow.add(Incident(incident_id))
            recorded = incident.report(
                source=body.get("source", "patrol"), classification=key, location=location, grid=GridCode(grid),
                urgent=body.get("urgent", False), description=body.get("description"), client_id=body["client_id"],
                by=principal.subject, at=at, observed_at=body.get("observed_at"), source_ref=body.get("source_ref"),
                component_id=body.get("component_id"), photo_ids=body.get("photos") or ())
            return _write(incident, recorded)

        return await self.transactions(report)

    def complaint_received(self, complaint_id: str, data: Mapping[str, Any], key: ClassKey, grid: str,
                           location: GeoPoint, urgent: bool):
        """A resident's complaint with a location (intake's event): the grid gets the on-site
        part. The command runs in the consumer's inbox transaction."""
        incident_id = incident_id_for_complaint(complaint_id)
        at = self.clock()

        async def report(uow: UnitOfWork) -> IncidentWrite | None:
            incident = await uow.find(Incident, incident_id)
            if incident is not None:
                return None
            incident = uow.add(Incident(incident_id))
            incident.report(source="resident_complaint", classification=key, location=location, grid=GridCode(grid),
                            urgent=urgent, description=(data.get("description") or "")[:2000] or "(no description)",
                            client_id=f"complaint-{complaint_id}"[:64], by="intake", at=at,
                            source_ref=f"complaint:{complaint_id}"[:100])
            return _write(incident, True)

        return report

    # ------------------------------------------------------------------ the loop

    async def _change(self, principal: Principal | None, incident_id: str,
                      command: Callable[[Incident, UnitOfWork, datetime], Any]) -> IncidentWrite:
        at = self.clock()

        async def change(uow: UnitOfWork) -> IncidentWrite:
            try:
                incident = await uow.get(Incident, incident_id)
            except AggregateNotFound:
                raise GridNotFound("incident", incident_id) from None
            if principal is not None and not may_see(principal, incident):
                raise GridNotFound("incident", incident_id)
            recorded = await command(incident, uow, at)
            return _write(incident, bool(recorded))

        return await self.transactions(change)

    def _centre(self, principal: Principal, incident: Incident) -> None:
        if not principal.roles & CENTRE_ROLES:
            raise NotYours("not_the_centre", "the grid centre (a community or street reviewer) does this")

    async def create(self, principal: Principal, incident_id: str, *, classification: Any = None,
                     urgent: bool | None = None, client_id: str | None = None) -> IncidentWrite:
        async def create(incident: Incident, uow: UnitOfWork, at: datetime) -> bool:
            self._centre(principal, incident)
            table = await self._table(uow)
            key = ClassKey.from_data(classification) if classification is not None else incident.reported_class
            return incident.create(table.current(key), by=principal.subject, at=at, urgent=urgent,
                                   client_id=client_id)

        return await self._change(principal, incident_id, create)

    async def dispatch(self, principal: Principal, incident_id: str, handler: Mapping[str, Any], *,
                       note: str | None = None, client_id: str | None = None) -> IncidentWrite:
        parsed = self.handler(handler)
        calendar = await self.calendar()

        async def dispatch(incident: Incident, uow: UnitOfWork, at: datetime) -> bool:
            self._centre(principal, incident)
            return incident.dispatch(parsed, calendar=calendar, by=principal.subject, at=at, note=note,
                                     client_id=client_id, task_systems=TASK_SYSTEMS)

        return await self._change(principal, incident_id, dispatch)

    def handler(self, data: Mapping[str, Any], field: str = "handler") -> Handler:
        if not isinstance(data, Mapping):
            raise InvalidInput("invalid_handler", "a handler is {kind, code}", field=field)
        if data.get("kind") == HandlerKind.DEPARTMENT.value:
            return Handler.department(data.get("code"), self.departments, field)
        if data.get("kind") == HandlerKind.STREET_SQUAD.value:
            return Handler.squad(data.get("code"), field)
        raise InvalidInput("unknown_handler_kind", "kind is department or street_squad", field=f"{field}/kind")

    def acting_handler(self, principal: Principal, incident: Incident) -> Handler:
        """Who the caller answers for: their department, or (a street reviewer) the street's
        squad the incident is with."""
        h = incident.handler
        if Role.DEPARTMENT in principal.roles and principal.department:
            return Handler(HandlerKind.DEPARTMENT, principal.department)
        if Role.STREET_REVIEWER in principal.roles and h is not None and h.kind is HandlerKind.STREET_SQUAD:
            return h
        raise NotYours("not_the_handler", f"incident {incident.id} is with {h}, not with you")

    async def defer(self, principal: Principal, incident_id: str, reason: str,
                    client_id: str | None = None) -> IncidentWrite:
        async def defer(incident: Incident, uow: UnitOfWork, at: datetime) -> bool:
            if self.acting_handler(principal, incident) != incident.handler:
                raise NotYours("not_the_handler", f"incident {incident.id} is with {incident.handler}")
            return incident.defer(reason=reason, by=principal.subject, at=at, client_id=client_id)

        return await self._change(principal, incident_id, defer)

    async def feedback(self, principal: Principal, incident_id: str, result: str, photos: Iterable[str] = (),
                       client_id: str | None = None) -> IncidentWrite:
        photos = list(photos)
        await self._check_photos(photos)

        async def feedback(incident: Incident, uow: UnitOfWork, at: datetime) -> bool:
            return incident.feedback(self.acting_handler(principal, incident), result=result, by=principal.subject,
                                     at=at, photo_ids=photos, client_id=client_id)

        return await self._change(principal, incident_id, feedback)

    def department_result(self, department: str, data: Mapping[str, Any], event_id: str):
        """A department system's result on its results topic, in the consumer's transaction."""
        async def record(uow: UnitOfWork) -> bool:
            incident = await uow.find(Incident, data["incident_id"])
            if incident is None:
                raise GridNotFound("incident", data["incident_id"])
            if incident.task_at is None or instant(data["task_at"]) != incident.task_at:
                raise StateConflict("stale_task", f"the result answers the task of {data['task_at']}, not the "
                                    f"current one ({iso(incident.task_at) if incident.task_at else 'none'})")
            return incident.feedback(Handler(HandlerKind.DEPARTMENT, department), result=data["result"],
                                     by=f"{department}-system", at=self.clock(), photo_ids=data.get("photos") or (),
                                     client_id=f"result-{event_id}"[:64])

        return record

    async def verify(self, principal: Principal, incident_id: str, passed: bool, note: str | None,
                     photos: Iterable[str] = (), client_id: str | None = None) -> IncidentWrite:
        photos = list(photos)
        await self._check_photos(photos)

        async def verify(incident: Incident, uow: UnitOfWork, at: datetime) -> bool:
            if Role.GRID_WORKER not in principal.roles:
                raise NotYours("not_a_grid_worker", "the grid worker verifies on site")
            return incident.verify(passed=passed, by=principal.subject, at=at, note=note, photo_ids=photos,
                                   client_id=client_id)

        return await self._change(principal, incident_id, verify)

    async def evaluate(self, principal: Principal, incident_id: str, level: str, note: str | None,
                       client_id: str | None = None) -> IncidentWrite:
        async def evaluate(incident: Incident, uow: UnitOfWork, at: datetime) -> bool:
            if not principal.roles & (CENTRE_ROLES | {Role.LEADER}):
                raise NotYours("not_the_centre", "the grid centre or a leader evaluates")
            return incident.evaluate(level, by=principal.subject, at=at, note=note, client_id=client_id)

        return await self._change(principal, incident_id, evaluate)

    def deadline_reached(self, incident_id: str, limit: str, due: datetime, *, overdue: bool):
        async def reached(uow: UnitOfWork) -> bool:
            incident = await uow.find(Incident, incident_id)
            return incident is not None and incident.deadline_reached(limit, due, overdue=overdue, at=self.clock())

        return reached

    async def get(self, principal: Principal, incident_id: str) -> Incident:
        incident = await load_or_none(self.transactions, Incident, incident_id)
        if incident is None or not may_see(principal, incident):
            raise GridNotFound("incident", incident_id)
        return incident

