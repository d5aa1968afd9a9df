"""Parsing and validating Open311 input (pure). Every problem becomes an `Error`; all of a
request's problems are reported together (the error body is a list).

"Optional" in the specification means an empty parameter is the same as an absent one.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Mapping, Sequence

from civicgrid_intake.entrypoints.open311.model import (
    MAX_DESCRIPTION,
    MAX_RESULTS,
    MAX_SPAN_DAYS,
    Attribute,
    Contact,
    Datatype,
    Error,
    Jurisdiction,
    UPDATE_STATUSES,
    NewRequestUpdate,
    NewServiceRequest,
    Open311Failure,
    RequestQuery,
    Service,
    UpdatesQuery,
)
from civicgrid_intake.domain.rating import RatingLevel

Params = Sequence[tuple[str, str]]

# The W3C note's complete date plus hours and minutes, optional seconds and fraction, with
# the time zone designator that GeoReport requires (Z or ±hh:mm).
_W3C = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://\S{1,2000}$")
# "may contain line breaks, but not html or code"
_MARKUP = re.compile(r"<\s*[/!?a-zA-Z]")
_FIELD_LIMIT = 500

BAD_REQUEST, FORBIDDEN, NOT_FOUND = 400, 403, 404


def _values(params: Params) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for key, value in params:
        grouped[key].append(value)
    return grouped


def _single(grouped: Mapping[str, list[str]], name: str, errors: list[Error]) -> str | None:
    """An optional single-valued parameter, stripped; empty means absent."""
    values = [v.strip() for v in grouped.get(name, []) if v.strip()]
    if len(values) > 1:
        errors.append(Error(BAD_REQUEST, f"{name} was given {len(values)} times; give it once"))
    if values and len(values[0]) > _FIELD_LIMIT and name != "description":
        errors.append(Error(BAD_REQUEST, f"{name} is longer than {_FIELD_LIMIT} characters"))
    return values[0] if values else None


def _list(grouped: Mapping[str, list[str]], name: str) -> tuple[str, ...]:
    """A list parameter: comma delimited and/or declared several times."""
    items = (part.strip() for value in grouped.get(name, []) for part in value.split(","))
    return tuple(dict.fromkeys(i for i in items if i))


def parse_w3c(value: str, name: str) -> datetime:
    """A W3C date-time with its time zone, e.g. 2010-01-01T00:00:00Z or ...T08:00:00+08:00."""
    if not _W3C.match(value):
        raise Open311Failure.of([Error(BAD_REQUEST, f"{name} {value!r} is not a W3C date-time with a time zone, "
                                                    "e.g. 2010-01-01T00:00:00Z or 2010-01-01T08:00:00+08:00")])
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise Open311Failure.of([Error(BAD_REQUEST, f"{name} {value!r} is not a valid date-time")]) from None


def check_jurisdiction(params: Params, jurisdiction: Jurisdiction) -> None:
    """jurisdiction_id is optional (one jurisdiction served); an unknown one is a 404."""
    grouped = _values(params)
    errors: list[Error] = []
    given = _single(grouped, "jurisdiction_id", errors)
    if given is not None and not jurisdiction.is_known(given):
        errors.append(Error(NOT_FOUND, f"jurisdiction_id {given!r} was not found; this endpoint serves "
                                       f"{jurisdiction.jurisdiction_id}"))
    if errors:
        raise Open311Failure.of(errors)


# Where a POST's api_key and jurisdiction_id may come from besides the form body: GeoReport v2
# puts them in the body, but clients in use send them in the query string, as on a GET
# (node-open311 sends jurisdiction_id there; the client tried in issue 13 sent api_key there).
# Only these two are taken from the query; the request's own fields are the body's.
QUERY_CREDENTIALS = ("api_key", "jurisdiction_id")


def with_query_credentials(form: Params, query: Params) -> list[tuple[str, str]]:
    """The form's pairs plus the query string's api_key and jurisdiction_id; a pair the form
    already holds is not counted twice (a client may send both)."""
    pairs = list(form)
    pairs += [(k, v) for k, v in query if k in QUERY_CREDENTIALS and (k, v) not in pairs]
    return pairs


def check_api_key(params: Params, jurisdiction: Jurisdiction, action: str = "create_request") -> None:
    api_key = next((v for k, v in params if k == "api_key" and v), None)
    if api_key is None:
        raise Open311Failure.of([Error(FORBIDDEN, f"api_key is missing -- can't proceed with {action}")])
    if not jurisdiction.accepts_key(api_key):
        raise Open311Failure.of([Error(FORBIDDEN, f"Invalid api_key received -- can't proceed with {action}")])


# ---------------------------------------------------------------------------- POST servicerequestupdates

# Without an explicit rating, what the resident's status says about the fix: done, or not.
_RATING_OF_STATUS = {"FIXED": "satisfied", "CLOSED": "satisfied", "OPEN": "dissatisfied", "REOPEN": "dissatisfied"}
_RATINGS = tuple(level.value for level in RatingLevel)


def parse_update_post(params: Params, jurisdiction: Jurisdiction) -> NewRequestUpdate:
    """Validate FixMyStreet's POST servicerequestupdates.{format} form (the open311-adapter's
    fields: service_request_id, update_id, status, updated_datetime, description required).
    The extension `rating` gives one of the five levels; without it FIXED/CLOSED count as
    satisfied and OPEN/REOPEN (not fixed) as dissatisfied. Raises Open311Failure with every problem."""
    check_api_key(params, jurisdiction, "post_service_request_update")
    check_jurisdiction(params, jurisdiction)
    grouped = _values(params)
    errors: list[Error] = []
    found = {name: _single(grouped, name, errors)
             for name in ("service_request_id", "update_id", "status", "updated_datetime", "description")}
    errors += [Error(BAD_REQUEST, f"{name} was not provided") for name, value in found.items() if value is None]
    status = (found["status"] or "").upper()
    if found["status"] is not None and status not in UPDATE_STATUSES:
        errors.append(Error(BAD_REQUEST, f"status {found['status']!r} is not one of {', '.join(UPDATE_STATUSES)}"))
    description = found["description"] or ""
    if len(description) > MAX_DESCRIPTION:
        errors.append(Error(BAD_REQUEST, f"description is longer than {MAX_DESCRIPTION} characters"))
    rating = _single(grouped, "rating", errors)
    if rating is not None and rating not in _RATINGS:
        errors.append(Error(BAD_REQUEST, f"rating {rating!r} is not one of {', '.join(_RATINGS)}"))
    elif rating is None and status in UPDATE_STATUSES:
        rating = _RATING_OF_STATUS.get(status)
        if rating is None:
            errors.append(Error(BAD_REQUEST, f"a resident's update on a closed request says FIXED or CLOSED (done) or "
                                             f"OPEN or REOPEN (not done), or gives a rating; not {status}"))
    updated = None
    if found["updated_datetime"] is not None:
        try:
            updated = parse_w3c(found["updated_datetime"], "updated_datetime")
        except Open311Failure as failure:
            errors += failure.errors
    if errors:
        raise Open311Failure.of(errors)
    assert found["service_request_id"] and found["update_id"] and updated is not None and rating is not None
    return NewRequestUpdate(service_request_id=found["service_request_id"], client_update_id=found["update_id"],
                            status=status, updated_datetime=updated, rating=rating)


# ---------------------------------------------------------------------------- POST requests


def parse_create(params: Params, services: Mapping[str, Service], jurisdiction: Jurisdiction) -> NewServiceRequest:
    """Validate a POST requests.{format} form. Raises Open311Failure with every problem."""
    check_api_key(params, jurisdiction)  # first: without a valid key nothing else is told
    check_jurisdiction(params, jurisdiction)
    grouped = _values(params)
    errors: list[Error] = []
    code = _single(grouped, "service_code", errors)
    service = services.get(code) if code else None
    if code is None:
        errors.append(Error(BAD_REQUEST, "service_code was not provided"))
    elif service is None:
        errors.append(Error(NOT_FOUND, f"service_code {code!r} was not found"))

    lat, long = _coordinates(grouped, errors)
    address_string = _single(grouped, "address_string", errors)
    address_id = _single(grouped, "address_id", errors)
    if lat is None and address_string is None and address_id is None and not _has_any(grouped, "lat", "long"):
        errors.append(Error(BAD_REQUEST, "a location is required: lat and long, address_string or address_id"))

    description = _single(grouped, "description", errors)
    if description is not None:
        if len(description) > MAX_DESCRIPTION:
            errors.append(Error(BAD_REQUEST, f"description is longer than {MAX_DESCRIPTION} characters"))
        if _MARKUP.search(description):
            errors.append(Error(BAD_REQUEST, "description may contain line breaks, but not html or code"))
    media_url = _single(grouped, "media_url", errors)
    if media_url is not None and not _URL.match(media_url):
        errors.append(Error(BAD_REQUEST, "media_url must be an http or https URL"))
    email = _single(grouped, "email", errors)
    if email is not None and not _EMAIL.match(email):
        errors.append(Error(BAD_REQUEST, "email is not an email address"))

    attributes = _attributes(params, service, errors) if service else {}
    if errors:
        raise Open311Failure.of(errors)
    assert code is not None
    contact = Contact(
        email=email,
        first_name=_single(grouped, "first_name", errors),
        last_name=_single(grouped, "last_name", errors),
        phone=_single(grouped, "phone", errors),
        device_id=_single(grouped, "device_id", errors),
        account_id=_single(grouped, "account_id", errors),
    )
    if errors:
        raise Open311Failure.of(errors)
    return NewServiceRequest(
        service_code=code, lat=lat, long=long, address_string=address_string, address_id=address_id,
        description=description, media_url=media_url, attributes=attributes, contact=contact,
    )


def _has_any(grouped: Mapping[str, list[str]], *names: str) -> bool:
    return any(v.strip() for n in names for v in grouped.get(n, []))


def _coordinates(grouped: Mapping[str, list[str]], errors: list[Error]) -> tuple[float | None, float | None]:
    lat_text, long_text = _single(grouped, "lat", errors), _single(grouped, "long", errors)
    if lat_text is None and long_text is None:
        return None, None
    if lat_text is None or long_text is None:
        errors.append(Error(BAD_REQUEST, "lat and long must both be sent"))
        return None, None
    values = []
    for name, text, bound in (("lat", lat_text, 90.0), ("long", long_text, 180.0)):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not -bound <= value <= bound:
            errors.append(Error(BAD_REQUEST, f"{name} {text!r} is not a WGS84 coordinate (-{bound:g}..{bound:g})"))
        values.append(value)
    return values[0], values[1]


def _attributes(params: Params, service: Service, errors: list[Error]) -> dict[str, tuple[str, ...]]:
    """attribute[code]=value pairs checked against the service definition."""
    given: dict[str, list[str]] = defaultdict(list)
    for key, value in params:
        m = _ATTRIBUTE.match(key)
        if key.startswith("attribute") and not m:
            errors.append(Error(BAD_REQUEST, f"{key!r} is not of the form attribute[code]"))
        elif m and value.strip():
            given[m.group(1)].append(value.strip())
    defined = {a.code: a for a in service.attributes}
    for code in given:
        if code not in defined:
            errors.append(Error(BAD_REQUEST, f"attribute {code!r} is not defined for service {service.service_code}"))
    for attribute in defined.values():
        values = given.get(attribute.code, [])
        if not values:
            if attribute.required and attribute.variable:
                errors.append(Error(BAD_REQUEST, f"attribute {attribute.code!r} is required: {attribute.description}"))
            continue
        _check_attribute(attribute, values, errors)
    return {code: tuple(values) for code, values in given.items() if code in defined}


def _check_attribute(attribute: Attribute, values: list[str], errors: list[Error]) -> None:
    code, datatype = attribute.code, attribute.datatype
    if datatype is not Datatype.MULTIVALUELIST and len(values) > 1:
        errors.append(Error(BAD_REQUEST, f"attribute {code!r} takes one value"))
    for value in values:
        if datatype in (Datatype.SINGLEVALUELIST, Datatype.MULTIVALUELIST) and value not in attribute.keys:
            keys = ", ".join(sorted(attribute.keys))
            errors.append(Error(BAD_REQUEST, f"attribute {code!r}: {value!r} is not one of {keys}"))
        elif datatype is Datatype.NUMBER and not _is_number(value):
            errors.append(Error(BAD_REQUEST, f"attribute {code!r}: {value!r} is not a number"))
        elif datatype is Datatype.DATETIME and not _W3C.match(value):
            errors.append(Error(BAD_REQUEST, f"attribute {code!r}: {value!r} is not an ISO 8601 date-time"))
        elif datatype is Datatype.STRING and ("\n" in value or "\r" in value):
            errors.append(Error(BAD_REQUEST, f"attribute {code!r} is a string without line breaks"))


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


# ---------------------------------------------------------------------------- GET queries


def _date_range(grouped: Mapping[str, list[str]], now: datetime, errors: list[Error]) -> tuple[datetime, datetime]:
    """start_date/end_date: the most recent 90 days by default; never more than 90 days."""
    span = timedelta(days=MAX_SPAN_DAYS)
    start_text, end_text = _single(grouped, "start_date", errors), _single(grouped, "end_date", errors)
    try:
        start = parse_w3c(start_text, "start_date") if start_text else None
        end = parse_w3c(end_text, "end_date") if end_text else None
    except Open311Failure as failure:
        errors.extend(failure.errors)
        return now - span, now
    if start is None and end is None:
        return now - span, now
    if start is None:
        assert end is not None
        return end - span, end
    if end is None:
        return start, start + span
    if end < start:
        errors.append(Error(BAD_REQUEST, "end_date is before start_date"))
    elif end - start > span:
        errors.append(Error(BAD_REQUEST, f"start_date and end_date may not span more than {MAX_SPAN_DAYS} days"))
    return start, end


def parse_requests_query(params: Params, now: datetime, jurisdiction: Jurisdiction) -> RequestQuery:
    check_jurisdiction(params, jurisdiction)
    grouped = _values(params)
    ids = _list(grouped, "service_request_id")
    if ids:
        # "This overrides all other arguments": dates, codes and statuses are not looked at.
        return RequestQuery(start=now - timedelta(days=MAX_SPAN_DAYS), end=now, service_request_ids=ids[:MAX_RESULTS])
    errors: list[Error] = []
    statuses = tuple(s.lower() for s in _list(grouped, "status"))
    for status in statuses:
        if status not in ("open", "closed"):
            errors.append(Error(BAD_REQUEST, f"status {status!r} is not open or closed"))
    start, end = _date_range(grouped, now, errors)
    if errors:
        raise Open311Failure.of(errors)
    return RequestQuery(start=start, end=end, service_codes=_list(grouped, "service_code"), statuses=statuses)


def parse_updates_query(params: Params, now: datetime, jurisdiction: Jurisdiction) -> UpdatesQuery:
    """FixMyStreet's servicerequestupdates: start_date and end_date, bounded like requests."""
    check_jurisdiction(params, jurisdiction)
    errors: list[Error] = []
    start, end = _date_range(_values(params), now, errors)
    if errors:
        raise Open311Failure.of(errors)
    return UpdatesQuery(start=start, end=end)
