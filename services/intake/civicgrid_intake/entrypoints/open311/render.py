"""XML and JSON bodies as GeoReport v2 shows them (pure).

XML: schemaless, no namespace, UTF-8 with the XML declaration; a list is an element holding
one child per item (`<services><service>…`). JSON follows the Spark convention the
specification names: the same tree, with lists as arrays (the top-level list is the array
itself), `true`/`false` as booleans, numbers as numbers and missing values as null.
Dates are W3C date-times with the China offset, e.g. 2026-03-02T09:30:00+08:00.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any, Iterable, Mapping

from civicgrid_common.calendar import CHINA_TZ

from civicgrid_intake.entrypoints.open311.model import (
    CreatedRequest,
    Discovery,
    Error,
    Format,
    RequestUpdate,
    Service,
    ServiceRequest,
    TokenResult,
)

# The element name of one item of each list.
ITEM_NAMES: Mapping[str, str] = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "service_requests": "request",
    "service_request_updates": "request_update",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}

Body = tuple[bytes, str]  # the encoded body and its Content-Type


def w3c(at: datetime) -> str:
    return at.astimezone(CHINA_TZ).isoformat(timespec="seconds")


def _scalar_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return w3c(value)
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return w3c(value)
    if isinstance(value, Mapping):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def _xml_children(parent: ET.Element, name: str, value: Any) -> None:
    element = ET.SubElement(parent, name)
    if isinstance(value, Mapping):
        for key, child in value.items():
            _xml_children(element, key, child)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _xml_children(element, ITEM_NAMES[name], item)
    else:
        element.text = _scalar_text(value)


def to_xml(root: str, value: Mapping[str, Any] | Iterable[Any]) -> bytes:
    top = ET.Element(root)
    if isinstance(value, Mapping):
        for key, child in value.items():
            _xml_children(top, key, child)
    else:
        for item in value:
            _xml_children(top, ITEM_NAMES[root], item)
    ET.indent(top)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8") + b"\n"


def to_json(value: Any) -> bytes:
    return json.dumps(_json_value(value), ensure_ascii=False).encode("utf-8")


def render(fmt: Format, root: str, value: Mapping[str, Any] | list[Any]) -> Body:
    body = to_xml(root, value) if fmt is Format.XML else to_json(value)
    return body, fmt.media_type


# ---------------------------------------------------------------------------- resources


def service_item(service: Service) -> dict[str, Any]:
    return {
        "service_code": service.service_code,
        "service_name": service.service_name,
        "description": service.description,
        "metadata": service.metadata,
        "type": service.type.value,
        "keywords": ", ".join(service.keywords),
        "group": service.group,
    }


def render_services(services: Iterable[Service], fmt: Format) -> Body:
    return render(fmt, "services", [service_item(s) for s in services])


def render_service_definition(service: Service, fmt: Format) -> Body:
    attributes = []
    for a in sorted(service.attributes, key=lambda a: a.order):
        item: dict[str, Any] = {
            "variable": a.variable,
            "code": a.code,
            "datatype": a.datatype.value,
            "required": a.required,
            "datatype_description": a.datatype_description,
            "order": a.order,
            "description": a.description,
        }
        if a.values:
            item["values"] = [{"key": v.key, "name": v.name} for v in a.values]
        attributes.append(item)
    return render(fmt, "service_definition", {"service_code": service.service_code, "attributes": attributes})


def render_created(created: CreatedRequest, fmt: Format) -> Body:
    item: dict[str, Any] = (
        {"service_request_id": created.service_request_id}
        if created.service_request_id is not None
        else {"token": created.token}
    )
    item["service_notice"] = created.service_notice
    item["account_id"] = created.account_id
    return render(fmt, "service_requests", [item])


def request_item(r: ServiceRequest) -> dict[str, Any]:
    return {
        "service_request_id": r.service_request_id,
        "status": r.status,
        "status_notes": r.status_notes,
        "service_name": r.service_name,
        "service_code": r.service_code,
        "description": r.description,
        "agency_responsible": r.agency_responsible,
        "service_notice": r.service_notice,
        "requested_datetime": r.requested_datetime,
        "updated_datetime": r.updated_datetime,
        "expected_datetime": r.expected_datetime,
        "address": r.address,
        "address_id": r.address_id,
        "zipcode": r.zipcode,
        "lat": r.lat,
        "long": r.long,
        "media_url": r.media_url,
    }


def render_requests(requests: Iterable[ServiceRequest], fmt: Format) -> Body:
    return render(fmt, "service_requests", [request_item(r) for r in requests])


def render_token(result: TokenResult, fmt: Format) -> Body:
    return render(fmt, "service_requests", [{"service_request_id": result.service_request_id, "token": result.token}])


def render_updates(updates: Iterable[RequestUpdate], fmt: Format) -> Body:
    items = [
        {
            "update_id": u.update_id,
            "service_request_id": u.service_request_id,
            "status": u.status,
            "updated_datetime": u.updated_datetime,
            "description": u.description,
            "media_url": u.media_url,
        }
        for u in updates
    ]
    return render(fmt, "service_request_updates", items)


def render_posted_update(update_id: str, fmt: Format) -> Body:
    """The answer to POST servicerequestupdates: the update_id the server gave the update."""
    return render(fmt, "service_request_updates", [{"update_id": update_id}])


def render_errors(errors: Iterable[Error], fmt: Format) -> Body:
    return render(fmt, "errors", [{"code": e.code, "description": e.description} for e in errors])


def render_discovery(discovery: Discovery, fmt: Format) -> Body:
    return render(
        fmt,
        "discovery",
        {
            "changeset": discovery.changeset,
            "contact": discovery.contact,
            "key_service": discovery.key_service,
            "endpoints": [
                {
                    "specification": e.specification,
                    "url": e.url,
                    "changeset": e.changeset,
                    "type": e.type,
                    "formats": list(e.formats),
                }
                for e in discovery.endpoints
            ],
        },
    )
