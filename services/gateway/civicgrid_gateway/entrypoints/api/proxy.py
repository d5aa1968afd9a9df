"""The proxy routes: /api/<service>/... to the service's own path, /open311/v2/... to intake's.

A route does no more than it must (the gateway's ratio to a direct call is a benchmark): the
path resolved, the token verified (not for Open311), the headers passed on without the
connection's own, the body and the answer streamed."""
from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from civicgrid_common.problems import NOT_FOUND, REQUEST_TOO_LARGE, UNAVAILABLE, Problem

from civicgrid_gateway.adapters.proxy import BodyTooLarge, UpstreamUnavailable, Upstreams
from civicgrid_gateway.domain.routes import HOP_BY_HOP, may_retry, resolve
from civicgrid_gateway.entrypoints.api.sign_in import authenticated
from civicgrid_gateway.entrypoints.edge import limit_principal, trace_headers

# The upstream's answer headers the gateway does not return: the connection's own, and what its
# server sets again (Date, Server) or the gateway sets (X-Request-Id).
_NOT_RETURNED = frozenset(name.encode("latin-1") for name in HOP_BY_HOP | {"date", "server", "x-request-id"})
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Set by the gateway, never taken from the caller; and the browser's cookies (the gateway's
# session, whatever else the console's origin set) and CSRF token, which are for the gateway only.
_OWN = HOP_BY_HOP | {"x-request-id", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded",
                     "traceparent", "tracestate", "cookie", "x-csrf-token"}


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return "transfer-encoding" in request.headers or (length is not None and length.strip() not in ("", "0"))


async def proxy(request: Request) -> Response:
    upstreams: Upstreams = request.app.state.upstreams
    # The path as the caller wrote it (an escaped "/" stays escaped for the service to judge).
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    target = resolve(raw_path.decode("latin-1"), upstreams.names)
    if target is None:
        raise Problem(NOT_FOUND, "No service of this gateway serves this path: the APIs are under "
                                 f"/api/<service>/ ({', '.join(sorted(upstreams.names))}) and Open311 under /open311/v2/.")
    renewed_session = None
    headers = [(k, v) for k, v in request.headers.items() if k not in _OWN]
    if not target.public:
        principal, authorization, renewed_session = await authenticated(request)
        if "authorization" not in request.headers:
            # A signed-in browser: the session's token goes on in its stead (the browser never holds one).
            headers.append(("authorization", authorization))
        await limit_principal(request, principal.subject)
    headers.append(("x-request-id", request.state.request_id))
    client = request.client.host if request.client else "unknown"
    headers += [("x-forwarded-for", client), ("x-forwarded-proto", request.url.scheme),
                ("x-forwarded-host", request.headers.get("host", ""))]
    headers += trace_headers(request)
    has_body = _has_body(request)
    try:
        answer = await upstreams.send(target.upstream, request.method, target.path, request.scope["query_string"],
                                      headers, request.stream() if has_body else None,
                                      retry=may_retry(request.method, has_body), stream=target.stream)
    except UpstreamUnavailable as exc:
        raise Problem(UNAVAILABLE, f"The {exc.upstream} service is not answering ({exc.reason}); "
                                   "its other routes and the other services' are not affected.",
                      upstream=exc.upstream, headers={"Retry-After": str(exc.retry_after)}) from exc
    except BodyTooLarge as exc:
        raise Problem(REQUEST_TOO_LARGE, f"The request body exceeds the limit of {exc.limit} bytes.",
                      max_bytes=exc.limit) from exc
    response = StreamingResponse(answer.body(), status_code=answer.status, background=BackgroundTask(answer.close))
    # The upstream's headers as they are (a repeated one such as Set-Cookie stays repeated).
    response.raw_headers = [(k, v) for k, v in answer.raw_headers if k.lower() not in _NOT_RETURNED]
    if renewed_session is not None:
        response.raw_headers.append((b"set-cookie", renewed_session.encode("latin-1")))
    return response
