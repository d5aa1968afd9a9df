"""RFC 9457 problem details: every error a service answers is application/problem+json.

Services raise `Problem(...)` for their own errors; `install_problem_handlers` turns that,
FastAPI's HTTPException and validation errors, malformed JSON, 404/405 and any unexpected
exception into a problem document. Unexpected exceptions answer a bare 500 that leaks no
internals; the log line (and the response) carry the trace id to find it.
"""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Mapping, Sequence

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Our problem types are URNs: stable identifiers a client can switch on, never dereferenced.
PROBLEM_TYPE_BASE = "urn:civicgrid:problem:"
VALIDATION_ERROR = PROBLEM_TYPE_BASE + "validation-error"
MALFORMED_BODY = PROBLEM_TYPE_BASE + "malformed-body"
INTERNAL_ERROR = PROBLEM_TYPE_BASE + "internal-error"

log = logging.getLogger("civicgrid.web")


def status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Problem(Exception):
    """An error answered as problem+json. `extra` holds extension members (RFC 9457 §3.2)."""

    def __init__(
        self,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        *,
        type: str = "about:blank",
        instance: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.status = status
        self.title = title or status_title(status)
        self.detail = detail
        self.type = type
        self.instance = instance
        self.headers = dict(headers or {})
        self.extra = extra
        super().__init__(detail or self.title)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail is not None:
            body["detail"] = self.detail
        if self.instance is not None:
            body["instance"] = self.instance
        body.update(self.extra)
        return body

    def response(self) -> JSONResponse:
        return JSONResponse(self.to_dict(), status_code=self.status, headers=self.headers,
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
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(None, description="field-level detail of a validation error")
    trace_id: str | None = Field(None, description="trace id of a 5xx, to quote when reporting it")


def _doc(description: str) -> dict[str, Any]:
    # No "model" here: FastAPI would also list it as application/json. The schema itself is
    # added to components by `add_problem_schemas`.
    return {"description": description,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}}


def add_problem_schemas(app: FastAPI) -> None:
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
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# Passed as FastAPI(responses=...): replaces FastAPI's default 422 schema on every route.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: _doc("Validation error (problem+json, with an `errors` array)"),
    "4XX": _doc("Client error (problem+json)"),
    "5XX": _doc("Server error (problem+json)"),
}


# --- validation errors -> `errors` array --------------------------------------------------

def json_pointer(path: Sequence[str | int]) -> str:
    """A URI-fragment JSON Pointer for a location in the body, as in RFC 9457's example."""
    return "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for err in errors:
        loc = list(err.get("loc", ()))
        where = loc[0] if loc else "body"
        entry: dict[str, str] = {"detail": str(err.get("msg", "invalid"))}
        if where == "body":
            entry["pointer"] = json_pointer(loc[1:])
        else:
            entry["field"] = ".".join(str(p) for p in loc[1:])
            entry["in"] = str(where)
        out.append(entry)
    return out


def validation_problem(errors: Sequence[Mapping[str, Any]]) -> Problem:
    malformed = [e for e in errors if e.get("type") == "json_invalid"]
    if malformed:
        ctx = malformed[0].get("ctx") or {}
        reason = ctx.get("error", "not valid JSON")
        return Problem(400, "Malformed request body", f"The request body is not valid JSON: {reason}",
                       type=MALFORMED_BODY)
    return Problem(422, "Request is not valid", "One or more fields are invalid; see `errors`.",
                   type=VALIDATION_ERROR, errors=field_errors(errors))


# --- handlers -------------------------------------------------------------------------------

def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


async def _on_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return exc.response()


async def _on_http_exception(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != status_title(exc.status_code) else None
    problem = Problem(exc.status_code, detail=detail, headers=exc.headers)
    return problem.response()


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(exc.errors()).response()


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    trace_id = current_trace_id()
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    extra = {"trace_id": trace_id} if trace_id else {}
    return Problem(500, detail="An unexpected error occurred; it has been logged.",
                   type=INTERNAL_ERROR, title="Internal Server Error", **extra).response()


async def _on_unstorable_text(_: Request, exc: Exception) -> JSONResponse:
    # PostgreSQL cannot store U+0000 in text or jsonb (and refuses text its encoding lacks):
    # bad input, found by fuzzing as a 500. The statement failed, so its transaction rolled back.
    return Problem(422, "Request is not valid",
                   "A value contains a character that cannot be stored, such as U+0000 (NUL).",
                   type=VALIDATION_ERROR).response()


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    for unstorable in (asyncpg.exceptions.CharacterNotInRepertoireError,
                       asyncpg.exceptions.UntranslatableCharacterError):
        app.add_exception_handler(unstorable, _on_unstorable_text)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    # Exception (not a subclass) goes to Starlette's outermost ServerErrorMiddleware.
    app.add_exception_handler(Exception, _on_unexpected)
    add_problem_schemas(app)
