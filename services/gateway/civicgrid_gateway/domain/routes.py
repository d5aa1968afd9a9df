"""What the gateway serves where (路由表). Pure: no I/O.

Every service's API is under `/api/<service>/`, the service's own path after it
(`/api/intake/v1/cases` is intake's `/v1/cases`); Open311 GeoReport v2 keeps its public path
`/open311/v2/...` (intake's), where clients that know nothing of our tokens authenticate with
their Open311 `api_key`. Everything under `/api/` needs a bearer token, checked here before the
request goes on (the service checks it again: defence in depth).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

OPEN311_PREFIX = "/open311/v2"
API_PREFIX = "/api/"
# Headers that belong to one connection, not to the request (RFC 9110 §7.6.1), and what the
# gateway sets itself.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade", "host",
})
# Methods whose repetition changes nothing (RFC 9110 §9.2.2); only bodiless ones are tried again,
# since a streamed body cannot be sent twice.
RETRYABLE = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class Target:
    upstream: str  # the service's name
    path: str  # its own path
    public: bool = False  # served without a bearer token (Open311: its api_key)
    stream: bool = False  # a live stream (server-sent events): no read timeout


def resolve(path: str, upstreams: frozenset[str] | set[str]) -> Target | None:
    """Where a request for `path` goes; None when no service serves it."""
    if path == OPEN311_PREFIX or path.startswith(OPEN311_PREFIX + "/"):
        return Target("intake", path, public=True) if "intake" in upstreams else None
    if not path.startswith(API_PREFIX):
        return None
    name, _, rest = path[len(API_PREFIX):].partition("/")
    if name not in upstreams or not rest:
        return None
    own = "/" + rest
    return Target(name, own, stream=own.endswith("/stream"))


def may_retry(method: str, has_body: bool) -> bool:
    return method.upper() in RETRYABLE and not has_body


def request_id(given: str | None) -> str:
    """The caller's X-Request-Id when it is a sane one, else a new one."""
    if given is not None and REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex
