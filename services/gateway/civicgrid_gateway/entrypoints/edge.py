"""The gateway's edge, as pure ASGI middleware around every route: the per-address rate limit
and the access log. (Request ids: request_ids.py; the per-principal limit: api/proxy.py, where
the token is verified.)"""
from __future__ import annotations

import ipaddress
import logging
import time

from opentelemetry import propagate
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from civicgrid_common.problems import TOO_MANY_REQUESTS, Problem
from civicgrid_common.web.problems import problem_response

from civicgrid_gateway.adapters.rate_limits import RateLimits

# Probes and scrapes come from the cluster itself, at their own pace: never limited nor logged.
UNMETERED = frozenset({"/healthz", "/readyz", "/metrics"})

access_log = logging.getLogger("civicgrid.gateway.access")


def _address(scope: Scope) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = (scope.get("client") or ("", 0))[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def _network(address: ipaddress.IPv4Address | ipaddress.IPv6Address, v4: int, v6: int) -> str:
    return str(ipaddress.ip_network((address, v4 if address.version == 4 else v6), strict=False))


def client_key(scope: Scope) -> str:
    """The client's address as one counts it: an IPv6 client holds a whole /64, so its /64."""
    address = _address(scope)
    return "unknown" if address is None else _network(address, 32, 64)


def too_many(retry_after: int, per: str) -> Problem:
    return Problem(TOO_MANY_REQUESTS, f"Too many requests from this {per}; wait {retry_after} s before the next.",
                   limit=per, headers={"Retry-After": str(retry_after)})


async def limit_principal(request: Request, subject: str) -> None:
    """The signed-in caller's request counted against the per-principal limit (429 over it)."""
    retry_after = await request.app.state.rate_limits.over("principal", subject)
    if retry_after is not None:
        raise too_many(retry_after, "principal")


def trace_headers(request: Request) -> list[tuple[str, str]]:
    """The W3C trace context to pass on: the gateway's own span, continuing the caller's trace,
    or with no tracing in this process the caller's context as it came."""
    trace: dict[str, str] = {}
    propagate.inject(trace)
    if "traceparent" not in trace:
        trace = {k: v for k in ("traceparent", "tracestate") if (v := request.headers.get(k)) is not None}
    return list(trace.items())


class AddressRateLimit:
    """Every request counted against its client's address first (the limits: bootstrap's
    RateLimits on app.state), and refused with 429 and Retry-After over the limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in UNMETERED:
            limits: RateLimits = scope["app"].state.rate_limits
            retry_after = await limits.over("address", client_key(scope))
            if retry_after is not None:
                await problem_response(too_many(retry_after, "address"))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def client_network(scope: Scope) -> str:
    """Where a request came from, no finer than a network (IPv4 /24, IPv6 /48): enough to see a
    flood's source, not enough to name a household (an address is personal information)."""
    address = _address(scope)
    return "unknown" if address is None else _network(address, 24, 48)


class AccessLog:
    """One JSON line a request (through the platform's redacting JSON handler): method, path,
    the query's parameter names but never their values (a query may hold a name or a number),
    status, duration, bytes sent, request id, the client's network, whether a token came. No
    token, no cookie, no body, no user agent. uvicorn's own access log is off in the gateway."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNMETERED:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer = {"status": 500, "bytes": 0}

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            names = sorted({pair.split("=", 1)[0] for pair in query.split("&") if pair})[:20]
            access_log.info("request", extra={
                "http_method": scope["method"], "http_path": scope["path"][:512], "query_names": names,
                "http_status": answer["status"], "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "bytes_sent": answer["bytes"], "request_id": scope.get("state", {}).get("request_id"),
                "client_network": client_network(scope),
                "authenticated": any(k == b"authorization" for k, _ in scope.get("headers", ())),
            })
