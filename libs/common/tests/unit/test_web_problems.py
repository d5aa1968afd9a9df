"""Every error is RFC 9457 problem+json: raised Problems, HTTPExceptions, validation errors
with field-level detail, malformed JSON, 404/405 and unexpected exceptions (no internals)."""
from __future__ import annotations

import logging
from typing import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

from civicgrid_common.problems import CATALOGUE, NOT_FOUND, STALE_VERSION, VALIDATION_ERROR
from civicgrid_common.settings import PlatformSettings
from civicgrid_common.web.app import create_app
from civicgrid_common.web.problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    field_errors,
    json_pointer,
    validation_problem,
)

SECRET = "password=hunter2 at db.internal:5432"


class Applicant(BaseModel):
    name: str = Field(min_length=1)
    age: int = Field(gt=0)


class Registration(BaseModel):
    affair: str
    applicants: list[Applicant]


def build_app() -> FastAPI:
    app = create_app(PlatformSettings(), title="problems", version="0", idempotency=False)

    @app.post("/registrations", status_code=201)
    async def register(body: Registration, limit: int = Query(10, le=100)) -> dict:
        return {"affair": body.affair}

    @app.get("/stale")
    async def stale() -> None:
        raise Problem(STALE_VERSION, "The case changed since you read it.", instance="/cases/42",
                      expected_version=3, actual_version=4)

    @app.get("/gone")
    async def gone() -> None:
        raise HTTPException(410, "This receipt was withdrawn.", headers={"X-Hint": "ask-the-window"})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(SECRET)

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: Starlette re-raises a 500's exception after answering,
    # for the server to log; the client sees the answer, as a real one would.
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        yield c


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["status"] == status
    return body


async def test_raised_problem_keeps_its_members_and_extensions(client) -> None:
    body = problem(await client.get("/stale"), 409)
    assert body == {"type": "/problems/stale-version", "title": "Stale version",
                    "status": 409, "detail": "The case changed since you read it.", "instance": "/cases/42",
                    "expected_version": 3, "actual_version": 4}


async def test_http_exception_becomes_a_problem_with_its_status_and_headers(client) -> None:
    r = await client.get("/gone")
    assert problem(r, 410) == {"type": "/problems/bad-request", "title": "Gone", "status": 410,
                               "detail": "This receipt was withdrawn."}
    assert r.headers["x-hint"] == "ask-the-window"


async def test_validation_errors_point_at_each_field(client) -> None:
    r = await client.post("/registrations", params={"limit": 1000},
                          json={"applicants": [{"name": "张三", "age": 30}, {"name": "", "age": -1}]})
    body = problem(r, 422)
    assert body["type"] == "/problems/validation-error"
    where = {e.get("pointer") or f'{e["in"]}:{e["field"]}' for e in body["errors"]}
    assert where == {"#/affair", "#/applicants/1/name", "#/applicants/1/age", "query:limit"}
    assert all(e["detail"] for e in body["errors"])


async def test_malformed_json_is_400(client) -> None:
    r = await client.post("/registrations", content=b'{"affair": "dibao",',
                          headers={"content-type": "application/json"})
    body = problem(r, 400)
    assert body["type"] == "/problems/malformed-body"
    assert "not valid JSON" in body["detail"]


async def test_unknown_path_is_404_and_wrong_method_405(client) -> None:
    assert problem(await client.get("/nowhere"), 404)["title"] == "Not Found"
    r = await client.delete("/registrations")
    assert problem(r, 405)["title"] == "Method Not Allowed"
    assert r.headers["allow"] == "POST"


async def test_unexpected_exception_is_500_without_internals_and_is_logged(client, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="civicgrid.web"):
        r = await client.get("/boom")
    body = problem(r, 500)
    assert SECRET not in r.text and "RuntimeError" not in r.text
    assert body["type"] == "/problems/internal-error"
    logged = [rec for rec in caplog.records if rec.name == "civicgrid.web"]
    assert logged and logged[0].exc_info is not None and SECRET in str(logged[0].exc_info[1])


async def test_openapi_documents_problem_responses(client) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    responses = doc["paths"]["/registrations"]["post"]["responses"]
    for status in ("422", "4XX", "5XX"):
        assert list(responses[status]["content"]) == [PROBLEM_MEDIA_TYPE]
        assert responses[status]["content"][PROBLEM_MEDIA_TYPE]["schema"]["$ref"] == "#/components/schemas/ProblemDetails"
    schema = doc["components"]["schemas"]["ProblemDetails"]
    assert {"type", "title", "status", "detail", "errors"} <= set(schema["properties"])
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_json_pointer_escapes_per_rfc_6901() -> None:
    assert json_pointer(["a/b", "m~n", 0]) == "#/a~1b/m~0n/0"
    assert json_pointer([]) == "#"


def test_field_errors_for_body_and_parameters() -> None:
    errors = [{"loc": ("body", "applicants", 0, "age"), "msg": "must be > 0", "type": "greater_than"},
              {"loc": ("header", "x-window"), "msg": "required", "type": "missing"}]
    assert field_errors(errors) == [{"detail": "must be > 0", "pointer": "#/applicants/0/age"},
                                    {"detail": "required", "field": "x-window", "in": "header"}]
    assert validation_problem(errors).status == 422


def test_bare_problem_takes_its_types_title() -> None:
    assert Problem(NOT_FOUND).to_dict() == {"type": "/problems/not-found", "title": "Not Found", "status": 404}
    assert Problem(VALIDATION_ERROR, errors=[]).to_dict()["errors"] == []


async def test_every_problem_type_resolves_to_its_page(client) -> None:
    """Each type URI of the catalogue is a page saying when it happens and what to do, as HTML
    for a person and as JSON for a program; an unknown slug is itself a not-found problem."""
    index = await client.get("/problems/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    for kind in CATALOGUE:
        assert kind.uri in index.text
        page = await client.get(kind.uri)
        assert page.status_code == 200 and kind.title in page.text and str(kind.status) in page.text
        described = (await client.get(kind.uri, headers={"Accept": "application/json"})).json()
        assert described == {"type": kind.uri, "slug": kind.slug, "title": kind.title, "status": kind.status,
                             "summary": kind.summary, "advice": kind.advice}
    assert problem(await client.get("/problems/no-such-type"), 404)["type"] == "/problems/not-found"
