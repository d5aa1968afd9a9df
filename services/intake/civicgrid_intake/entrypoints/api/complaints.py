"""Complaints and requests over HTTP: the staff API under JWT, and the Open311 endpoint.

Staff API (every route under a JWT, scoped to the caller's jurisdictions):

POST /v1/complaints                 file one: window_clerk (at the window, from the 12345 hotline
                                    by phone, or typed in from the web), grid_worker (channel
                                    grid_worker, reported on a resident's behalf on patrol)
GET  /v1/complaints/{id}            one complaint
GET  /v1/complaints                 the list: status, category, community, received_from/_to;
                                    oldest first; limit/offset
POST /v1/complaints/{id}/route      window_clerk, street_reviewer, leader (the centre dispatches);
                                     no body: the category's default (domain DEFAULT_ROUTING)
POST /v1/complaints/{id}/response   first feedback: a department routed to, for itself; or the
POST /v1/complaints/{id}/answer     centre's staff, for the street or on a routed department's behalf
POST /v1/complaints/{id}/close      window_clerk, street_reviewer, leader
POST /v1/complaints/{id}/rating     window_clerk, grid_worker: what the resident said on the
                                    call-back or the visit

Phone intake is the window clerk's: the 12345 hotline's tickets reach the street's acceptance
centre, whose clerks file them with channel `phone`. A department system does not file
complaints (it receives them routed); it reads and answers only those routed to it.

Open311 GeoReport v2 under /open311/v2 (not under JWT: POST needs the api_key, GETs are
public): `Open311Complaints` is the Open311Port over the complaint service and its read
model. It lives in the entry points (not the application) because it speaks the wire
model of civicgrid_intake.entrypoints.open311, and layers only import downwards.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Callable, Literal, Sequence

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from civicgrid_common.identity import Principal, Role
from civicgrid_common.identity.dependencies import require
from civicgrid_common.identity.principal import InvalidPrincipal, validate_jurisdiction
from civicgrid_common.problems import (
    VALIDATION_ERROR, Problem, body_error, parameter_error,
)
from civicgrid_common.web.models import Day, RequestBody

from civicgrid_intake.adapters import complaint_views as views
from civicgrid_intake.application.complaints import STREET, ComplaintNotFound, ComplaintService, NewComplaint
from civicgrid_intake.config import IntakeSettings
from civicgrid_intake.domain import complaint as c
from civicgrid_intake.domain.complaint import Channel, Complaint, ComplaintError, GeoPoint, Location, State, w3c
from civicgrid_intake.domain.rating import RatingLevel
from civicgrid_intake.domain.routing import InvalidRouting, routing_from_data, routing_to_data
from civicgrid_intake.entrypoints.open311.mapping import COMPLAINT_SERVICES, complaint_intake, feedback_notice, updates_from_events
from civicgrid_intake.entrypoints.open311.model import (
    CreatedRequest,
    Discovery,
    Endpoint,
    Jurisdiction,
    NewRequestUpdate,
    NewServiceRequest,
    RequestQuery,
    RequestUpdate,
    Service,
    ServiceRequest,
    TokenResult,
    UpdatesQuery,
)
from civicgrid_intake.entrypoints.open311.router import open311_router


FILERS = (Role.WINDOW_CLERK, Role.GRID_WORKER)
READERS = (Role.WINDOW_CLERK, Role.GRID_WORKER, Role.COMMUNITY_REVIEWER, Role.STREET_REVIEWER, Role.LEADER,
           Role.DEPARTMENT, Role.AUDITOR)
DISPATCHERS = (Role.WINDOW_CLERK, Role.STREET_REVIEWER, Role.LEADER)
HANDLERS = (*DISPATCHERS, Role.DEPARTMENT)
RATING_RECORDERS = (Role.WINDOW_CLERK, Role.GRID_WORKER)
# Channels a clerk may file by; open311 is the Open311 endpoint's, grid_worker the grid worker's.
CLERK_CHANNELS = (Channel.WINDOW, Channel.PHONE, Channel.WEB)

# ---------------------------------------------------------------------------- bodies


class _Body(RequestBody):
    # Strict: "true" is not a boolean, "32.0" not a number; unknown fields are mistakes.
    model_config = ConfigDict(extra="forbid", strict=True)


class LocationIn(_Body):
    address: str | None = Field(None, max_length=c.MAX_ADDRESS, description="the address as told")
    address_id: str | None = Field(None, max_length=c.MAX_ADDRESS, description="an id of the address register")
    lat: float | None = Field(None, ge=-90, le=90, description="WGS84 latitude")
    long: float | None = Field(None, ge=-180, le=180, description="WGS84 longitude")


class ComplaintIn(_Body):
    category: str = Field(max_length=40, description="urban_construction, planning, municipal_works, environmental_protection, "
                                      "housing_management, epidemic_prevention, public_order or other")
    channel: str = Field("window", max_length=20, description="window, phone (the 12345 hotline) or web; grid workers: grid_worker")
    urgency: str = Field("general", max_length=20, description="life_or_property (2 h), utilities (24 h), general (7 working days), "
                                                "complex (15 working days)")
    jurisdiction: str = Field(max_length=15, description="the street, community or grid code where it happened")
    location: LocationIn
    description: str = Field("", max_length=c.MAX_TEXT)
    anonymous: bool = False
    applicant_id: str | None = Field(None, max_length=64, description="the registered applicant's pseudonymous id")
    media_url: str | None = Field(None, max_length=2048)


class RoutingIn(_Body):
    kind: Literal["street", "department", "lead"]
    department: str | None = Field(None, max_length=40)
    lead: str | None = Field(None, max_length=40)
    co_departments: list[Annotated[str, Field(max_length=40)]] = Field(default_factory=list, max_length=20)


class ResponseIn(_Body):
    by: str | None = Field(None, max_length=40, description="'street' or a department routed to; a department "
                                                            "system answers for itself")


class AnswerIn(ResponseIn):
    answer: str = Field(max_length=c.MAX_TEXT)
    resolved: bool


class RatingIn(_Body):
    rating: str = Field(max_length=30, description="very_satisfied, satisfied, basically_satisfied, dissatisfied, very_dissatisfied")


# ---------------------------------------------------------------------------- views


def _time(at: datetime | None) -> str | None:
    return w3c(at) if at is not None else None


_INSTANT = {"format": "date-time"}  # W3C date-time in China time, as Open311 shows it too


def _absent_if_none(description: str | None = None) -> Any:
    """A member left out of the JSON when it has no value (not sent as null)."""
    return Field(None, description=description, exclude_if=lambda v: v is None)


class LocationOut(BaseModel):
    address: str | None = _absent_if_none()
    address_id: str | None = _absent_if_none()
    lat: float | None = _absent_if_none("WGS84 latitude")
    lon: float | None = _absent_if_none("WGS84 longitude")


class ListLocationOut(BaseModel):
    address: str | None = _absent_if_none()
    address_id: str | None = _absent_if_none()
    lat: float | None = _absent_if_none("WGS84 latitude")
    long: float | None = _absent_if_none("WGS84 longitude (Open311's name)")


class RoutingOut(BaseModel):
    """One of the three routing rules: street; department; lead with co_departments."""

    kind: Literal["street", "department", "lead"]
    department: str | None = _absent_if_none()
    lead: str | None = _absent_if_none()
    co_departments: list[str] | None = _absent_if_none()


class _ComplaintBase(BaseModel):
    """What the complaint and its list entry both show."""

    id: str
    version: int
    status: State
    category: c.Category
    channel: Channel
    urgency: c.Urgency
    jurisdiction: str
    anonymous: bool
    applicant_id: str | None = Field(description="pseudonymous; null for an anonymous complaint")
    description: str
    resolved: bool | None
    round: int = Field(description="1, or 2 after a bad review reopened it")
    received_at: str | None = Field(json_schema_extra=_INSTANT)
    feedback_due_at: str | None = Field(json_schema_extra=_INSTANT)
    responded_at: str | None = Field(json_schema_extra=_INSTANT)
    closed_at: str | None = Field(json_schema_extra=_INSTANT)
    updated_at: str | None = Field(json_schema_extra=_INSTANT)


class ComplaintOut(_ComplaintBase):
    """A complaint for staff: everything but personal data (there is none in it)."""

    location: LocationOut
    media_url: str | None
    routing: RoutingOut | None
    answer: str | None
    ratings: list[RatingLevel]
    open311_service_code: str | None


class ComplaintListItem(_ComplaintBase):
    """A list entry, from the read model."""

    location: ListLocationOut
    routing_kind: Literal["street", "department", "lead"] | None
    departments: list[str] | None
    rating: RatingLevel | None = Field(description="the latest rating")
    service_code: str | None


class ComplaintPage(BaseModel):
    items: list[ComplaintListItem]
    total: int
    limit: int
    offset: int


def complaint_out(cp: Complaint) -> ComplaintOut:
    assert cp.state and cp.category and cp.channel and cp.urgency and cp.location
    return ComplaintOut(
        id=cp.id, version=cp.version, status=cp.state, category=cp.category, channel=cp.channel,
        urgency=cp.urgency, jurisdiction=cp.jurisdiction, anonymous=cp.anonymous, applicant_id=cp.applicant_id,
        description=cp.description, location=LocationOut(**cp.location.to_data()), media_url=cp.media_url,
        routing=RoutingOut(**routing_to_data(cp.routing)) if cp.routing else None, answer=cp.answer,
        resolved=cp.resolved, ratings=list(cp.ratings), round=cp.round,
        received_at=_time(cp.received_at), feedback_due_at=_time(cp.feedback_due_at),
        responded_at=_time(cp.responded_at), closed_at=_time(cp.closed_at), updated_at=_time(cp.updated_at),
        open311_service_code=cp.open311_service_code,
    )


def row_out(row: dict[str, Any]) -> ComplaintListItem:
    return ComplaintListItem(
        **{k: row[k] for k in ("id", "version", "status", "category", "channel", "urgency", "jurisdiction",
                               "anonymous", "applicant_id", "description", "routing_kind", "departments",
                               "resolved", "rating", "round", "service_code")},
        location=ListLocationOut(**{k: row[k] for k in ("address", "address_id", "lat", "long")}),
        **{k: _time(row[k]) for k in ("received_at", "updated_at", "feedback_due_at", "responded_at", "closed_at")},
    )


# ---------------------------------------------------------------------------- staff API


def _field_problem(field: str, detail: str) -> Problem:
    return Problem(VALIDATION_ERROR, detail, errors=[parameter_error(field, "query", detail)])


def complaints_router() -> APIRouter:
    router = APIRouter(prefix="/v1/complaints", tags=["complaints"])

    def service(request: Request) -> ComplaintService:
        return request.app.state.complaints

    @router.post("", status_code=201, response_model=ComplaintOut)
    async def file_complaint(body: ComplaintIn, principal: Principal = Depends(require(*FILERS)),
                             svc: ComplaintService = Depends(service)):
        try:
            validate_jurisdiction(body.jurisdiction)
        except InvalidPrincipal as e:
            raise Problem(VALIDATION_ERROR, str(e), errors=[body_error("jurisdiction", str(e))]) from None
        new = NewComplaint(
            category=c.parse_category(body.category),
            channel=_channel_for(principal, body.channel),
            urgency=c.parse_urgency(body.urgency),
            jurisdiction=body.jurisdiction,
            location=_location(body.location),
            description=body.description,
            anonymous=body.anonymous,
            applicant_id=body.applicant_id,
            media_url=body.media_url,
        )
        return complaint_out(await svc.file(new, principal))

    @router.get("", response_model=ComplaintPage)
    async def list_complaints(
        request: Request,
        status: list[Annotated[str, Query(max_length=20)]] = Query(
            default_factory=list, max_length=7,
            description="received, routed, responded, answered, closed, rated, reopened (repeatable)"),
        category: str | None = Query(None, max_length=40),
        community: str | None = Query(None, max_length=15,
                                      description="a community (or street, grid) code inside yours"),
        received_from: Day | None = Query(None, description="first day received (China time)"),
        received_to: Day | None = Query(None, description="last day received (China time), inclusive"),
        limit: int = Query(50, ge=1, le=200),
        offset: int = Query(0, ge=0, le=100_000),
        principal: Principal = Depends(require(*READERS, jurisdiction_param="community")),
    ):
        known = {s.value for s in State}
        for s in status:
            if s not in known:
                raise _field_problem("status", f"unknown status {s!r}; expected one of {', '.join(sorted(known))}")
        if category is not None:
            try:
                c.parse_category(category)
            except ComplaintError as e:
                raise _field_problem("category", str(e)) from None
        if received_from and received_to and received_to < received_from:
            raise _field_problem("received_to", "received_to is before received_from")
        department = principal.department if principal.roles == {Role.DEPARTMENT} else None
        rows, total = await views.list_complaints(request.app.state.pool, views.ComplaintFilter(
            jurisdictions=principal.jurisdictions, department=department, statuses=tuple(status),
            category=category, within=community, received_from=received_from, received_to=received_to,
            limit=limit, offset=offset,
        ))
        return ComplaintPage(items=[row_out(r) for r in rows], total=total, limit=limit, offset=offset)

    @router.get("/{complaint_id}", response_model=ComplaintOut)
    async def get_complaint(complaint_id: str = Path(max_length=64),
                            principal: Principal = Depends(require(*READERS)),
                            svc: ComplaintService = Depends(service)):
        return complaint_out(await svc.get(complaint_id, principal))

    @router.post("/{complaint_id}/route", response_model=ComplaintOut)
    async def route_complaint(body: RoutingIn | None = None, complaint_id: str = Path(max_length=64),
                              principal: Principal = Depends(require(*DISPATCHERS)),
                              svc: ComplaintService = Depends(service)):
        """Route by the body's rule; without a body, by the default of the complaint's category."""
        if body is None:
            return complaint_out(await svc.route(complaint_id, None, principal))
        try:
            routing = routing_from_data(body.model_dump(exclude_unset=True))
        except InvalidRouting as e:
            raise ComplaintError("complaint.invalid_routing", str(e),
                                 errors=[{"pointer": f"#/{e.member}" if e.member else "#", "detail": str(e)}]) from None
        return complaint_out(await svc.route(complaint_id, routing, principal))

    @router.post("/{complaint_id}/response", response_model=ComplaintOut)
    async def respond(body: ResponseIn, complaint_id: str = Path(max_length=64),
                      principal: Principal = Depends(require(*HANDLERS)),
                      svc: ComplaintService = Depends(service)):
        return complaint_out(await svc.respond(complaint_id, body.by, principal))

    @router.post("/{complaint_id}/answer", response_model=ComplaintOut)
    async def answer(body: AnswerIn, complaint_id: str = Path(max_length=64),
                     principal: Principal = Depends(require(*HANDLERS)),
                     svc: ComplaintService = Depends(service)):
        return complaint_out(await svc.answer(complaint_id, body.answer, resolved=body.resolved, by=body.by,
                                              principal=principal))

    @router.post("/{complaint_id}/close", response_model=ComplaintOut)
    async def close(complaint_id: str = Path(max_length=64),
                    principal: Principal = Depends(require(*DISPATCHERS)),
                    svc: ComplaintService = Depends(service)):
        return complaint_out(await svc.close(complaint_id, principal))

    @router.post("/{complaint_id}/rating", response_model=ComplaintOut)
    async def rate(body: RatingIn, complaint_id: str = Path(max_length=64),
                   principal: Principal = Depends(require(*RATING_RECORDERS)),
                   svc: ComplaintService = Depends(service)):
        return complaint_out(await svc.rate(complaint_id, c.parse_rating(body.rating), principal=principal))

    return router


def _channel_for(principal: Principal, asked: str) -> Channel:
    channel = c.parse_channel(asked)
    if principal.has_any(Role.WINDOW_CLERK) and channel in CLERK_CHANNELS:
        return channel
    if principal.has_any(Role.GRID_WORKER) and channel is Channel.GRID_WORKER:
        return channel
    raise ComplaintError("complaint.unknown_channel_for_role",
                         f"channel {channel.value!r} is not one you file by: clerks file window, phone or web; "
                         "grid workers grid_worker; open311 comes through the Open311 endpoint")


def _location(body: LocationIn) -> Location:
    if (body.lat is None) != (body.long is None):
        raise ComplaintError("complaint.invalid_location", "lat and long must both be given")
    point = GeoPoint(body.lat, body.long) if body.lat is not None and body.long is not None else None
    return Location(address=body.address, address_id=body.address_id, point=point)


# ---------------------------------------------------------------------------- Open311


# What Open311 shows of a complaint that did not come through Open311: its resident did not
# publish it, so its words, place and picture stay inside (they may name or locate people).
_PRIVATE_ANSWER_NOTE = "已答复 Answered"


def service_request_of(row: dict[str, Any], services: dict[str, Service]) -> ServiceRequest:
    published = row["channel"] == Channel.OPEN311.value
    service = services.get(row["service_code"])
    departments = row["departments"]
    agency = ", ".join(departments) if departments else (STREET if row["routing_kind"] else None)
    return ServiceRequest(
        service_request_id=row["id"],
        status="closed" if row["status"] in (State.CLOSED.value, State.RATED.value) else "open",
        status_notes=(row["answer"] if published else _PRIVATE_ANSWER_NOTE if row["answer"] else None),
        service_code=row["service_code"],
        service_name=service.service_name if service else row["service_code"],
        description=(row["description"] or None) if published else None,
        agency_responsible=agency,
        service_notice=feedback_notice(row["feedback_due_at"]),
        requested_datetime=row["received_at"],
        updated_datetime=row["updated_at"],
        expected_datetime=row["feedback_due_at"],
        address=row["address"] if published else None,
        address_id=row["address_id"] if published else None,
        lat=row["lat"] if published else None,
        long=row["long"] if published else None,
        media_url=row["media_url"] if published else None,
    )


class _EventRow:
    """A complaint_event_view row as mapping.updates_from_events reads events."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.id, self.type, self.data = row["event_id"], row["type"], row["data"]


# Every complaint event but the rating (the resident's own act) is an update for Open311.
_UPDATE_TYPES = tuple(t for t in c.EVENT_TYPES if t != c.RATED)


class Open311Complaints:
    """The Open311Port of intake: complaints filed and shown through GeoReport v2."""

    def __init__(self, complaints: Callable[[], ComplaintService], pool: Callable[[], asyncpg.Pool],
                 jurisdiction: str) -> None:
        # Resolved per call: the app's lifespan creates the service after the routes exist.
        self._complaints, self._pool = complaints, pool
        self.jurisdiction = jurisdiction
        self._services = {s.service_code: s for s in COMPLAINT_SERVICES}

    async def services(self) -> Sequence[Service]:
        return COMPLAINT_SERVICES

    async def create(self, request: NewServiceRequest) -> CreatedRequest:
        intake = complaint_intake(request)
        # Filed anonymously whatever contact the app sent: an email or phone from an app is
        # no verified identity, and personal data is not kept unverified. The district's
        # 12345 centre handles it until it is routed (a point is not yet mapped to a street).
        complaint = await self._complaints().file(NewComplaint(
            category=intake.category, channel=Channel.OPEN311, urgency=intake.urgency,
            jurisdiction=self.jurisdiction, location=intake.location, description=intake.description,
            anonymous=True, open311_service_code=intake.service_code, media_url=intake.media_url,
        ))
        assert complaint.feedback_due_at is not None
        return CreatedRequest(service_request_id=complaint.id,
                              service_notice=feedback_notice(complaint.feedback_due_at))

    async def requests(self, query: RequestQuery) -> Sequence[ServiceRequest]:
        pool = self._pool()
        if query.service_request_ids:
            rows = await views.complaint_rows(pool, query.service_request_ids)
        else:
            wanted = set(query.statuses)
            closed = None if len(wanted) != 1 else wanted == {"closed"}
            rows = await views.complaints_received_between(
                pool, query.start, query.end, service_codes=query.service_codes, closed=closed, limit=query.limit)
        return [service_request_of(r, self._services) for r in rows]

    async def request(self, service_request_id: str) -> ServiceRequest | None:
        rows = await views.complaint_rows(self._pool(), [service_request_id])
        return service_request_of(rows[0], self._services) if rows else None

    async def token(self, token: str) -> TokenResult | None:
        row = await views.complaint_by_token(self._pool(), token)
        return TokenResult(token, row["id"]) if row else None

    async def post_update(self, update: NewRequestUpdate) -> str | None:
        """A resident's update through an Open311 app: their rating of the closed request (a bad
        one reopens it, as a rating at the window does). Only requests that came through Open311
        are rated here; the update_id answered is the rating event's id."""
        svc = self._complaints()
        try:
            complaint = await svc.get(update.service_request_id)
        except ComplaintNotFound:
            return None
        if complaint.channel is not Channel.OPEN311:
            return None  # filed at the window, by phone...: its resident rates it there
        # The app's update_id makes a resend safe: the same update gets the same answer.
        causation = f"open311-update:{update.client_update_id}"
        if (done := await self._rating_caused_by(svc, update.service_request_id, causation)) is not None:
            return done
        await svc.rate(update.service_request_id, c.parse_rating(update.rating), causation_id=causation)
        return await self._rating_caused_by(svc, update.service_request_id, causation)

    @staticmethod
    async def _rating_caused_by(svc: ComplaintService, complaint_id: str, causation: str) -> str | None:
        rated = [e for e in await svc.history(complaint_id)
                 if e.type == c.RATED and e.metadata.get("causation_id") == causation]
        return str(rated[-1].id) if rated else None

    async def updates(self, query: UpdatesQuery) -> Sequence[RequestUpdate]:
        rows = await views.complaint_events_between(self._pool(), query.start, query.end, types=_UPDATE_TYPES,
                                                    limit=query.limit)
        updates = []
        for row in rows:
            for update in updates_from_events(row["complaint_id"], [_EventRow(row)]):
                if row["channel"] != Channel.OPEN311.value:
                    # The answer's words stay inside for complaints their residents did not publish.
                    update = replace(update, media_url=None,
                                     description=_PRIVATE_ANSWER_NOTE if row["type"] == c.ANSWERED
                                     else update.description)
                updates.append(update)
        return updates


def open311_jurisdiction(settings: IntakeSettings) -> Jurisdiction:
    return Jurisdiction(settings.district, aliases=tuple(settings.open311_jurisdiction_aliases),
                        api_keys=frozenset(settings.open311_api_keys))


def open311_discovery(settings: IntakeSettings) -> Discovery:
    return Discovery(
        changeset=settings.open311_changeset,
        contact=settings.open311_contact,
        key_service=settings.open311_key_service,
        endpoints=(Endpoint(url=settings.open311_public_url, changeset=settings.open311_changeset),),
    )


def complaints_open311_router(app: FastAPI, settings: IntakeSettings) -> APIRouter:
    port = Open311Complaints(lambda: app.state.complaints, lambda: app.state.pool, settings.district)
    return open311_router(port, jurisdiction=open311_jurisdiction(settings), discovery=open311_discovery(settings))
