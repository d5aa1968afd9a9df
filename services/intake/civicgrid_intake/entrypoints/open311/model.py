"""The GeoReport v2 wire model: plain data, field names exactly as the specification's."""
from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# Default and maximum span of GET requests (the specification's "Response Volume").
MAX_SPAN_DAYS = 90
MAX_RESULTS = 1000
MAX_DESCRIPTION = 4000

DEMO_API_KEY = "demo-open311-key"


class Format(str, enum.Enum):
    XML = "xml"
    JSON = "json"

    @property
    def media_type(self) -> str:
        return "text/xml; charset=utf-8" if self is Format.XML else "application/json; charset=utf-8"


class Datatype(str, enum.Enum):
    STRING = "string"
    NUMBER = "number"
    DATETIME = "datetime"
    TEXT = "text"
    SINGLEVALUELIST = "singlevaluelist"
    MULTIVALUELIST = "multivaluelist"


class ServiceType(str, enum.Enum):
    REALTIME = "realtime"  # the service_request_id comes back at once
    BATCH = "batch"  # a token comes back; tokens/{token} gives the id later
    BLACKBOX = "blackbox"  # nothing comes back


@dataclass(frozen=True)
class AttributeValue:
    key: str
    name: str


@dataclass(frozen=True)
class Attribute:
    code: str
    datatype: Datatype
    required: bool
    description: str
    order: int
    variable: bool = True  # false: only information shown to the user
    datatype_description: str | None = None
    values: tuple[AttributeValue, ...] = ()

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(v.key for v in self.values)


@dataclass(frozen=True)
class Service:
    service_code: str
    service_name: str
    description: str
    type: ServiceType = ServiceType.REALTIME
    keywords: tuple[str, ...] = ()
    group: str = ""
    attributes: tuple[Attribute, ...] = ()

    @property
    def metadata(self) -> bool:
        """true when a client must read the service definition (there are attributes)."""
        return bool(self.attributes)


@dataclass(frozen=True)
class Jurisdiction:
    """The one jurisdiction this endpoint serves, and the api_keys allowed to POST."""

    jurisdiction_id: str
    aliases: tuple[str, ...] = ()
    api_keys: frozenset[str] = field(default=frozenset(), repr=False)

    def is_known(self, jurisdiction_id: str) -> bool:
        return jurisdiction_id == self.jurisdiction_id or jurisdiction_id in self.aliases

    def accepts_key(self, api_key: str) -> bool:
        # constant-time comparison: a key is a secret
        return any(hmac.compare_digest(api_key.encode(), k.encode()) for k in self.api_keys)


@dataclass(frozen=True)
class Contact:
    """Who reported: personal data. Never logged (repr hides it), never put in events; the
    service turns it into a pseudonymous applicant id or files the request anonymously."""

    email: str | None = field(default=None, repr=False)
    first_name: str | None = field(default=None, repr=False)
    last_name: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    device_id: str | None = field(default=None, repr=False)
    account_id: str | None = field(default=None, repr=False)

    @property
    def identifies_someone(self) -> bool:
        return any((self.email, self.phone, self.account_id))


@dataclass(frozen=True)
class NewServiceRequest:
    """A validated POST requests.{format}."""

    service_code: str
    lat: float | None = None
    long: float | None = None
    address_string: str | None = None
    address_id: str | None = None
    description: str | None = None
    media_url: str | None = None
    # attribute[code]=value, attribute[code][]=v1&attribute[code][]=v2 for multivaluelists
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    contact: Contact = field(default_factory=Contact)


@dataclass(frozen=True)
class CreatedRequest:
    """The answer to a POST: a service_request_id or (batch services) a token, never both."""

    service_request_id: str | None = None
    token: str | None = None
    service_notice: str | None = None
    account_id: str | None = None

    def __post_init__(self) -> None:
        if (self.service_request_id is None) == (self.token is None):
            raise ValueError("a created request has either a service_request_id or a token")


@dataclass(frozen=True)
class ServiceRequest:
    """A request as GET requests and GET requests/{id} show it."""

    service_request_id: str
    status: str  # open | closed
    service_code: str
    service_name: str
    requested_datetime: datetime
    updated_datetime: datetime
    description: str | None = None
    status_notes: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    expected_datetime: datetime | None = None
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None


@dataclass(frozen=True)
class TokenResult:
    token: str
    service_request_id: str | None  # None while the batch has not created the request yet


@dataclass(frozen=True)
class RequestUpdate:
    """One entry of FixMyStreet's servicerequestupdates."""

    update_id: str
    service_request_id: str
    status: str
    updated_datetime: datetime
    description: str = ""
    media_url: str | None = None


# FixMyStreet's statuses of a POSTed update (upper case on the way in).
UPDATE_STATUSES = ("OPEN", "CLOSED", "FIXED", "IN_PROGRESS", "PLANNED", "ACTION_SCHEDULED", "INVESTIGATING",
                   "DUPLICATE", "NOT_COUNCILS_RESPONSIBILITY", "NO_FURTHER_ACTION", "INTERNAL_REFERRAL",
                   "CANCELLED", "REOPEN", "FOR_TRIAGE")


@dataclass(frozen=True)
class NewRequestUpdate:
    """A validated POST servicerequestupdates.{format}: the resident's word on a closed request,
    recorded as their rating (the description is not kept: free text may be personal)."""

    service_request_id: str
    client_update_id: str  # the app's own id of the update (FixMyStreet's update_id)
    status: str  # one of UPDATE_STATUSES
    updated_datetime: datetime
    rating: str  # one of the five levels of the good/bad review scheme


@dataclass(frozen=True)
class RequestQuery:
    """GET requests: service_request_id overrides every other filter."""

    start: datetime
    end: datetime
    service_request_ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    limit: int = MAX_RESULTS


@dataclass(frozen=True)
class UpdatesQuery:
    start: datetime
    end: datetime
    limit: int = MAX_RESULTS


@dataclass(frozen=True)
class Endpoint:
    url: str
    changeset: str
    type: str = "production"  # production | test
    specification: str = SPECIFICATION
    formats: tuple[str, ...] = ("text/xml", "application/json")


@dataclass(frozen=True)
class Discovery:
    changeset: str
    contact: str
    key_service: str
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True)
class Error:
    code: int | str
    description: str


class Open311Failure(Exception):
    """A request the endpoint refuses: the HTTP status and the spec's error list."""

    def __init__(self, status: int, errors: list[Error]) -> None:
        self.status = status
        self.errors = errors
        super().__init__("; ".join(f"{e.code}: {e.description}" for e in errors))

    @classmethod
    def of(cls, errors: list[Error]) -> "Open311Failure":
        """403 for api_key problems, 404 for things not found, else 400 (the spec's rule)."""
        codes = {e.code for e in errors}
        status = 403 if 403 in codes else 404 if 404 in codes else 400
        return cls(status, errors)
