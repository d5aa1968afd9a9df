"""RFC 9457 problem details over HTTP: every error a service answers is application/problem+json
of a type from the one catalogue (civicgrid_common.problems).

`install_problem_handlers` answers, in one place for the whole app: a raised `Problem`; a domain's
`RuleViolation` (by its kind: 422 naming the field, 403, 404, 409); FastAPI's validation errors
(field by field); malformed JSON; the framework's 404/405; text PostgreSQL cannot store; and any
unexpected exception, as a bare 500 that leaks no internals (the log line and the answer carry
the trace id). It also serves the catalogue's pages at /problems/<slug>, so every type resolves.
"""
from __future__ import annotations

import html
import logging
from typing import Any, Mapping, Sequence

import asyncpg
from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as FastApiPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from civicgrid_common.web.routing import add_routes
from civicgrid_common.problems import (
    BY_SLUG,
    CATALOGUE,
    INTERNAL_ERROR,
    MALFORMED_BODY,
    NOT_FOUND,
    PROBLEM_MEDIA_TYPE,
    VALIDATION_ERROR,
    Problem,
    ProblemType,
    RuleViolation,
    json_pointer,
    status_title,
    type_for_status,
)

__all__ = ["PROBLEM_MEDIA_TYPE", "Problem", "field_errors", "install_problem_handlers", "json_pointer",
           "problem_response", "validation_problem"]

log = logging.getLogger("civicgrid.web")


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(problem.to_dict(), status_code=problem.status, headers=problem.headers,
                        media_type=PROBLEM_MEDIA_TYPE)


# --- OpenAPI: the shape of a problem, documented on every operation ---------------------

class FieldError(BaseModel):
    detail: str
    pointer: str | None = Field(None, description="JSON Pointer (RFC 6901) into the request body, as '#/a/0/b'")
    field: str | None = Field(None, description="name of the offending query, path, header or cookie parameter")
    in_: str | None = Field(None, alias="in", description="where `field` is: query, path, header or cookie")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details; further extension members may appear."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="one of the catalogue's types, /problems/<slug>: a page that says what it "
                                  "means and what to do")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str | None = Field(None, description="the domain's rule that refused the request, e.g. materials_incomplete")
    errors: list[FieldError] | None = Field(None, description="every field at fault")
    trace_id: str | None = Field(None, description="trace id of a 5xx, to quote when reporting it")


def _doc(description: str) -> dict[str, Any]:
    # No "model" here: FastAPI would also list it as application/json. The schema itself is
    # added to components by `_add_problem_schemas`.
    return {"description": description,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}}


# Passed as FastAPI(responses=...): replaces FastAPI's default 422 schema on every route.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: _doc("Validation error (problem+json, with an `errors` array)"),
    "4XX": _doc("Client error (problem+json)"),
    "5XX": _doc("Server error (problem+json)"),
}


def _add_problem_schemas(app: FastAPI) -> None:
    """Make app.openapi() define the ProblemDetails schema the error responses refer to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}",
                                                   mode="serialization")
        schemas.update(problem.pop("$defs", {}))
        schemas["ProblemDetails"] = problem
        schemas["ProblemTypeOut"] = ProblemTypeOut.model_json_schema(mode="serialization")
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# --- validation errors -> `errors` array --------------------------------------------------

def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for err in errors:
        loc = list(err.get("loc", ()))
        where = loc[0] if loc else "body"
        entry: dict[str, str] = {"detail": _message(err)}
        if where == "body":
            entry["pointer"] = json_pointer(loc[1:])
        else:
            entry["field"] = ".".join(str(p) for p in loc[1:])
            entry["in"] = str(where)
        out.append(entry)
    return out


def _message(err: Mapping[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        return "unknown field: this request has no such member"
    return str(err.get("msg", "invalid"))


def validation_problem(errors: Sequence[Mapping[str, Any]]) -> Problem:
    malformed = [e for e in errors if e.get("type") == "json_invalid"]
    if malformed:
        ctx = malformed[0].get("ctx") or {}
        reason = ctx.get("error", "not valid JSON")
        return Problem(MALFORMED_BODY, f"The request body is not valid JSON: {reason}")
    return Problem(VALIDATION_ERROR, "One or more fields are invalid; see `errors`.", errors=field_errors(errors))


# --- handlers -------------------------------------------------------------------------------

def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


async def _on_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc)


async def _on_rule_violation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RuleViolation)
    return problem_response(exc.problem())


# FastAPI's words when it cannot read a body it expected as JSON (not UTF-8, nested too deep).
_FASTAPI_PARSE_ERROR = "There was an error parsing the body"


async def _on_http_exception(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _FASTAPI_PARSE_ERROR:
        return problem_response(Problem(MALFORMED_BODY, "The request body cannot be read as UTF-8 JSON."))
    kind = type_for_status(exc.status_code)
    title = kind.title if kind.status == exc.status_code else status_title(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail not in (title, kind.title) else None
    return problem_response(Problem(kind, detail, status=exc.status_code, title=title, headers=exc.headers))


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(validation_problem(exc.errors()))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    trace_id = current_trace_id()
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    extra = {"trace_id": trace_id} if trace_id else {}
    return problem_response(Problem(INTERNAL_ERROR, "An unexpected error occurred; it has been logged.", **extra))


async def _on_unstorable_text(_: Request, exc: Exception) -> JSONResponse:
    # Text PostgreSQL cannot store that the body guard did not see (it refuses U+0000 and lone
    # surrogates in bodies and queries first, naming the field). The statement failed, so its
    # transaction rolled back.
    return problem_response(Problem(
        VALIDATION_ERROR, "A value contains a character that cannot be stored, such as U+0000 (NUL).",
        errors=[{"detail": "a character that cannot be stored"}]))


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RuleViolation, _on_rule_violation)
    for unstorable in (asyncpg.exceptions.CharacterNotInRepertoireError,
                       asyncpg.exceptions.UntranslatableCharacterError):
        app.add_exception_handler(unstorable, _on_unstorable_text)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    # Exception (not a subclass) goes to Starlette's outermost ServerErrorMiddleware.
    app.add_exception_handler(Exception, _on_unexpected)
    _add_problem_schemas(app)
    add_routes(app, problem_pages_router())


# --- the catalogue's pages: every type URI resolves ------------------------------------------

class ProblemTypeOut(BaseModel):
    type: str
    slug: str
    title: str
    status: int
    summary: str
    advice: str


def _out(t: ProblemType) -> ProblemTypeOut:
    return ProblemTypeOut(type=t.uri, slug=t.slug, title=t.title, status=t.status, summary=t.summary,
                          advice=t.advice)


def _page(t: ProblemType) -> str:
    e = html.escape
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(t.title)}</title></head>'
            f'<body><p><a href="/problems/">civicgrid problem types</a></p><h1>{e(t.title)}</h1>'
            f"<p><code>{e(t.uri)}</code> &middot; HTTP {t.status}</p><h2>When</h2><p>{e(t.summary)}</p>"
            f"<h2>What to do</h2><p>{e(t.advice)}</p></body></html>")


def _index() -> str:
    rows = "".join(f'<tr><td><a href="{t.uri}">{t.slug}</a></td><td>{t.status}</td><td>{html.escape(t.summary)}'
                   "</td></tr>" for t in CATALOGUE)
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>civicgrid problem types</title>'
            "</head><body><h1>Problem types</h1><p>Every error civicgrid answers is RFC 9457 "
            "<code>application/problem+json</code> of one of these types. <code>code</code> names the rule; "
            "<code>errors</code> names each field at fault.</p><table><tr><th>type</th><th>status</th><th>when"
            f"</th></tr>{rows}</table></body></html>")


def problem_pages_router() -> APIRouter:
    router = APIRouter(prefix="/problems", tags=["problems"])

    @router.get("/", response_class=HTMLResponse, summary="Every problem type (HTML; JSON with Accept)",
                responses={200: {"content": {"application/json": {
                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/ProblemTypeOut"}}}}}})
    async def problem_types(request: Request) -> Any:
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse([_out(t).model_dump() for t in CATALOGUE])
        return HTMLResponse(_index())

    @router.get("/{slug}", response_class=HTMLResponse, summary="What one problem type means and what to do",
                responses={200: {"content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ProblemTypeOut"}}}}})
    async def problem_type(request: Request, slug: str = FastApiPath(max_length=64)) -> Any:
        found = BY_SLUG.get(slug)
        if found is None:
            raise Problem(NOT_FOUND, "no such problem type")
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(_out(found).model_dump())
        return HTMLResponse(_page(found))

    return router
