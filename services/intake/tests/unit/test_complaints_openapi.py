"""The complaints staff API documents typed answers in its OpenAPI: every route names its model,
and the models carry their members with types and enums (no generic objects)."""
from __future__ import annotations

import pytest

from civicgrid_intake.config import IntakeSettings
from civicgrid_intake.domain.complaint import Category, Channel, State, Urgency
from civicgrid_intake.entrypoints.main import build_app

ROUTES = {
    ("/v1/complaints", "post", "201"): "ComplaintOut",
    ("/v1/complaints", "get", "200"): "ComplaintPage",
    ("/v1/complaints/{complaint_id}", "get", "200"): "ComplaintOut",
    ("/v1/complaints/{complaint_id}/route", "post", "200"): "ComplaintOut",
    ("/v1/complaints/{complaint_id}/response", "post", "200"): "ComplaintOut",
    ("/v1/complaints/{complaint_id}/answer", "post", "200"): "ComplaintOut",
    ("/v1/complaints/{complaint_id}/close", "post", "200"): "ComplaintOut",
    ("/v1/complaints/{complaint_id}/rating", "post", "200"): "ComplaintOut",
}


@pytest.fixture(scope="module")
def openapi() -> dict:
    return build_app(IntakeSettings(outbox_relay=False, approval_consumer=False)).openapi()


def schema(openapi: dict, name: str) -> dict:
    return openapi["components"]["schemas"][name]


def resolve(openapi: dict, node: dict) -> dict:
    return schema(openapi, node["$ref"].rsplit("/", 1)[-1]) if "$ref" in node else node


def enum_of(openapi: dict, prop: dict) -> list:
    return resolve(openapi, prop)["enum"]


@pytest.mark.parametrize("path, method, status", list(ROUTES), ids=lambda x: str(x))
def test_every_staff_route_names_its_response_model(openapi, path, method, status) -> None:
    response = openapi["paths"][path][method]["responses"][status]
    assert response["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{ROUTES[(path, method, status)]}"}


def test_the_complaint_model_is_fully_typed(openapi) -> None:
    complaint = schema(openapi, "ComplaintOut")
    props = complaint["properties"]
    assert set(complaint["required"]) >= {"id", "status", "category", "channel", "urgency", "location", "routing"}
    assert enum_of(openapi, props["status"]) == [s.value for s in State]
    assert enum_of(openapi, props["category"]) == [c.value for c in Category]
    assert enum_of(openapi, props["channel"]) == [c.value for c in Channel]
    assert enum_of(openapi, props["urgency"]) == [u.value for u in Urgency]
    assert props["location"] == {"$ref": "#/components/schemas/LocationOut"}
    assert set(schema(openapi, "LocationOut")["properties"]) == {"address", "address_id", "lat", "lon"}
    routing = [s for s in props["routing"]["anyOf"] if "$ref" in s]
    assert routing == [{"$ref": "#/components/schemas/RoutingOut"}]
    assert schema(openapi, "RoutingOut")["properties"]["kind"]["enum"] == ["street", "department", "lead"]
    for instant in ("received_at", "feedback_due_at", "responded_at", "closed_at", "updated_at"):
        assert props[instant]["format"] == "date-time", instant
    for name, model in openapi["components"]["schemas"].items():
        if name in ("ComplaintOut", "ComplaintListItem", "ComplaintPage", "LocationOut", "ListLocationOut",
                    "RoutingOut"):
            assert model.get("type") == "object" and model.get("properties"), name
            assert model.get("additionalProperties") is not True, name


def test_the_page_lists_typed_items(openapi) -> None:
    page = schema(openapi, "ComplaintPage")
    assert page["properties"]["items"] == {"type": "array", "items": {"$ref": "#/components/schemas/ComplaintListItem"},
                                           "title": "Items"}
    item = schema(openapi, "ComplaintListItem")["properties"]
    assert item["location"] == {"$ref": "#/components/schemas/ListLocationOut"}
    assert {"routing_kind", "departments", "rating", "round", "service_code"} <= set(item)
