"""approval's OpenAPI document shows a real response schema for every route (no bare object),
and what the routes really answer validates against those published schemas."""
from __future__ import annotations

import jsonschema

from approval_flows import act, route_case

EXPECTED = {
    ("get", "/v1/workflows"): "WorkflowList",
    ("get", "/v1/workflows/{affair_code}"): "WorkflowOut",
    ("put", "/v1/workflows/{affair_code}"): "WorkflowOut",
    ("get", "/v1/approvals"): "ApprovalPage",
    ("get", "/v1/approvals/inbox"): "InboxPage",
    ("get", "/v1/approvals/{approval_id}"): "ApprovalOut",
    ("post", "/v1/approvals/{approval_id}/actions"): "ApprovalOut",
    ("get", "/v1/approvals/{approval_id}/verify"): "Verification",
    ("get", "/v1/approvals/{approval_id}/archive"): "ArchiveOut",
    ("get", "/v1/approvals/{approval_id}/history"): "ApprovalHistoryOut",
    ("get", "/v1/seals/keys"): "KeySet",
    ("get", "/v1/access-grants"): "AccessGrantList",
    ("post", "/v1/access-applications"): "ApprovalOut",
}


def success_schema(doc: dict, method: str, path: str) -> dict:
    responses = doc["paths"][path][method]["responses"]
    (code,) = [c for c in responses if c.startswith("2")]
    return responses[code]["content"]["application/json"]["schema"]


def component(doc: dict, ref: dict) -> dict:
    return doc["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]


def test_every_route_publishes_a_typed_response(approval_app):
    doc = approval_app.openapi()
    for (method, path), name in EXPECTED.items():
        assert success_schema(doc, method, path) == {"$ref": f"#/components/schemas/{name}"}, (method, path)
    untyped = [(m, p) for p, ops in doc["paths"].items() if p.startswith("/v1/") for m, op in ops.items()
               for c, r in op["responses"].items() if c.startswith("2")
               and r.get("content", {}).get("application/json", {}).get("schema") in (None, {}, {"type": "object"},
                                                                                     {"additionalProperties": True,
                                                                                      "type": "object"})]
    assert untyped == []
    approval = doc["components"]["schemas"]["ApprovalOut"]
    assert {"id", "version", "status", "task", "moves", "conclusion"} <= set(approval["required"])
    task = component(doc, next(x for x in approval["properties"]["task"]["anyOf"] if "$ref" in x))
    assert {"key", "due_date", "actions", "warned", "overdue"} <= set(task["properties"])
    move = component(doc, approval["properties"]["moves"]["items"])
    seal = component(doc, move["properties"]["seal"])
    assert component(doc, seal["properties"]["decision"])["properties"]["previous"]
    inbox = doc["components"]["schemas"]["InboxPage"]
    assert component(doc, inbox["properties"]["counts"])["required"] == [
        "completed", "returned", "extended", "supplemented", "sent_back", "escalated"]
    checks = doc["components"]["schemas"]["Verification"]["properties"]["checks"]["items"]
    assert component(doc, checks)["properties"]["check"]["enum"] == [
        "hash_chain", "seal_matches_event", "seal_signature", "final_seal", "archive"]
    assert doc["components"]["schemas"]["WorkflowOut"]["properties"]["definition"] == {
        "$ref": "#/components/schemas/Definition"}


def conforms(doc: dict, method: str, path: str, body) -> None:
    schema = {**success_schema(doc, method, path), "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


async def test_what_the_routes_answer_validates_against_the_published_schemas(approval_app, api, people):
    doc = approval_app.openapi()
    aid = await route_case(approval_app)
    acted = await act(api, people["community"], aid)
    assert acted.status_code == 200
    conforms(doc, "post", "/v1/approvals/{approval_id}/actions", acted.json())
    for who, path, template in [
        ("auditor", f"/v1/approvals/{aid}", "/v1/approvals/{approval_id}"),
        ("auditor", f"/v1/approvals/{aid}/verify", "/v1/approvals/{approval_id}/verify"),
        ("auditor", f"/v1/approvals/{aid}/history", "/v1/approvals/{approval_id}/history"),
        ("auditor", "/v1/approvals", "/v1/approvals"),
        ("street", "/v1/approvals/inbox", "/v1/approvals/inbox"),
        ("auditor", "/v1/workflows", "/v1/workflows"),
        ("auditor", "/v1/workflows/civil.minimum_living_allowance", "/v1/workflows/{affair_code}"),
        ("auditor", "/v1/seals/keys", "/v1/seals/keys"),
        ("auditor", "/v1/access-grants", "/v1/access-grants"),
    ]:
        r = await api.get(path, headers=people[who])
        assert r.status_code == 200, (path, r.text)
        conforms(doc, "get", template, r.json())
    assert (await api.get("/v1/approvals/inbox", headers=people["street"])).json()["total"] == 1
