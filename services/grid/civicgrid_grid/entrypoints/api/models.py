"""grid's request and response bodies: every member bounded, unknown members refused."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field

from civicgrid_common.validation import TagAtMember
from civicgrid_common.web.models import Day, Flag, Instant, RequestBody, StrictInt

from civicgrid_grid.domain.disputes import Nature, Outcome, ReferredTo, Urgency
from civicgrid_grid.domain.registry import UnitType
from civicgrid_grid.domain.stability import FactorCategory

ClientId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
                                description="made on the phone (a UUID): the same write sent twice is recorded once")]
Subject = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^\S+$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Photos = Annotated[list[Sha256], Field(max_length=9, description="photos by their SHA-256 (upload them first)")]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
Lat = Annotated[float, Field(ge=-90, le=90, description="WGS84 latitude")]
Lon = Annotated[float, Field(ge=-180, le=180, description="WGS84 longitude")]
Coordinate = Annotated[list[Annotated[float, Field(ge=-180, le=180)]], Field(min_length=2, max_length=2)]
Ring = Annotated[list[Coordinate], Field(min_length=4, max_length=10_000)]


class PolygonIn(RequestBody):
    """A GeoJSON Polygon (RFC 7946, WGS84, [lon, lat]); the outer ring first, then holes."""

    type: Literal["Polygon"]
    coordinates: list[Ring] = Field(min_length=1, max_length=50)


class PointIn(RequestBody):
    type: Literal["Point"]
    coordinates: Coordinate


class LocationIn(RequestBody):
    lat: Lat
    lon: Lon


class BoundaryIn(RequestBody):
    polygon: PolygonIn


class GridIn(RequestBody):
    code: str = Field(pattern=r"^[0-9]{15}$", description="15 digits: the community's 12, then the grid's 3")
    kind: Literal["residential", "unit"]
    unit_type: UnitType | None = None
    name: str = Field(min_length=1, max_length=100)
    polygon: PolygonIn
    households: StrictInt = Field(ge=0, le=100_000)
    residents: StrictInt = Field(ge=0, le=1_000_000)
    responsible_party: str = Field(min_length=1, max_length=100)


class GridChangesIn(RequestBody):
    name: str | None = Field(None, min_length=1, max_length=100)
    households: StrictInt | None = Field(None, ge=0, le=100_000)
    residents: StrictInt | None = Field(None, ge=0, le=1_000_000)
    responsible_party: str | None = Field(None, min_length=1, max_length=100)
    reason: Reason


class RedrawIn(RequestBody):
    polygon: PolygonIn
    reason: Reason


class SplitIn(RequestBody):
    parts: list[GridIn] = Field(min_length=2, max_length=20)
    reason: Reason


class MergeIn(RequestBody):
    codes: list[Annotated[str, Field(pattern=r"^[0-9]{15}$")]] = Field(min_length=2, max_length=20)
    into: GridIn
    reason: Reason


class RetireIn(RequestBody):
    reason: Reason


class WorkersIn(RequestBody):
    workers: list[Subject] = Field(min_length=1, max_length=20, description="token subjects of the grid workers")
    lead: Subject


class BuildingIn(RequestBody):
    code: str = Field(pattern=r"^[0-9]{5}$", description="5 digits within the grid")
    name: str | None = Field(None, max_length=100)
    place: Annotated[Union[PointIn, PolygonIn], Field(discriminator="type"), TagAtMember("type")]


class ComponentIn(RequestBody):
    id: str = Field(pattern=r"^[0-9]{16}$", description="6 admin + 2 major + 2 minor + 6 serial")
    location: LocationIn


class ClassificationKeyIn(RequestBody):
    kind: Literal["part", "event"]
    major: str = Field(pattern=r"^[0-9]{2}$")
    minor: str = Field(pattern=r"^[0-9]{2}$")


class LimitIn(RequestBody):
    hours: StrictInt | None = Field(None, ge=1, le=720)
    working_hours: StrictInt | None = Field(None, ge=1, le=480)
    working_days: StrictInt | None = Field(None, ge=1, le=120)


class MinorClassIn(ClassificationKeyIn):
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)
    department: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")
    limit: LimitIn


class ClassRevisionIn(MinorClassIn):
    reason: Reason


class PatrolStartIn(RequestBody):
    id: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                    description="the patrol's id, a UUID made on the phone")
    client_id: ClientId


class TrackPointIn(RequestBody):
    lat: Lat
    lon: Lon
    at: Instant


class TrackIn(RequestBody):
    client_id: ClientId
    points: list[TrackPointIn] = Field(default_factory=list, max_length=2_000)


class DailyReportIn(RequestBody):
    date: Day
    all_safe: Flag
    incidents: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]] = Field(
        default_factory=list, max_length=50)
    patrol_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    client_id: ClientId


class IncidentReportIn(RequestBody):
    client_id: ClientId
    source: Literal["patrol", "video", "task_from_above"] = "patrol"
    source_ref: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,99}$")
    classification: ClassificationKeyIn
    location: LocationIn
    urgent: Flag = False
    description: Text
    observed_at: Instant | None = None
    component_id: str | None = Field(None, pattern=r"^[0-9]{16}$")
    photos: Photos = Field(default_factory=list)


class CreateIn(RequestBody):
    classification: ClassificationKeyIn | None = Field(None, description="the centre's correction, if any")
    urgent: Flag | None = None
    client_id: ClientId | None = None


class HandlerIn(RequestBody):
    kind: Literal["department", "street_squad"]
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")


class DispatchIn(RequestBody):
    handler: HandlerIn
    note: str | None = Field(None, max_length=2000)
    client_id: ClientId | None = None


class DeferIn(RequestBody):
    reason: Reason
    client_id: ClientId | None = None


class FeedbackIn(RequestBody):
    result: Text
    photos: Photos = Field(default_factory=list)
    client_id: ClientId | None = None


class VerifyIn(RequestBody):
    passed: Flag
    note: str | None = Field(None, max_length=2000)
    photos: Photos = Field(default_factory=list)
    client_id: ClientId | None = None


class EvaluateIn(RequestBody):
    level: Literal["good", "fair", "poor"]
    note: str | None = Field(None, max_length=2000)
    client_id: ClientId | None = None


class DisputeIn(RequestBody):
    client_id: ClientId
    nature: Nature
    urgency: Urgency
    summary: Text
    parties: StrictInt = Field(ge=2, le=10_000)


class MediateIn(RequestBody):
    mediator: Subject
    outcome: Outcome
    note: str | None = Field(None, max_length=2000)
    client_id: ClientId | None = None


class FollowUpIn(RequestBody):
    note: Text
    holding: Flag
    client_id: ClientId | None = None


class SettleIn(RequestBody):
    note: str | None = Field(None, max_length=2000)
    client_id: ClientId | None = None


class ReferIn(RequestBody):
    to: ReferredTo
    reason: Reason
    client_id: ClientId | None = None


class FactorIn(RequestBody):
    category: FactorCategory
    level: Literal["low", "medium", "high"]
    grid: str = Field(pattern=r"^[0-9]{15}$")
    summary: Reason


class SweepIn(RequestBody):
    factors: list[FactorIn] = Field(max_length=200, description="empty: nothing found this month")
    client_id: ClientId


class WorkIn(RequestBody):
    work_kind: Literal["signboard", "inspection", "survey", "training", "subscription", "other"]
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    client_id: ClientId


# ---------------------------------------------------------------------------- answers


class GridDefinedOut(BaseModel):
    code: str
    warnings: list[dict[str, Any]]


class GridOut(BaseModel):
    code: str
    community: str
    active: bool
    kind: str
    unit_type: str | None
    name: str
    households: int
    residents: int
    responsible_party: str
    polygon: dict[str, Any]
    revision: int
    workers: list[str] = Field(description="the lead first")
    retired_reason: str | None


class LocatedOut(BaseModel):
    grid: str
    community: str


class BuildingOut(BaseModel):
    id: str


class ComponentOut(BaseModel):
    id: str
    grid: str


class PatrolOut(BaseModel):
    id: str
    grid: str
    worker: str
    started_at: datetime | None
    ended_at: datetime | None
    points: int
    points_outside: int = Field(description="track points outside the grid (flagged, not refused)")
    recorded: bool = Field(description="false: this client id's write was recorded before")


class ReportOut(BaseModel):
    grid: str
    date: date
    all_safe: bool | None
    incidents: list[str]
    late: bool
    submitted_at: datetime | None
    missing_at: datetime | None
    recorded: bool


class DayGridOut(BaseModel):
    grid: str
    reported: bool
    all_safe: bool | None
    late: bool | None
    missing_at: datetime | None


class DayOut(BaseModel):
    jurisdiction: str
    date: date
    working_day: bool
    grids: int
    reported: int
    coverage: float | None
    missing: list[str]
    by_grid: list[DayGridOut]


class CheckOut(BaseModel):
    jurisdiction: str
    date: date
    checked_at: datetime = Field(description="the instant the check ran")
    flagged: list[str] = Field(description="the grids this run flagged (daily_report.missing); those reported or "
                                           "flagged before are not named again")


class IncidentWriteOut(BaseModel):
    id: str
    state: str
    grid: str
    version: int
    recorded: bool


class IncidentOut(BaseModel):
    id: str
    version: int
    state: str
    source: str | None
    grid: str
    urgent: bool
    classification: dict[str, Any] | None
    reported: dict[str, Any]
    handler: dict[str, str] | None
    reported_at: datetime | None
    created_at: datetime | None
    dispatched_at: datetime | None
    handling_due: datetime | None
    fed_back_at: datetime | None
    closed_at: datetime | None
    closed_on_time: bool | None
    deferred: bool
    deferral_reason: str | None
    rework_count: int
    evaluation: str | None
    deadlines: dict[str, datetime]
    overdue: list[str]


class IncidentRowOut(BaseModel):
    id: str
    version: int
    grid: str
    state: str
    source: str
    classification: str
    urgent: bool
    handler_kind: str | None
    handler_code: str | None
    reported_at: datetime
    dispatched_at: datetime | None
    handling_due: datetime | None
    closed_at: datetime | None
    closed_on_time: bool | None
    deferred: bool
    rework_count: int
    overdue: list[str]


class IncidentListOut(BaseModel):
    items: list[IncidentRowOut]
    limit: int
    offset: int


class DisputeWriteOut(BaseModel):
    id: str
    state: str
    grid: str
    recorded: bool


class DisputeOut(BaseModel):
    id: str
    state: str
    grid: str
    nature: str
    urgency: str
    mediations: list[dict[str, Any]]
    follow_ups: int
    referred_to: str | None
    filed_at: datetime | None


class SweepOut(BaseModel):
    community: str
    month: str
    factors: list[dict[str, Any]]


class RecordedOut(BaseModel):
    recorded: bool


class WorkOut(BaseModel):
    accepted: bool
    grant: str
    recorded: bool


class PhotoOut(BaseModel):
    sha256: str
    media_type: str
    width: int
    height: int
    size: int


class ClassOut(BaseModel):
    kind: str
    major: str
    minor: str
    code: str
    version: int
    name_zh: str
    name_en: str
    department: str
    limit: dict[str, int]


class ClassificationOut(BaseModel):
    district: str
    classes: list[ClassOut]
