"""Request and response bodies of notifications' API. Every member is bounded; the rule book's
domain checks what a schema cannot (a role, a jurisdiction code, a template that renders)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from civicgrid_common.web.models import Flag, RequestBody, StrictInt

Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.-]{0,63}$")]
EventType = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^civicgrid\.[a-z_]+(\.[a-z_]+){1,6}\.v[0-9]{1,3}$")]
DottedField = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z_][a-z0-9_]{0,39}(\.[a-z_][a-z0-9_]{0,39}){0,4}$")]
Code = Annotated[str, Field(pattern=r"^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$")]
Scalar = Annotated[str, Field(max_length=200)] | Annotated[StrictInt, Field(ge=-10**15, le=10**15)] | Flag | None
Line = Annotated[str, Field(max_length=400)]
Text = Annotated[str, Field(max_length=40000)]
ChannelName = Literal["in_app", "email", "sms", "wechat", "webhook"]


class ConditionIn(RequestBody):
    field: DottedField
    op: Literal["equals", "not_equals", "in", "present", "absent"]
    value: Scalar | Annotated[list[Scalar], Field(max_length=50)] = None


class RecipientIn(RequestBody):
    kind: Literal["applicant", "role", "grid_workers", "department", "user"]
    role: Annotated[str, Field(max_length=40)] | None = None
    jurisdiction: Code | None = None
    jurisdiction_field: DottedField | None = None
    grid_field: DottedField | None = None
    department: Slug | None = None
    department_field: DottedField | None = None
    subject: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class RuleIn(RequestBody):
    event_type: EventType
    conditions: Annotated[list[ConditionIn], Field(max_length=10)] = []
    recipients: Annotated[list[RecipientIn], Field(min_length=1, max_length=10)]
    channels: Annotated[list[ChannelName], Field(min_length=1, max_length=5)]
    template: Slug
    urgent: Flag = False
    digest: Flag = False
    enabled: Flag = True
    description: Annotated[str, Field(max_length=500)] | None = None


class InAppIn(RequestBody):
    title: Line
    body: Annotated[str, Field(max_length=4000)]
    link: Line | None = None


class EmailIn(RequestBody):
    subject: Line
    text: Text
    html: Annotated[str, Field(max_length=100000)]


Params = Annotated[dict[Annotated[str, Field(max_length=40)], Line], Field(max_length=20)]


class SmsIn(RequestBody):
    sign_name: Annotated[str, Field(max_length=40)]
    template_code: Annotated[str, Field(max_length=40)]
    params: Params = {}
    preview: Annotated[str, Field(max_length=1000)] | None = None


class WechatIn(RequestBody):
    template_id: Annotated[str, Field(max_length=64)]
    page: Line | None = None
    data: Params = {}


class VariantIn(RequestBody):
    in_app: InAppIn | None = None
    email: EmailIn | None = None
    sms: SmsIn | None = None
    wechat: WechatIn | None = None
    webhook: Annotated[dict[Annotated[str, Field(max_length=40)], Line], Field(max_length=0)] | None = None


class TemplateIn(RequestBody):
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=10,
                                                  description="the events it is rendered for: tested on their samples")]
    variants: Annotated[dict[Literal["zh-CN", "en"], VariantIn], Field(min_length=1, max_length=2)]


class EndpointIn(RequestBody):
    url: Annotated[str, Field(min_length=1, max_length=2000)]
    allow_private: Flag = Field(False, description="the district admin's allow-list: a loopback or private address")


class RotateIn(RequestBody):
    grace_hours: Annotated[StrictInt, Field(ge=0, le=720)] = 24


# ---------------------------------------------------------------------------------- answers

class RuleOut(BaseModel):
    id: str
    version: int
    rule: dict[str, Any]


class RuleSetOut(RuleOut):
    changed: bool


class TemplateOut(BaseModel):
    name: str
    version: int
    template: dict[str, Any]
    changed: bool = False


class RuleBookOut(BaseModel):
    district: str
    version: int
    rules: list[RuleOut]
    templates: list[TemplateOut]


class InboxItemOut(BaseModel):
    id: int
    event_type: str
    urgent: bool
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


class InboxOut(BaseModel):
    items: list[InboxItemOut]
    unread: int
    next_before: int | None = Field(None, description="pass as `before` for the next page; null at the end")


class ReadOut(BaseModel):
    id: int
    read_at: datetime


class EndpointOut(BaseModel):
    department: str
    url: str
    allow_private: bool
    enabled: bool
    disabled_reason: str | None
    active_secrets: int
    unreadable_secrets: int = Field(0, description="active secrets that do not open under the service's key "
                                                   "(altered or sealed under another key): nothing is sent "
                                                   "until the secret is rotated")
    updated_by: str
    updated_at: datetime
    secret: str | None = Field(None, description="the new signing secret (whsec_…): shown once, when made")


class AttemptOut(BaseModel):
    attempt: int
    started_at: datetime
    outcome: str
    status_code: int | None
    latency_ms: float
    error: str | None


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    rule_id: str
    channel: str
    recipient: str
    urgent: bool
    status: str
    attempts: int
    next_attempt_at: datetime | None
    provider_id: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    history: list[AttemptOut] = []


class InAppPreferenceIn(RequestBody):
    delivery: Literal["immediate", "digest"] = Field(
        description="immediate: each item pushed on the live stream as it arrives; digest: the items of rules "
                    "marked digest gathered into one item per period (urgent ones always at once)")
    every_minutes: Literal[15, 30, 60, 120, 240, 480, 1440] = Field(
        60, description="a digest's period, aligned to midnight China time (60: on the hour)")


class PreferencesIn(RequestBody):
    in_app: InAppPreferenceIn


class InAppPreferenceOut(BaseModel):
    delivery: Literal["immediate", "digest"]
    every_minutes: int


class PreferencesOut(BaseModel):
    subject: str
    in_app: InAppPreferenceOut
    roles: list[str] = Field(description="the roles whose items a digest gathers (your token's when you last set these)")
    jurisdictions: list[str]
    digest_since: datetime | None = Field(description="the next digest gathers the items after this instant")
    next_digest_at: datetime | None
    version: int
    changed: bool | None = None
