"""One OpenAPI document of every service's routes as the gateway serves them: paths at their
public place, components named after their service with every reference following, names that
cannot collide (a service that does not answer: tests/integration/test_gateway_upstreams.py)."""
from __future__ import annotations

import pytest

from civicgrid_gateway.domain.openapi import ConflictingDefinitions, aggregate

BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}

GATEWAY = {
    "openapi": "3.1.0",
    "info": {"title": "civicgrid gateway", "version": "1"},
    "paths": {"/healthz": {"get": {"operationId": "healthz", "responses": {"200": {"description": "ok"}}}}},
    "components": {"schemas": {"Problem": {"type": "object"}}},
}


def _service(paths: dict, schemas: dict, security: dict | None = None) -> dict:
    return {"openapi": "3.1.0", "info": {"title": "s", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": security or {"bearer": BEARER}},
            "tags": [{"name": "cases"}]}


def _op(operation_id: str, ref: str | None = None) -> dict:
    answer = {"description": "ok"}
    if ref:
        answer["content"] = {"application/json": {"schema": {"$ref": ref}}}
    return {"operationId": operation_id, "tags": ["cases"], "security": [{"bearer": []}],
            "responses": {"200": answer}}


INTAKE = _service(
    {"/v1/cases": {"post": _op("register", "#/components/schemas/CaseOut"), "parameters": []},
     "/open311/v2/requests.json": {"get": _op("requests")},
     "/healthz": {"get": _op("healthz")}, "/readyz": {"get": _op("readyz")},
     "/problems/{slug}": {"get": _op("problem")}},
    {"CaseOut": {"type": "object", "properties": {"applicant": {"$ref": "#/components/schemas/Applicant"}}},
     "Applicant": {"type": "object"},
     "Event": {"oneOf": [{"$ref": "#/components/schemas/CaseOut"}],
               "discriminator": {"propertyName": "kind", "mapping": {"case": "#/components/schemas/CaseOut"}}}})
APPROVAL = _service({"/v1/cases": {"get": _op("register", "#/components/schemas/CaseOut")},
                     "/open311/v2/requests.json": {"get": _op("not_open311")}},
                    {"CaseOut": {"type": "object", "required": ["stage"]}})


def test_each_service_s_paths_are_where_the_gateway_serves_them_and_its_own_pages_are_left_out() -> None:
    document = aggregate(GATEWAY, {"intake": INTAKE, "approval": APPROVAL})
    assert set(document["paths"]) == {"/healthz", "/api/intake/v1/cases", "/open311/v2/requests.json",
                                      "/api/approval/v1/cases", "/api/approval/open311/v2/requests.json"}
    assert document["paths"]["/healthz"] == GATEWAY["paths"]["/healthz"]  # the gateway's, not intake's
    assert set(document["paths"]["/api/intake/v1/cases"]) == {"post", "parameters"}
    assert document["servers"] == [{"url": "/"}]


def test_components_are_named_after_their_service_and_every_reference_follows() -> None:
    document = aggregate(GATEWAY, {"intake": INTAKE, "approval": APPROVAL})
    schemas = document["components"]["schemas"]
    assert set(schemas) == {"Problem", "intake.CaseOut", "intake.Applicant", "intake.Event", "approval.CaseOut"}
    assert schemas["intake.CaseOut"]["properties"]["applicant"] == {"$ref": "#/components/schemas/intake.Applicant"}
    assert schemas["intake.Event"]["oneOf"] == [{"$ref": "#/components/schemas/intake.CaseOut"}]
    assert schemas["intake.Event"]["discriminator"] == {
        "propertyName": "kind", "mapping": {"case": "#/components/schemas/intake.CaseOut"}}
    register = document["paths"]["/api/approval/v1/cases"]["get"]
    assert register["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/approval.CaseOut"}
    # one bearer scheme for all, referred to by its own name
    assert document["components"]["securitySchemes"] == {"bearer": BEARER}
    assert register["security"] == [{"bearer": []}]
    # the inputs were not changed in place
    assert "approval.CaseOut" not in str(APPROVAL)


def test_operation_ids_and_tags_carry_their_service_so_two_services_never_collide() -> None:
    document = aggregate(GATEWAY, {"intake": INTAKE, "approval": APPROVAL})
    ids = [operation["operationId"] for item in document["paths"].values()
           for method, operation in item.items() if method != "parameters"]
    assert sorted(ids) == ["approval_not_open311", "approval_register", "healthz", "intake_register",
                           "intake_requests"]
    assert document["paths"]["/api/intake/v1/cases"]["post"]["tags"] == ["intake cases"]
    assert {"name": "intake cases"} in document["tags"] and {"name": "approval cases"} in document["tags"]


def test_two_services_that_define_the_bearer_scheme_differently_are_refused() -> None:
    other = _service({}, {}, security={"bearer": {"type": "apiKey", "in": "header", "name": "X-Key"}})
    with pytest.raises(ConflictingDefinitions, match="bearer"):
        aggregate(GATEWAY, {"intake": INTAKE, "approval": other})
