"""The Open311 routes: `open311_router(port, jurisdiction=..., discovery=...)`.

The router only speaks the wire format; what a request does is the port's business (the
intake application: complaints, applicants, the event store). Every refusal is an error
body in the requested format with the specification's HTTP status (403 api_key, 404 not
found, 400 anything else); an unknown format extension is a 404 in XML, the required format.
"""
from __future__ import annotations

from typing import Annotated, Callable, Protocol, Sequence
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Request, Response

from civicgrid_common.clock import Clock, utc_now

from civicgrid_intake.domain.complaint import ComplaintError
from civicgrid_intake.entrypoints.open311 import parsing, render
from civicgrid_intake.entrypoints.open311.model import (
    MAX_RESULTS,
    CreatedRequest,
    Discovery,
    Error,
    Format,
    Jurisdiction,
    NewRequestUpdate,
    NewServiceRequest,
    Open311Failure,
    RequestQuery,
    RequestUpdate,
    Service,
    ServiceRequest,
    TokenResult,
    UpdatesQuery,
)

MAX_FORM_BYTES = 64 * 1024


class Open311Port(Protocol):
    """What the intake application offers Open311."""

    async def services(self) -> Sequence[Service]: ...

    async def create(self, request: NewServiceRequest) -> CreatedRequest: ...

    async def requests(self, query: RequestQuery) -> Sequence[ServiceRequest]: ...

    async def request(self, service_request_id: str) -> ServiceRequest | None: ...

    async def token(self, token: str) -> TokenResult | None: ...

    async def updates(self, query: UpdatesQuery) -> Sequence[RequestUpdate]: ...

    async def post_update(self, update: NewRequestUpdate) -> str | None:
        """Record the resident's update; the update_id it gets, None if there is no such request."""


# Path segments a request controls, bounded (a format extension, codes and ids of GeoReport v2).
Extension = Annotated[str, Path(max_length=8, description="json or xml")]
Open311Code = Annotated[str, Path(max_length=64)]


def _format(ext: str) -> Format:
    try:
        return Format(ext)
    except ValueError:
        raise Open311Failure(404, [Error(404, f"format {ext!r} is not supported; use xml or json")]) from None


def _respond(body: render.Body, status: int = 200) -> Response:
    content, media_type = body
    return Response(content=content, status_code=status, media_type=media_type)


def _failure(failure: Open311Failure, fmt: Format) -> Response:
    return _respond(render.render_errors(failure.errors, fmt), failure.status)


# GeoReport v2 answers errors in its own format, not problem+json: say so in the OpenAPI
# document (these replace the app-wide problem+json entries on the Open311 routes).
_OPEN311_ERROR_ITEM = {"type": "object", "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
                       "required": ["code", "description"]}
_OPEN311_ERRORS = {
    "description": "Open311 GeoReport v2 errors: <errors><error><code/><description/></error></errors> "
                   "in XML, [{\"code\", \"description\"}] in JSON; the format follows the path's extension "
                   "(XML when the extension is not one of xml or json)",
    "content": {"text/xml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": _OPEN311_ERROR_ITEM}}},
}
OPEN311_RESPONSES: dict[int | str, dict] = {
    200: {"description": "the resource in the format of the path's extension",
          "content": {"text/xml": {"schema": {"type": "string"}}, "application/json": {}}},
    "4XX": _OPEN311_ERRORS,
}


def open311_router(
    port: Open311Port,
    *,
    jurisdiction: Jurisdiction,
    discovery: Discovery,
    clock: Clock = utc_now,
    prefix: str = "/open311/v2",
) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["open311"], responses=OPEN311_RESPONSES)

    async def guarded(ext: str, handler: Callable[[Format], object]) -> Response:
        fmt = Format.XML
        try:
            fmt = _format(ext)
            return await handler(fmt)  # type: ignore[misc]
        except Open311Failure as failure:
            return _failure(failure, fmt)
        except ComplaintError as e:  # the domain refused what the wire format allowed
            return _failure(Open311Failure(400, [Error(400, str(e))]), fmt)

    def query(request: Request) -> list[tuple[str, str]]:
        return list(request.query_params.multi_items())

    async def services_by_code() -> dict[str, Service]:
        return {s.service_code: s for s in await port.services()}

    @router.get("/discovery.{ext}")
    async def get_discovery(ext: Extension) -> Response:
        async def handle(fmt: Format) -> Response:
            return _respond(render.render_discovery(discovery, fmt))
        return await guarded(ext, handle)

    @router.get("/services.{ext}")
    async def get_services(ext: Extension, request: Request) -> Response:
        async def handle(fmt: Format) -> Response:
            parsing.check_jurisdiction(query(request), jurisdiction)
            return _respond(render.render_services(await port.services(), fmt))
        return await guarded(ext, handle)

    @router.get("/services/{service_code}.{ext}")
    async def get_service_definition(service_code: Open311Code, ext: Extension, request: Request) -> Response:
        async def handle(fmt: Format) -> Response:
            parsing.check_jurisdiction(query(request), jurisdiction)
            service = (await services_by_code()).get(service_code)
            if service is None:
                raise Open311Failure(404, [Error(404, f"service_code {service_code!r} was not found")])
            return _respond(render.render_service_definition(service, fmt))
        return await guarded(ext, handle)

    @router.post("/requests.{ext}")
    async def post_request(ext: Extension, request: Request) -> Response:
        async def handle(fmt: Format) -> Response:
            form = parsing.with_query_credentials(await _form(request), query(request))
            new = parsing.parse_create(form, await services_by_code(), jurisdiction)
            return _respond(render.render_created(await port.create(new), fmt))
        return await guarded(ext, handle)

    @router.get("/requests.{ext}")
    async def get_requests(ext: Extension, request: Request) -> Response:
        async def handle(fmt: Format) -> Response:
            q = parsing.parse_requests_query(query(request), clock(), jurisdiction)
            found = list(await port.requests(q))[: min(q.limit, MAX_RESULTS)]
            return _respond(render.render_requests(found, fmt))
        return await guarded(ext, handle)

    @router.get("/requests/{service_request_id}.{ext}")
    async def get_request(service_request_id: Open311Code, ext: Extension, request: Request) -> Response:
        async def handle(fmt: Format) -> Response:
            parsing.check_jurisdiction(query(request), jurisdiction)
            found = await port.request(service_request_id)
            if found is None:
                raise Open311Failure(404, [Error(404, f"service_request_id {service_request_id!r} was not found")])
            return _respond(render.render_requests([found], fmt))
        return await guarded(ext, handle)

    @router.get("/tokens/{token}.{ext}")
    async def get_token(token: Open311Code, ext: Extension, request: Request) -> Response:
        async def handle(fmt: Format) -> Response:
            parsing.check_jurisdiction(query(request), jurisdiction)
            found = await port.token(token)
            if found is None:
                raise Open311Failure(404, [Error(404, f"token {token!r} was not found")])
            return _respond(render.render_token(found, fmt))
        return await guarded(ext, handle)

    @router.get("/servicerequestupdates.{ext}")
    async def get_updates(ext: Extension, request: Request) -> Response:
        async def handle(fmt: Format) -> Response:
            q = parsing.parse_updates_query(query(request), clock(), jurisdiction)
            found = list(await port.updates(q))[: min(q.limit, MAX_RESULTS)]
            return _respond(render.render_updates(found, fmt))
        return await guarded(ext, handle)

    @router.post("/servicerequestupdates.{ext}")
    async def post_update(ext: Extension, request: Request) -> Response:
        """FixMyStreet's extension: the resident's update on a closed request, taken as a rating."""
        async def handle(fmt: Format) -> Response:
            form = parsing.with_query_credentials(await _form(request), query(request))
            update = parsing.parse_update_post(form, jurisdiction)
            update_id = await port.post_update(update)
            if update_id is None:
                raise Open311Failure(404, [Error(404, f"service_request_id {update.service_request_id!r} "
                                                      "was not found")])
            return _respond(render.render_posted_update(update_id, fmt))
        return await guarded(ext, handle)

    return router


async def _form(request: Request) -> list[tuple[str, str]]:
    """The POST body as application/x-www-form-urlencoded pairs, UTF-8 as the spec requires."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Open311Failure(400, [Error(400, "send the request as application/x-www-form-urlencoded; charset=utf-8")])
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Open311Failure(400, [Error(400, f"the request body is larger than {MAX_FORM_BYTES} bytes")])
    try:
        text = bytes(body).decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise Open311Failure(400, [Error(400, "the request body is not UTF-8 form data")]) from None
