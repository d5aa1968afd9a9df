"""Complaints and requests (投诉与诉求): what residents report at the window, on the 12345
hotline, online, through Open311 apps or through their grid worker. Pure: no I/O.

The life of a complaint:

    received ──route──▶ routed ──respond──▶ responded ──answer──▶ answered ──close──▶ closed ──rate──▶ rated
                                                                     ▲                                  │
                                                                     └──── reopened ◀── bad review ─────┘
                                                                           (once only)

- **received**: category, channel, location, jurisdiction, urgency; the feedback deadline is
  fixed here from the urgency (see `feedback_due`).
- **routed**: by the three rules of `civicgrid_intake.domain.routing` (the street handles it; a
  department, the street assisting; a lead department with co-departments).
- **responded**: the first feedback to the resident. Records the response time and whether
  it came within the feedback deadline: the fact behind the response rate (响应率).
- **answered**: the answer, and whether the matter was resolved: the resolution rate (解决率).
- **closed**, then **rated** on the five levels of the national good/bad review scheme: the
  satisfaction rate (满意率). A bad review (dissatisfied, very dissatisfied) reopens handling
  once, with a new feedback deadline; the second answer is closed and rated again, and that
  second rating is final.

Every command takes the instant it happened (`at`, timezone-aware): the domain has no clock.
An illegal command raises `ComplaintError` with a stable `code` and emits nothing.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any, Mapping, Protocol

from civicgrid_common.aggregate import Aggregate, applies
from civicgrid_common.calendar import CHINA_TZ
from civicgrid_common.problems import Refusal, RuleViolation

from civicgrid_intake.domain.routing import (
    DepartmentHandles, InvalidRouting, Routing, StreetHandles, routing_from_data, routing_to_data,
)
from civicgrid_intake.domain.rating import RatingLevel

EVENT_PREFIX = "civicgrid.intake.complaint"
RECEIVED = f"{EVENT_PREFIX}.received.v1"
ROUTED = f"{EVENT_PREFIX}.routed.v1"
RESPONDED = f"{EVENT_PREFIX}.responded.v1"
ANSWERED = f"{EVENT_PREFIX}.answered.v1"
CLOSED = f"{EVENT_PREFIX}.closed.v1"
RATED = f"{EVENT_PREFIX}.rated.v1"
REOPENED = f"{EVENT_PREFIX}.reopened.v1"
EVENT_TYPES: tuple[str, ...] = (RECEIVED, ROUTED, RESPONDED, ANSWERED, CLOSED, RATED, REOPENED)

# Open311 limits a description to 4,000 characters; we use the same bound for every channel.
MAX_TEXT = 4000
MAX_ADDRESS = 500
# Rough bounding box of China (incl. the South China Sea islands): a point outside it is
# surely a swapped lat/long or a typo, not a complaint in our district.
CHINA_LAT = (3.8, 53.6)
CHINA_LON = (73.4, 135.1)

_JURISDICTION = re.compile(r"^(\d{6}|\d{9}|\d{12}|\d{15})$")
# A pseudonymous applicant id or complaint id: opaque, never an ID number or phone.
_OPAQUE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_DEPARTMENT_OR_STREET = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


# The request body member each refusal is about; a refusal about the complaint's state is a
# conflict (409), any other refusal of the input is invalid (422).
_FIELD_OF_CODE: dict[str, str] = {
    "complaint.unknown_category": "category",
    "complaint.unknown_channel": "channel",
    "complaint.unknown_urgency": "urgency",
    "complaint.unknown_rating": "rating",
    "complaint.invalid_location": "location",
    "complaint.location_required": "location",
    "complaint.location_outside_china": "location",
    "complaint.description_too_long": "description",
    "complaint.answer_required": "answer",
    "complaint.answer_too_long": "answer",
    "complaint.invalid_answer": "resolved",
    "complaint.invalid_routing": "routing",
    "complaint.invalid_unit": "by",
    "complaint.unit_not_routed": "by",
    "complaint.applicant_required": "applicant_id",
    "complaint.anonymous_with_applicant": "applicant_id",
    "complaint.unknown_applicant": "applicant_id",
    "complaint.invalid_media_url": "media_url",
    "complaint.invalid_jurisdiction": "jurisdiction",
    "complaint.unknown_channel_for_role": "channel",
}
_CONFLICT_CODES = frozenset({"complaint.illegal_transition", "complaint.time_goes_backwards"})
# A caller who may see the complaint but may not act so: a department speaking for another.
_FORBIDDEN_CODES = frozenset({"complaint.not_own_unit"})


class ComplaintError(RuleViolation):
    """A command the rules refuse. `code` is stable (for API error bodies and tests)."""

    def __init__(self, code: str, message: str, *, field: str | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        refusal = (Refusal.CONFLICT if code in _CONFLICT_CODES else Refusal.FORBIDDEN if code in _FORBIDDEN_CODES
                   else Refusal.INVALID)
        super().__init__(code, message, refusal=refusal, field=field or _FIELD_OF_CODE.get(code), errors=errors)


class Category(str, enum.Enum):
    URBAN_CONSTRUCTION = "urban_construction"  # 城市建设
    PLANNING = "planning"  # 规划
    MUNICIPAL_WORKS = "municipal_works"  # 市政
    ENVIRONMENTAL_PROTECTION = "environmental_protection"  # 环保
    HOUSING_MANAGEMENT = "housing_management"  # 房管
    EPIDEMIC_PREVENTION = "epidemic_prevention"  # 防疫
    PUBLIC_ORDER = "public_order"  # 治安
    OTHER = "other"


# Who handles a complaint of each category unless the centre routes it otherwise (默认派单): the
# district department whose duties the category falls under, the street for what is nobody
# else's. Department codes are the catalogue's.
DEFAULT_ROUTING: Mapping[Category, Routing] = MappingProxyType({
    Category.URBAN_CONSTRUCTION: DepartmentHandles("urban_management"),        # 城管: construction sites, illegal building
    Category.PLANNING: DepartmentHandles("planning_construction"),             # 规划建设局
    Category.MUNICIPAL_WORKS: DepartmentHandles("urban_management"),           # roads, manholes, street lights (市政设施)
    Category.ENVIRONMENTAL_PROTECTION: DepartmentHandles("environmental_protection"),  # 生态环境局
    Category.HOUSING_MANAGEMENT: DepartmentHandles("housing"),                 # 房管局
    Category.EPIDEMIC_PREVENTION: DepartmentHandles("health"),                 # 卫健委 / 疾控
    Category.PUBLIC_ORDER: DepartmentHandles("public_security"),               # the street's police station
    Category.OTHER: StreetHandles(),                                           # the street's own acceptance centre
})


def default_routing(category: Category) -> Routing:
    return DEFAULT_ROUTING[category]


class Channel(str, enum.Enum):
    WINDOW = "window"  # at the acceptance centre's window
    PHONE = "phone"  # the 12345 hotline
    WEB = "web"
    OPEN311 = "open311"  # an Open311 GeoReport v2 app
    GRID_WORKER = "grid_worker"  # reported on a resident's behalf during patrol


class Urgency(str, enum.Enum):
    """How soon the resident must get feedback (docs/domain.md, "Complaints and requests")."""

    LIFE_OR_PROPERTY = "life_or_property"  # threat to life or property: 2 hours
    UTILITIES = "utilities"  # water, power, gas, heating: 24 hours
    GENERAL = "general"  # 7 working days
    COMPLEX = "complex"  # 15 working days


# Hours are clock hours: an emergency does not wait for Monday. Days are *working* days on
# China's official calendar, as for statutory time limits and the 12345 hotlines' rules
# ("N 个工作日内"): a request filed before a Golden Week is not overdue during the holiday.
FEEDBACK_HOURS: Mapping[Urgency, int] = {Urgency.LIFE_OR_PROPERTY: 2, Urgency.UTILITIES: 24}
FEEDBACK_WORKING_DAYS: Mapping[Urgency, int] = {Urgency.GENERAL: 7, Urgency.COMPLEX: 15}


class State(str, enum.Enum):
    RECEIVED = "received"
    ROUTED = "routed"
    RESPONDED = "responded"
    ANSWERED = "answered"
    CLOSED = "closed"
    RATED = "rated"
    REOPENED = "reopened"


# The five levels of the national good/bad review scheme (好差评), the same for cases and complaints.
Rating = RatingLevel


class WorkingDays(Protocol):
    """What the deadlines need of a calendar (civicgrid_common.calendar.WorkingCalendar)."""

    def add_working_days(self, instant: datetime, n: int) -> date: ...


def _parse_enum(enum_type: type[enum.Enum], value: Any, what: str) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        known = ", ".join(str(m.value) for m in enum_type)
        raise ComplaintError(f"complaint.unknown_{what}", f"unknown {what} {value!r}; expected one of {known}") from None


def parse_category(value: Any) -> Category:
    return _parse_enum(Category, value, "category")


def parse_channel(value: Any) -> Channel:
    return _parse_enum(Channel, value, "channel")


def parse_urgency(value: Any) -> Urgency:
    return _parse_enum(Urgency, value, "urgency")


def parse_rating(value: Any) -> Rating:
    return _parse_enum(Rating, value, "rating")


def _require_aware(at: datetime) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ComplaintError("complaint.naive_time", "times must be timezone-aware (e.g. 2026-03-02T09:30:00+08:00)")
    return at


def w3c(at: datetime) -> str:
    """An instant as the events and Open311 carry it: ISO 8601, seconds, China offset."""
    return at.astimezone(CHINA_TZ).isoformat(timespec="seconds")


def feedback_due(urgency: Urgency, received_at: datetime, calendar: WorkingDays) -> datetime:
    """The latest instant feedback is on time: received + hours, or the end of the N-th working day."""
    _require_aware(received_at)
    if urgency in FEEDBACK_HOURS:
        return (received_at + timedelta(hours=FEEDBACK_HOURS[urgency])).astimezone(CHINA_TZ)
    due_day = calendar.add_working_days(received_at, FEEDBACK_WORKING_DAYS[urgency])
    return datetime.combine(due_day, time(23, 59, 59), tzinfo=CHINA_TZ)


# ---------------------------------------------------------------------------- location


@dataclass(frozen=True)
class GeoPoint:
    """A WGS84 point (what GPS and Open311's lat/long give; not China's GCJ-02 map offsets)."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        for name, value, bound in (("latitude", self.lat, 90.0), ("longitude", self.lon, 180.0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise ComplaintError("complaint.invalid_location", f"{name} must be a number, got {value!r}")
            if not -bound <= value <= bound:
                raise ComplaintError("complaint.invalid_location", f"{name} {value} is outside -{bound}..{bound}")
        if not (CHINA_LAT[0] <= self.lat <= CHINA_LAT[1] and CHINA_LON[0] <= self.lon <= CHINA_LON[1]):
            raise ComplaintError(
                "complaint.location_outside_china",
                f"({self.lat}, {self.lon}) is not in China; are latitude and longitude swapped?",
            )


@dataclass(frozen=True)
class Location:
    """Where: an address as told, an address id of the address register, and/or a point."""

    address: str | None = None
    address_id: str | None = None
    point: GeoPoint | None = None

    def __post_init__(self) -> None:
        for name, value in (("address", self.address), ("address id", self.address_id)):
            if value is not None and (not value.strip() or len(value) > MAX_ADDRESS):
                raise ComplaintError(
                    "complaint.invalid_location", f"{name} must be 1 to {MAX_ADDRESS} characters when given"
                )
        if self.address is None and self.address_id is None and self.point is None:
            raise ComplaintError("complaint.location_required", "a complaint needs an address or a point")

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.address is not None:
            data["address"] = self.address
        if self.address_id is not None:
            data["address_id"] = self.address_id
        if self.point is not None:
            data["lat"] = self.point.lat
            data["lon"] = self.point.lon
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Location":
        point = GeoPoint(data["lat"], data["lon"]) if "lat" in data else None
        return cls(address=data.get("address"), address_id=data.get("address_id"), point=point)


# ---------------------------------------------------------------------------- the aggregate


def _text(value: str | None, what: str, *, required: bool) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ComplaintError(f"complaint.{what}_required", f"the {what} must not be empty")
    if len(text) > MAX_TEXT:
        raise ComplaintError(f"complaint.{what}_too_long", f"the {what} has {len(text)} characters; at most {MAX_TEXT}")
    return text


class Complaint(Aggregate):
    stream_type = "complaint"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.state: State | None = None
        self.category: Category | None = None
        self.channel: Channel | None = None
        self.urgency: Urgency | None = None
        self.jurisdiction = ""
        self.location: Location | None = None
        self.description = ""
        self.anonymous = False
        self.applicant_id: str | None = None
        self.open311_service_code: str | None = None
        self.media_url: str | None = None
        self.routing: Routing | None = None
        self.received_at: datetime | None = None
        self.updated_at: datetime | None = None
        self.feedback_due_at: datetime | None = None
        self.responded_at: datetime | None = None
        self.answer: str | None = None
        self.resolved: bool | None = None
        self.closed_at: datetime | None = None
        self.ratings: list[Rating] = []
        # 1 for the first handling; 2 after a bad review reopened it.
        self.round = 1
        # When the current round's handling started: received, or reopened.
        self._round_started_at: datetime | None = None

    # ------------------------------------------------------------------ commands

    @classmethod
    def receive(
        cls,
        complaint_id: str,
        *,
        category: Category,
        channel: Channel,
        urgency: Urgency,
        jurisdiction: str,
        location: Location,
        description: str,
        at: datetime,
        calendar: WorkingDays,
        anonymous: bool = False,
        applicant_id: str | None = None,
        open311_service_code: str | None = None,
        media_url: str | None = None,
    ) -> "Complaint":
        """A complaint comes in. Anonymous ones carry no applicant; named ones a pseudonymous id."""
        if not isinstance(complaint_id, str) or not _OPAQUE_ID.match(complaint_id):
            raise ComplaintError("complaint.invalid_id", f"{complaint_id!r} is not a complaint id")
        if not isinstance(jurisdiction, str) or not _JURISDICTION.match(jurisdiction):
            raise ComplaintError(
                "complaint.invalid_jurisdiction",
                f"jurisdiction {jurisdiction!r} must be a district, street, community or grid code (6/9/12/15 digits)",
            )
        if anonymous and applicant_id is not None:
            raise ComplaintError("complaint.anonymous_with_applicant", "an anonymous complaint names no applicant")
        if not anonymous and (applicant_id is None or not _OPAQUE_ID.match(applicant_id)):
            raise ComplaintError(
                "complaint.applicant_required", "a named complaint needs the applicant's pseudonymous id"
            )
        if media_url is not None and not re.match(r"^https?://\S{1,2000}$", media_url):
            raise ComplaintError("complaint.invalid_media_url", "media_url must be an http(s) URL")
        if not isinstance(location, Location):
            raise ComplaintError("complaint.location_required", "a complaint needs a location")
        category, channel, urgency = parse_category(category), parse_channel(channel), parse_urgency(urgency)
        text = _text(description, "description", required=False)
        _require_aware(at)
        data: dict[str, Any] = {
            "complaint_id": complaint_id,
            "category": category.value,
            "channel": channel.value,
            "urgency": urgency.value,
            "jurisdiction": jurisdiction,
            "location": location.to_data(),
            "description": text,
            "anonymous": anonymous,
            "received_at": w3c(at),
            "feedback_due_at": w3c(feedback_due(urgency, at, calendar)),
        }
        if applicant_id is not None:
            data["applicant_id"] = applicant_id
        if open311_service_code is not None:
            data["open311_service_code"] = open311_service_code
        if media_url is not None:
            data["media_url"] = media_url
        complaint = cls(complaint_id)
        complaint._emit(RECEIVED, data)
        return complaint

    def route(self, routing: Routing | None, *, at: datetime) -> None:
        """Send it to whoever handles it, by the three routing rules; None: the category's
        default (DEFAULT_ROUTING)."""
        self._expect("route", State.RECEIVED)
        if routing is None:
            assert self.category is not None
            routing = default_routing(self.category)
        try:
            data = routing_to_data(routing)
            routing_from_data(data)  # the same check the catalogue's routings pass
        except (InvalidRouting, AttributeError) as e:
            raise ComplaintError("complaint.invalid_routing", str(e)) from None
        self._emit(ROUTED, {"routing": data, "routed_at": self._at(at)})

    def respond(self, *, at: datetime, by: str) -> None:
        """The first feedback to the resident (`by`: "street" or the department's code)."""
        self._expect("respond", State.ROUTED)
        if not isinstance(by, str) or not _DEPARTMENT_OR_STREET.match(by):
            raise ComplaintError("complaint.invalid_unit", f"{by!r} is not 'street' or a department code")
        stamp = self._at(at)
        assert self.received_at is not None and self.feedback_due_at is not None
        self._emit(
            RESPONDED,
            {
                "responded_at": stamp,
                "by": by,
                "response_seconds": int((at - self.received_at).total_seconds()),
                "feedback_due_at": w3c(self.feedback_due_at),
                "on_time": at <= self.feedback_due_at,
            },
        )

    def give_answer(self, answer: str, *, resolved: bool, at: datetime) -> None:
        """The answer to the resident: what was done, and whether the matter is resolved."""
        self._expect("answer", State.RESPONDED, State.REOPENED)
        if not isinstance(resolved, bool):
            raise ComplaintError("complaint.invalid_answer", "resolved must be true or false")
        text = _text(answer, "answer", required=True)
        stamp = self._at(at)
        assert self._round_started_at is not None and self.feedback_due_at is not None
        self._emit(
            ANSWERED,
            {
                "answered_at": stamp,
                "answer": text,
                "resolved": resolved,
                "round": self.round,
                "handling_seconds": int((at - self._round_started_at).total_seconds()),
                "feedback_due_at": w3c(self.feedback_due_at),
                "on_time": at <= self.feedback_due_at,
            },
        )

    def close(self, *, at: datetime) -> None:
        self._expect("close", State.ANSWERED)
        assert self.resolved is not None
        self._emit(CLOSED, {"closed_at": self._at(at), "round": self.round, "resolved": self.resolved})

    def rate(self, rating: Rating, *, at: datetime, calendar: WorkingDays, causation_id: str | None = None) -> None:
        """The resident's rating. A bad review in the first round reopens handling once.
        `causation_id` (metadata, not the fact): what brought the rating, e.g. an Open311 app's update."""
        self._expect("rate", State.CLOSED)
        rating = parse_rating(rating)
        stamp = self._at(at)
        reopens = rating.is_bad_review and self.round == 1
        self._emit(
            RATED,
            {
                "rated_at": stamp,
                "rating": rating.value,
                "satisfied": not rating.is_bad_review,
                "round": self.round,
                "final": not reopens,
            },
            {"causation_id": causation_id} if causation_id else None,
        )
        if reopens:
            assert self.urgency is not None
            self._emit(
                REOPENED,
                {
                    "reopened_at": stamp,
                    "reason": "bad_review",
                    "round": 2,
                    "feedback_due_at": w3c(feedback_due(self.urgency, at, calendar)),
                },
            )

    # ------------------------------------------------------------------ helpers

    def _expect(self, command: str, *states: State) -> None:
        if self.state not in states:
            allowed = " or ".join(s.value for s in states)
            current = self.state.value if self.state else "nothing"
            raise ComplaintError(
                "complaint.illegal_transition",
                f"cannot {command} complaint {self.id}: it is {current}, it must be {allowed}",
            )

    def _at(self, at: datetime) -> str:
        """Check a command's instant: aware, and not before the complaint's last change."""
        _require_aware(at)
        if self.updated_at is not None and at < self.updated_at:
            raise ComplaintError(
                "complaint.time_goes_backwards",
                f"{w3c(at)} is before the complaint's last change at {w3c(self.updated_at)}",
            )
        return w3c(at)

    @property
    def open311_status(self) -> str:
        """GeoReport v2 knows two statuses: open (reported) and closed (resolved)."""
        return "closed" if self.state in (State.CLOSED, State.RATED) else "open"

    @property
    def final_rating(self) -> Rating | None:
        return self.ratings[-1] if self.state is State.RATED else None

    # ------------------------------------------------------------------ state

    @applies(RECEIVED)
    def _received(self, d: Mapping[str, Any]) -> None:
        self.state = State.RECEIVED
        self.category = Category(d["category"])
        self.channel = Channel(d["channel"])
        self.urgency = Urgency(d["urgency"])
        self.jurisdiction = d["jurisdiction"]
        self.location = Location.from_data(d["location"])
        self.description = d["description"]
        self.anonymous = d["anonymous"]
        self.applicant_id = d.get("applicant_id")
        self.open311_service_code = d.get("open311_service_code")
        self.media_url = d.get("media_url")
        self.received_at = self._round_started_at = self.updated_at = _instant(d["received_at"])
        self.feedback_due_at = _instant(d["feedback_due_at"])

    @applies(ROUTED)
    def _routed(self, d: Mapping[str, Any]) -> None:
        self.state = State.ROUTED
        self.routing = routing_from_data(d["routing"])
        self.updated_at = _instant(d["routed_at"])

    @applies(RESPONDED)
    def _responded(self, d: Mapping[str, Any]) -> None:
        self.state = State.RESPONDED
        self.responded_at = self.updated_at = _instant(d["responded_at"])

    @applies(ANSWERED)
    def _answered(self, d: Mapping[str, Any]) -> None:
        self.state = State.ANSWERED
        self.answer = d["answer"]
        self.resolved = d["resolved"]
        self.updated_at = _instant(d["answered_at"])

    @applies(CLOSED)
    def _closed(self, d: Mapping[str, Any]) -> None:
        self.state = State.CLOSED
        self.closed_at = self.updated_at = _instant(d["closed_at"])

    @applies(RATED)
    def _rated(self, d: Mapping[str, Any]) -> None:
        self.state = State.RATED
        self.ratings.append(Rating(d["rating"]))
        self.updated_at = _instant(d["rated_at"])

    @applies(REOPENED)
    def _reopened(self, d: Mapping[str, Any]) -> None:
        self.state = State.REOPENED
        self.round = d["round"]
        self.closed_at = None
        self._round_started_at = self.updated_at = _instant(d["reopened_at"])
        self.feedback_due_at = _instant(d["feedback_due_at"])

def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)
