"""Complaints ↔ Open311: one Open311 service per complaint category, an Open311 request
becomes a complaint (channel open311), a complaint is shown as an Open311 request, and its
events as FixMyStreet request updates."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Protocol

from civicgrid_intake.domain import complaint as c
from civicgrid_intake.domain.complaint import Category, Complaint, ComplaintError, GeoPoint, Location, Urgency
from civicgrid_intake.entrypoints.open311.model import (
    Attribute,
    AttributeValue,
    Datatype,
    Error,
    NewServiceRequest,
    Open311Failure,
    RequestUpdate,
    Service,
    ServiceRequest,
)

URGENCY_ATTRIBUTE = "urgency"


def feedback_notice(feedback_due_at: datetime | None) -> str | None:
    """The request's service_notice: when the resident hears back. The same words in the POST's
    answer and in every GET of the request, so a client that shows one shows the other."""
    if feedback_due_at is None:
        return None
    return f"将于 {c.w3c(feedback_due_at)} 前反馈 Feedback by {c.w3c(feedback_due_at)}"

_URGENCY = Attribute(
    code=URGENCY_ATTRIBUTE,
    datatype=Datatype.SINGLEVALUELIST,
    required=False,
    description="紧急程度 How urgent is it? (default: general)",
    order=1,
    datatype_description="危及生命财产安全 2 小时内反馈; 水电气暖 24 小时; 一般 7 个工作日; 复杂 15 个工作日",
    values=(
        AttributeValue(Urgency.LIFE_OR_PROPERTY.value, "危及生命财产安全 Threat to life or property"),
        AttributeValue(Urgency.UTILITIES.value, "停水停电停气停暖 Water, power, gas or heating"),
        AttributeValue(Urgency.GENERAL.value, "一般诉求 General"),
        AttributeValue(Urgency.COMPLEX.value, "复杂诉求 Complex"),
    ),
)


def _service(category: Category, name: str, description: str, group: str, keywords: tuple[str, ...]) -> Service:
    return Service(
        service_code=category.value, service_name=name, description=description, group=group,
        keywords=keywords, attributes=(_URGENCY,),
    )


# The service codes are the complaint categories, so a code needs no translation table.
COMPLAINT_SERVICES: tuple[Service, ...] = (
    _service(Category.URBAN_CONSTRUCTION, "城市建设 Urban construction",
             "违法建设、工地扰民、道路占掘 Illegal building, construction sites, road works", "城市管理",
             ("违建", "工地", "施工")),
    _service(Category.PLANNING, "规划 Planning", "规划与用地问题 Planning and land use", "城市管理", ("规划", "用地")),
    _service(Category.MUNICIPAL_WORKS, "市政设施 Municipal works",
             "道路、井盖、路灯、排水、供水供电供气供暖 Roads, manholes, street lights, drains, utilities", "市政",
             ("井盖", "路灯", "积水", "停水", "停电")),
    _service(Category.ENVIRONMENTAL_PROTECTION, "环境保护 Environment",
             "噪声、油烟、垃圾、污水 Noise, fumes, rubbish, sewage", "环境", ("噪声", "垃圾", "油烟")),
    _service(Category.HOUSING_MANAGEMENT, "房屋管理 Housing",
             "物业、危房、电梯 Property management, unsafe housing, lifts", "住房", ("物业", "危房", "电梯")),
    _service(Category.EPIDEMIC_PREVENTION, "卫生防疫 Epidemic prevention",
             "病媒生物、公共卫生 Pests, public health", "卫生", ("防疫", "蚊虫", "鼠患")),
    _service(Category.PUBLIC_ORDER, "社会治安 Public order", "治安隐患、矛盾纠纷 Safety hazards, disputes", "平安",
             ("治安", "纠纷")),
    _service(Category.OTHER, "其他 Other", "其他诉求 Anything else", "其他", ()),
)


def category_for(service_code: str) -> Category:
    try:
        return Category(service_code)
    except ValueError:
        return Category.OTHER


@dataclass(frozen=True)
class ComplaintIntake:
    """What the complaint aggregate needs from an Open311 request (no personal data)."""

    category: Category
    urgency: Urgency
    location: Location
    description: str
    service_code: str
    media_url: str | None
    anonymous: bool  # no email, phone or account: nobody to give a pseudonymous id to


def complaint_intake(request: NewServiceRequest) -> ComplaintIntake:
    """Map a validated request; domain refusals (e.g. a point outside China) become 400s."""
    try:
        urgency = c.parse_urgency(request.attributes.get(URGENCY_ATTRIBUTE, (Urgency.GENERAL.value,))[0])
        point = GeoPoint(request.lat, request.long) if request.lat is not None and request.long is not None else None
        location = Location(address=request.address_string, address_id=request.address_id, point=point)
    except ComplaintError as e:
        raise Open311Failure.of([Error(400, str(e))]) from None
    return ComplaintIntake(
        category=category_for(request.service_code),
        urgency=urgency,
        location=location,
        description=request.description or "",
        service_code=request.service_code,
        media_url=request.media_url,
        anonymous=not request.contact.identifies_someone,
    )


def _agency(complaint: Complaint) -> str | None:
    if complaint.routing is None:
        return None
    departments = complaint.routing.departments()
    return ", ".join(departments) if departments else "street"


def service_request_view(complaint: Complaint, services: Mapping[str, Service]) -> ServiceRequest:
    """A complaint as GET requests shows it; status open/closed from its state."""
    assert complaint.received_at is not None and complaint.updated_at is not None and complaint.location
    code = complaint.open311_service_code or (complaint.category.value if complaint.category else "other")
    service = services.get(code)
    point = complaint.location.point
    return ServiceRequest(
        service_request_id=complaint.id,
        status=complaint.open311_status,
        status_notes=complaint.answer,
        service_code=code,
        service_name=service.service_name if service else code,
        description=complaint.description or None,
        agency_responsible=_agency(complaint),
        service_notice=feedback_notice(complaint.feedback_due_at),
        requested_datetime=complaint.received_at,
        updated_datetime=complaint.updated_at,
        expected_datetime=complaint.feedback_due_at,
        address=complaint.location.address,
        address_id=complaint.location.address_id,
        lat=point.lat if point else None,
        long=point.lon if point else None,
        media_url=complaint.media_url,
    )


class EventWithId(Protocol):
    @property
    def id(self) -> Any: ...

    @property
    def type(self) -> str: ...

    @property
    def data(self) -> Mapping[str, Any]: ...


def _update_of(event: EventWithId) -> tuple[str, str, str] | None:
    """(status, when-field, description) in FixMyStreet's extended states, or None."""
    d = event.data
    if event.type == c.RECEIVED:
        return "open", "received_at", "已受理 Received"
    if event.type == c.ROUTED:
        return "investigating", "routed_at", "已派单 Passed to the responsible unit"
    if event.type == c.RESPONDED:
        return "in_progress", "responded_at", "已联系处理 Being handled"
    if event.type == c.ANSWERED:
        return "in_progress", "answered_at", d["answer"]
    if event.type == c.CLOSED:
        return ("fixed" if d["resolved"] else "no_further_action"), "closed_at", "已办结 Closed"
    if event.type == c.REOPENED:
        return "open", "reopened_at", "根据评价重新办理 Reopened after the rating"
    return None  # a rating is the resident's own act, not an update from the handlers


def updates_from_events(complaint_id: str, events: Iterable[EventWithId]) -> list[RequestUpdate]:
    updates = []
    for event in events:
        mapped = _update_of(event)
        if mapped is None:
            continue
        status, when, description = mapped
        updates.append(
            RequestUpdate(
                update_id=str(event.id),
                service_request_id=complaint_id,
                status=status,
                updated_datetime=datetime.fromisoformat(event.data[when]),
                description=description,
                media_url=event.data.get("media_url") if event.type == c.RECEIVED else None,
            )
        )
    return updates
