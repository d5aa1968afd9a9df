"""grid over HTTP (JWT, jurisdiction by code prefix: a grid worker in their grids, a community
reviewer in their community, a street's staff in its street, the district's in all of it).

Registry (the district's admin writes; staff read)
PUT  /v1/communities/{community}/boundary     the community's boundary
POST /v1/communities/{community}/grids        define a grid (201, with the warnings recorded)
GET  /v1/communities/{community}/grids        the community's grids (?include_retired=true)
GET  /v1/grids/locate?lat=&lon=               the one grid a point lies in (404 outside every grid)
GET  /v1/grids/{grid}                         a grid, active or retired
PATCH /v1/grids/{grid}                        revise its details; POST .../redraw, /split, /retire;
POST /v1/communities/{community}/merges       merge grids into a new one
PUT  /v1/grids/{grid}/workers                 its workers and lead
POST /v1/grids/{grid}/buildings, /v1/communities/{community}/components
Field work (grid workers)
POST /v1/grids/{grid}/patrols                 start a patrol (its id made on the phone)
POST /v1/patrols/{patrol_id}/track, /end      GPS batches; GET /v1/patrols/{patrol_id}
POST /v1/grids/{grid}/daily-reports           the day's report; GET /v1/grids/{grid}/daily-reports/{date}
GET  /v1/jurisdictions/{jurisdiction}/daily-reports/{date}   who reported, who is missing, coverage
POST /v1/grids/{grid}/photos                  upload a photo (image bytes; metadata stripped)
GET  /v1/photos/{sha256}                      a photo, to those over its grid
Incidents (the closed loop)
POST /v1/incidents                            report; POST /v1/incidents/{id}/{create,dispatch,defer,
                                              feedback,verify,evaluate}; GET /v1/incidents[/{id}]
Disputes, the sweep, department work
POST /v1/grids/{grid}/disputes; POST /v1/disputes/{id}/{mediate,follow-up,settle,refer}; GET /v1/disputes/{id}
PUT  /v1/communities/{community}/stability-sweeps/{month}; GET the same
POST /v1/communities/{community}/department-work     a department's work: 403 without access (准入)
Classification
GET  /v1/classification; POST /v1/classification/classes; PUT/DELETE .../{kind}/{major}/{minor}
"""
from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from civicgrid_common.calendar.working_days import local_date
from civicgrid_common.identity import Principal, Role
from civicgrid_common.identity.dependencies import require
from civicgrid_common.problems import NOT_FOUND, Problem
from civicgrid_common.web.models import Day, QueryFlag

from civicgrid_grid.adapters.photos import sanitise
from civicgrid_grid.application.field_work import PatrolState, ReportState, parse_patrol_id
from civicgrid_grid.application.ports import GridNotFound, check_in
from civicgrid_grid.domain.incident import Incident
from civicgrid_grid.entrypoints.api import models as m

Community = Annotated[str, Path(pattern=r"^[0-9]{12}$", description="the community's 12-digit code")]
GridPath = Annotated[str, Path(pattern=r"^[0-9]{15}$", description="the grid's 15-digit code")]
Jurisdiction = Annotated[str, Path(pattern=r"^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$",
                                   description="a district, street, community or grid code")]
IncidentId = Annotated[str, Path(max_length=64, pattern=r"^[0-9a-f-]{36}$", description="the incident's id")]
DisputeId = Annotated[str, Path(max_length=64, pattern=r"^[0-9a-f-]{36}$", description="the dispute's id")]
PatrolId = Annotated[str, Path(max_length=36, pattern=r"^[0-9a-f-]{36}$", description="the patrol's id, a UUID made on the phone")]
DayPath = Annotated[Day, Path(description="the day, China time")]
Area = Annotated[str, Path(pattern=r"^([0-9]{6}|[0-9]{9}|[0-9]{12})$",
                           description="a district's, street's or community's code (6, 9 or 12 digits)")]

STAFF = (Role.GRID_WORKER, Role.COMMUNITY_REVIEWER, Role.STREET_REVIEWER, Role.LEADER, Role.AUDITOR, Role.ADMIN)
CENTRE = (Role.COMMUNITY_REVIEWER, Role.STREET_REVIEWER)
admin_in_community = Depends(require(Role.ADMIN, jurisdiction_param="community"))
admin_in_grid = Depends(require(Role.ADMIN, jurisdiction_param="grid"))
staff_in_community = Depends(require(*STAFF, jurisdiction_param="community"))
staff_in_grid = Depends(require(*STAFF, jurisdiction_param="grid"))
worker_in_grid = Depends(require(Role.GRID_WORKER, jurisdiction_param="grid"))
worker = Depends(require(Role.GRID_WORKER))
incident_readers = Depends(require(*STAFF, Role.DEPARTMENT))
centre = Depends(require(*CENTRE))
handlers = Depends(require(Role.DEPARTMENT, Role.STREET_REVIEWER))
evaluators = Depends(require(*CENTRE, Role.LEADER))
dispute_staff = Depends(require(Role.GRID_WORKER, *CENTRE))
dispute_staff_in_grid = Depends(require(Role.GRID_WORKER, *CENTRE, jurisdiction_param="grid"))
sweepers = Depends(require(*CENTRE, jurisdiction_param="community"))
sweep_readers = Depends(require(*CENTRE, Role.LEADER, Role.AUDITOR, Role.ADMIN, jurisdiction_param="community"))
department_in_community = Depends(require(Role.DEPARTMENT, jurisdiction_param="community"))
signed_in = Depends(require())
admin = Depends(require(Role.ADMIN))


def _svc(request: Request, name: str) -> Any:
    return getattr(request.app.state, name)


def _patrol(p: PatrolState) -> m.PatrolOut:
    return m.PatrolOut(id=p.id, grid=p.grid, worker=p.worker, started_at=p.started_at, ended_at=p.ended_at,
                       points=p.points, points_outside=p.points_outside, recorded=p.recorded)


def _report(r: ReportState) -> m.ReportOut:
    return m.ReportOut(grid=r.grid, date=r.day, all_safe=r.all_safe, incidents=list(r.incidents), late=r.late,
                       submitted_at=r.submitted_at, missing_at=r.missing_at, recorded=r.recorded)


def _incident(i: Incident) -> m.IncidentOut:
    r = i._reported
    return m.IncidentOut(
        id=i.id, version=i.version, state=i.state.value, source=i.source.value if i.source else None,
        grid=str(i.grid), urgent=i.urgent, classification=i.classification.to_data() if i.classification else None,
        reported={k: r.get(k) for k in ("classification", "location", "description", "component_id", "photos",
                                        "observed_at", "source_ref")},
        handler=i.handler.to_data() if i.handler else None, reported_at=i.reported_at, created_at=i.created_at,
        dispatched_at=i.dispatched_at, handling_due=i.handling_due, fed_back_at=i.fed_back_at, closed_at=i.closed_at,
        closed_on_time=i.closed_on_time, deferred=i.deferred, deferral_reason=i.deferral_reason,
        rework_count=i.rework_count, evaluation=i.evaluation.value if i.evaluation else None,
        deadlines=i.deadlines(), overdue=sorted(i.overdue))


def grid_router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["grid"])

    # ------------------------------------------------------------------ registry

    @r.put("/communities/{community}/boundary", status_code=204)
    async def put_boundary(body: m.BoundaryIn, community: Community, request: Request,
                           who: Principal = admin_in_community) -> Response:
        await _svc(request, "registry").set_boundary(who, community, body.polygon.model_dump())
        return Response(status_code=204)

    @r.post("/communities/{community}/grids", status_code=201, response_model=m.GridDefinedOut)
    async def define_grid(body: m.GridIn, community: Community, request: Request,
                          who: Principal = admin_in_community) -> m.GridDefinedOut:
        data = body.model_dump(mode="json")
        warnings = await _svc(request, "registry").define(who, community, data)
        return m.GridDefinedOut(code=body.code, warnings=warnings)

    @r.get("/communities/{community}/grids", response_model=list[m.GridOut])
    async def list_grids(community: Community, request: Request, include_retired: QueryFlag = False,
                         who: Principal = staff_in_community) -> list[m.GridOut]:
        return [m.GridOut(**g) for g in await _svc(request, "grid_reads").grids(community,
                                                                                include_retired=include_retired)]

    @r.get("/grids/locate", response_model=m.LocatedOut)
    async def locate(request: Request, lat: Annotated[float, Query(ge=-90, le=90, description="WGS84")],
                     lon: Annotated[float, Query(ge=-180, le=180, description="WGS84")],
                     who: Principal = signed_in) -> m.LocatedOut:
        grid = await _svc(request, "registry").locate(lat, lon)
        if grid is None:
            raise Problem(NOT_FOUND, f"({lat}, {lon}) lies in no grid of the district", code="outside_every_grid")
        return m.LocatedOut(grid=grid, community=grid[:12])

    @r.get("/grids/{grid}", response_model=m.GridOut)
    async def get_grid(grid: GridPath, request: Request, who: Principal = staff_in_grid) -> m.GridOut:
        found = await _svc(request, "grid_reads").grid(grid)
        if found is None:
            raise GridNotFound("grid", grid)
        return m.GridOut(**found)

    @r.patch("/grids/{grid}", response_model=m.GridDefinedOut)
    async def revise_grid(body: m.GridChangesIn, grid: GridPath, request: Request,
                          who: Principal = admin_in_grid) -> m.GridDefinedOut:
        changes = body.model_dump(exclude_none=True, exclude={"reason"})
        warnings = await _svc(request, "registry").revise(who, grid, changes, body.reason)
        return m.GridDefinedOut(code=grid, warnings=warnings)

    @r.post("/grids/{grid}/redraw", status_code=204)
    async def redraw_grid(body: m.RedrawIn, grid: GridPath, request: Request, who: Principal = admin_in_grid) -> Response:
        await _svc(request, "registry").redraw(who, grid, body.polygon.model_dump(), body.reason)
        return Response(status_code=204)

    @r.post("/grids/{grid}/split", response_model=list[m.GridDefinedOut])
    async def split_grid(body: m.SplitIn, grid: GridPath, request: Request,
                         who: Principal = admin_in_grid) -> list[m.GridDefinedOut]:
        warnings = await _svc(request, "registry").split(who, grid, [p.model_dump(mode="json") for p in body.parts],
                                                         body.reason)
        return [m.GridDefinedOut(code=p.code, warnings=warnings.get(p.code, [])) for p in body.parts]

    @r.post("/communities/{community}/merges", status_code=201, response_model=m.GridDefinedOut)
    async def merge_grids(body: m.MergeIn, community: Community, request: Request,
                          who: Principal = admin_in_community) -> m.GridDefinedOut:
        warnings = await _svc(request, "registry").merge(who, community, body.codes, body.into.model_dump(mode="json"),
                                                         body.reason)
        return m.GridDefinedOut(code=body.into.code, warnings=warnings)

    @r.post("/grids/{grid}/retire", status_code=204)
    async def retire_grid(body: m.RetireIn, grid: GridPath, request: Request, who: Principal = admin_in_grid) -> Response:
        await _svc(request, "registry").retire(who, grid, body.reason)
        return Response(status_code=204)

    @r.put("/grids/{grid}/workers", status_code=204)
    async def assign_workers(body: m.WorkersIn, grid: GridPath, request: Request,
                             who: Principal = admin_in_grid) -> Response:
        await _svc(request, "registry").assign_workers(who, grid, body.workers, body.lead)
        return Response(status_code=204)

    @r.post("/grids/{grid}/buildings", status_code=201, response_model=m.BuildingOut)
    async def register_building(body: m.BuildingIn, grid: GridPath, request: Request,
                                who: Principal = admin_in_grid) -> m.BuildingOut:
        bid = await _svc(request, "registry").register_building(who, grid, body.code, body.place.model_dump(),
                                                                body.name)
        return m.BuildingOut(id=bid)

    @r.post("/communities/{community}/components", status_code=201, response_model=m.ComponentOut)
    async def register_component(body: m.ComponentIn, community: Community, request: Request,
                                 who: Principal = admin_in_community) -> m.ComponentOut:
        grid = await _svc(request, "registry").register_component(who, community, body.id, body.location.lat,
                                                                  body.location.lon)
        return m.ComponentOut(id=body.id, grid=grid)

    # ------------------------------------------------------------------ field work

    @r.post("/grids/{grid}/patrols", status_code=201, response_model=m.PatrolOut)
    async def start_patrol(body: m.PatrolStartIn, grid: GridPath, request: Request,
                           who: Principal = worker_in_grid) -> m.PatrolOut:
        return _patrol(await _svc(request, "field_work").start_patrol(who, grid, body.id, body.client_id))

    @r.post("/patrols/{patrol_id}/track", response_model=m.PatrolOut)
    async def record_track(body: m.TrackIn, patrol_id: PatrolId, request: Request,
                           who: Principal = worker) -> m.PatrolOut:
        return _patrol(await _svc(request, "field_work").track(
            who, parse_patrol_id(patrol_id), [p.model_dump() for p in body.points], body.client_id))

    @r.post("/patrols/{patrol_id}/end", response_model=m.PatrolOut)
    async def end_patrol(body: m.TrackIn, patrol_id: PatrolId, request: Request, who: Principal = worker) -> m.PatrolOut:
        return _patrol(await _svc(request, "field_work").track(
            who, parse_patrol_id(patrol_id), [p.model_dump() for p in body.points], body.client_id, end=True))

    @r.get("/patrols/{patrol_id}", response_model=m.PatrolOut)
    async def get_patrol(patrol_id: PatrolId, request: Request, who: Principal = Depends(require(*STAFF))) -> m.PatrolOut:
        return _patrol(await _svc(request, "field_work").patrol(who, parse_patrol_id(patrol_id)))

    @r.post("/grids/{grid}/daily-reports", status_code=201, response_model=m.ReportOut)
    async def submit_report(body: m.DailyReportIn, grid: GridPath, request: Request,
                            who: Principal = worker_in_grid) -> m.ReportOut:
        return _report(await _svc(request, "field_work").submit_report(
            who, grid, body.date, body.all_safe, body.incidents, body.client_id, body.patrol_id))

    @r.get("/grids/{grid}/daily-reports/{day}", response_model=m.ReportOut)
    async def get_report(grid: GridPath, day: DayPath, request: Request, who: Principal = staff_in_grid) -> m.ReportOut:
        return _report(await _svc(request, "field_work").report(who, grid, day))

    @r.post("/jurisdictions/{jurisdiction}/daily-reports/{day}/check", response_model=m.CheckOut)
    async def check_again(jurisdiction: Area, day: DayPath, request: Request,
                          who: Principal = Depends(require(Role.ADMIN, jurisdiction_param="jurisdiction"))
                          ) -> m.CheckOut:
        """Today's missing-report check run again now, by the district's admin, over a district,
        a street or a community: for grids registered after the day's check had run. Once its
        hour has passed only (409 before it); a grid reported or flagged already is left as it is."""
        at, flagged = await _svc(request, "field_work").check_again(who, jurisdiction, day)
        return m.CheckOut(jurisdiction=jurisdiction, date=day, checked_at=at, flagged=flagged)

    @r.get("/jurisdictions/{jurisdiction}/daily-reports/{day}", response_model=m.DayOut)
    async def day_of_reports(jurisdiction: Jurisdiction, day: DayPath, request: Request,
                             who: Principal = Depends(require(*STAFF, jurisdiction_param="jurisdiction"))) -> m.DayOut:
        code = jurisdiction
        calendar = await request.app.state.field_work.calendar()
        rows = await _svc(request, "grid_reads").day(code, day)
        working = calendar.is_working_day(day)
        reported = [r for r in rows if r["submitted_at"] is not None]
        return m.DayOut(jurisdiction=code, date=day, working_day=working, grids=len(rows), reported=len(reported),
                        coverage=(len(reported) / len(rows)) if working and rows else None,
                        missing=[r["code"] for r in rows if working and r["submitted_at"] is None],
                        by_grid=[m.DayGridOut(grid=r["code"], reported=r["submitted_at"] is not None,
                                              all_safe=r["all_safe"], late=r["late"], missing_at=r["missing_at"])
                                 for r in rows])

    # ------------------------------------------------------------------ photos

    @r.post("/grids/{grid}/photos", status_code=201, response_model=m.PhotoOut, openapi_extra={
        "requestBody": {"required": True, "content": {t: {"schema": {"type": "string", "format": "binary",
                                                                        "maxLength": 8 * 1024 * 1024}}
                                                      for t in ("image/jpeg", "image/png", "image/webp")}}})
    async def upload_photo(grid: GridPath, request: Request,
                           who: Principal = Depends(require(Role.GRID_WORKER, Role.DEPARTMENT, *CENTRE,
                                                            jurisdiction_param="grid"))) -> m.PhotoOut:
        photos = _svc(request, "photos")
        photo = await asyncio.to_thread(sanitise, await request.body())  # CPU-bound: off the event loop
        await photos.put(photo, uploaded_by=who.subject, grid=grid, at=request.app.state.incidents.clock())
        return m.PhotoOut(sha256=photo.sha256, media_type=photo.media_type, width=photo.width, height=photo.height,
                          size=photo.size)

    @r.get("/photos/{sha256}", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    async def get_photo(sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")], request: Request,
                        who: Principal = Depends(require(*STAFF, Role.DEPARTMENT))) -> Response:
        photos = _svc(request, "photos")
        stored = await photos.get(sha256)
        if stored is None or not any(who.may_act_in(g) for g in await photos.grids(sha256)) or (
                not (who.roles - {Role.DEPARTMENT})
                and not await _svc(request, "grid_reads").photo_of_department(sha256, who.department or "")):
            raise GridNotFound("photo", sha256)  # a department sees the photos of incidents dispatched to it
        return Response(stored.content, media_type=stored.media_type,
                        headers={"Cache-Control": "private, max-age=86400, immutable",
                                 "X-Content-Type-Options": "nosniff"})

    # ------------------------------------------------------------------ incidents

    @r.post("/incidents", status_code=201, response_model=m.IncidentWriteOut)
    async def report_incident(body: m.IncidentReportIn, request: Request, who: Principal = worker) -> m.IncidentWriteOut:
        w = await _svc(request, "incidents").report(who, body.model_dump(mode="json"))
        return m.IncidentWriteOut(**w.__dict__)

    @r.get("/incidents", response_model=m.IncidentListOut)
    async def list_incidents(request: Request,
                             grid: Annotated[str | None, Query(pattern=r"^[0-9]{15}$")] = None,
                             state: Annotated[str | None, Query(pattern=r"^[a-z_]{1,20}$")] = None,
                             limit: Annotated[int, Query(ge=1, le=200)] = 50,
                             offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
                             who: Principal = incident_readers) -> m.IncidentListOut:
        if grid is not None:
            check_in(who, grid, "grid")
        # A department's staff or system sees what was dispatched to it (without a department: nothing).
        department = None if who.roles - {Role.DEPARTMENT} else (who.department or "-")
        rows = await _svc(request, "grid_reads").incidents(who.jurisdictions, department=department, grid=grid,
                                                            state=state, limit=limit, offset=offset)
        return m.IncidentListOut(items=[m.IncidentRowOut(**row) for row in rows], limit=limit, offset=offset)

    @r.get("/incidents/{incident_id}", response_model=m.IncidentOut)
    async def get_incident(incident_id: IncidentId, request: Request,
                           who: Principal = incident_readers) -> m.IncidentOut:
        return _incident(await _svc(request, "incidents").get(who, incident_id))

    @r.post("/incidents/{incident_id}/create", response_model=m.IncidentWriteOut)
    async def create_incident(body: m.CreateIn, incident_id: IncidentId, request: Request,
                              who: Principal = centre) -> m.IncidentWriteOut:
        w = await _svc(request, "incidents").create(
            who, incident_id, classification=body.classification.model_dump() if body.classification else None,
            urgent=body.urgent, client_id=body.client_id)
        return m.IncidentWriteOut(**w.__dict__)

    @r.post("/incidents/{incident_id}/dispatch", response_model=m.IncidentWriteOut)
    async def dispatch_incident(body: m.DispatchIn, incident_id: IncidentId, request: Request,
                                who: Principal = centre) -> m.IncidentWriteOut:
        w = await _svc(request, "incidents").dispatch(who, incident_id, body.handler.model_dump(), note=body.note,
                                                      client_id=body.client_id)
        return m.IncidentWriteOut(**w.__dict__)

    @r.post("/incidents/{incident_id}/defer", response_model=m.IncidentWriteOut)
    async def defer_incident(body: m.DeferIn, incident_id: IncidentId, request: Request,
                             who: Principal = handlers) -> m.IncidentWriteOut:
        w = await _svc(request, "incidents").defer(who, incident_id, body.reason, body.client_id)
        return m.IncidentWriteOut(**w.__dict__)

    @r.post("/incidents/{incident_id}/feedback", response_model=m.IncidentWriteOut)
    async def feed_back(body: m.FeedbackIn, incident_id: IncidentId, request: Request,
                        who: Principal = handlers) -> m.IncidentWriteOut:
        w = await _svc(request, "incidents").feedback(who, incident_id, body.result, body.photos, body.client_id)
        return m.IncidentWriteOut(**w.__dict__)

    @r.post("/incidents/{incident_id}/verify", response_model=m.IncidentWriteOut)
    async def verify_incident(body: m.VerifyIn, incident_id: IncidentId, request: Request,
                              who: Principal = worker) -> m.IncidentWriteOut:
        w = await _svc(request, "incidents").verify(who, incident_id, body.passed, body.note, body.photos,
                                                    body.client_id)
        return m.IncidentWriteOut(**w.__dict__)

    @r.post("/incidents/{incident_id}/evaluate", response_model=m.IncidentWriteOut)
    async def evaluate_incident(body: m.EvaluateIn, incident_id: IncidentId, request: Request,
                                who: Principal = evaluators) -> m.IncidentWriteOut:
        w = await _svc(request, "incidents").evaluate(who, incident_id, body.level, body.note, body.client_id)
        return m.IncidentWriteOut(**w.__dict__)

    # ------------------------------------------------------------------ disputes, sweeps, department work

    @r.post("/grids/{grid}/disputes", status_code=201, response_model=m.DisputeWriteOut)
    async def file_dispute(body: m.DisputeIn, grid: GridPath, request: Request,
                           who: Principal = dispute_staff_in_grid) -> m.DisputeWriteOut:
        w = await _svc(request, "stability").file(who, grid, body.model_dump(mode="json"))
        return m.DisputeWriteOut(**w.__dict__)

    async def _act(request: Request, who: Principal, dispute_id: str, action: str, body: Any) -> m.DisputeWriteOut:
        w = await _svc(request, "stability").act(who, dispute_id, action, body.model_dump(mode="json"))
        return m.DisputeWriteOut(**w.__dict__)

    @r.post("/disputes/{dispute_id}/mediate", response_model=m.DisputeWriteOut)
    async def mediate_dispute(body: m.MediateIn, dispute_id: DisputeId, request: Request,
                              who: Principal = dispute_staff) -> m.DisputeWriteOut:
        return await _act(request, who, dispute_id, "mediate", body)

    @r.post("/disputes/{dispute_id}/follow-up", response_model=m.DisputeWriteOut)
    async def follow_up_dispute(body: m.FollowUpIn, dispute_id: DisputeId, request: Request,
                                who: Principal = dispute_staff) -> m.DisputeWriteOut:
        return await _act(request, who, dispute_id, "follow_up", body)

    @r.post("/disputes/{dispute_id}/settle", response_model=m.DisputeWriteOut)
    async def settle_dispute(body: m.SettleIn, dispute_id: DisputeId, request: Request,
                             who: Principal = dispute_staff) -> m.DisputeWriteOut:
        return await _act(request, who, dispute_id, "settle", body)

    @r.post("/disputes/{dispute_id}/refer", response_model=m.DisputeWriteOut)
    async def refer_dispute(body: m.ReferIn, dispute_id: DisputeId, request: Request,
                            who: Principal = dispute_staff) -> m.DisputeWriteOut:
        return await _act(request, who, dispute_id, "refer", body)

    @r.get("/disputes/{dispute_id}", response_model=m.DisputeOut)
    async def get_dispute(dispute_id: DisputeId, request: Request,
                          who: Principal = Depends(require(*STAFF))) -> m.DisputeOut:
        d = await _svc(request, "stability").get(who, dispute_id)
        return m.DisputeOut(id=d.id, state=d.state.value, grid=str(d.grid), nature=d.nature.value,
                            urgency=d.urgency.value, mediations=d.mediations, follow_ups=d.follow_ups,
                            referred_to=d.referred_to.value if d.referred_to else None, filed_at=d.filed_at)

    @r.put("/communities/{community}/stability-sweeps/{month}", response_model=m.RecordedOut)
    async def record_sweep(body: m.SweepIn, community: Community,
                           month: Annotated[str, Path(pattern=r"^[0-9]{4}-[0-9]{2}$")], request: Request,
                           who: Principal = sweepers) -> m.RecordedOut:
        recorded = await _svc(request, "stability").record_sweep(
            who, community, month, [f.model_dump(mode="json") for f in body.factors], body.client_id)
        return m.RecordedOut(recorded=recorded)

    @r.get("/communities/{community}/stability-sweeps/{month}", response_model=m.SweepOut)
    async def get_sweep(community: Community, month: Annotated[str, Path(pattern=r"^[0-9]{4}-[0-9]{2}$")],
                        request: Request, who: Principal = sweep_readers) -> m.SweepOut:
        s = await _svc(request, "stability").sweep(who, community, month)
        return m.SweepOut(community=community, month=month, factors=s.factors)

    @r.post("/communities/{community}/department-work", status_code=201, response_model=m.WorkOut)
    async def push_work(body: m.WorkIn, community: Community, request: Request,
                        who: Principal = department_in_community) -> m.WorkOut:
        grant, recorded = await _svc(request, "stability").push_work(who, community, body.model_dump(mode="json"))
        return m.WorkOut(accepted=True, grant=grant, recorded=recorded)

    # ------------------------------------------------------------------ classification

    @r.get("/classification", response_model=m.ClassificationOut)
    async def get_classification(request: Request, who: Principal = signed_in) -> m.ClassificationOut:
        svc = _svc(request, "classification")
        table = await svc.table()
        return m.ClassificationOut(district=svc.district, classes=[
            m.ClassOut(**c.minor_class.to_data(), code=str(c.key), version=c.version) for c in table.active()])

    @r.post("/classification/classes", status_code=201, response_model=m.RecordedOut)
    async def add_class(body: m.MinorClassIn, request: Request, who: Principal = admin) -> m.RecordedOut:
        await _svc(request, "classification").add(who, _class_data(body))
        return m.RecordedOut(recorded=True)

    @r.put("/classification/classes/{kind}/{major}/{minor}", response_model=m.RecordedOut)
    async def revise_class(body: m.ClassRevisionIn, request: Request,
                           kind: Annotated[str, Path(pattern=r"^(part|event)$")],
                           major: Annotated[str, Path(pattern=r"^[0-9]{2}$")],
                           minor: Annotated[str, Path(pattern=r"^[0-9]{2}$")], who: Principal = admin) -> m.RecordedOut:
        if (body.kind, body.major, body.minor) != (kind, major, minor):
            raise Problem(NOT_FOUND, "the body names another class than the path", code="class_mismatch")
        await _svc(request, "classification").revise(who, _class_data(body), body.reason)
        return m.RecordedOut(recorded=True)

    @r.delete("/classification/classes/{kind}/{major}/{minor}", response_model=m.RecordedOut)
    async def retire_class(request: Request, kind: Annotated[str, Path(pattern=r"^(part|event)$")],
                           major: Annotated[str, Path(pattern=r"^[0-9]{2}$")],
                           minor: Annotated[str, Path(pattern=r"^[0-9]{2}$")],
                           reason: Annotated[str, Query(min_length=1, max_length=500)],
                           who: Principal = admin) -> m.RecordedOut:
        await _svc(request, "classification").retire(who, kind, major, minor, reason)
        return m.RecordedOut(recorded=True)

    return r


def _class_data(body: m.MinorClassIn) -> dict[str, Any]:
    data = body.model_dump(exclude={"reason"})
    data["limit"] = {k: v for k, v in data["limit"].items() if v is not None}
    return data


__all__ = ["grid_router", "local_date"]
