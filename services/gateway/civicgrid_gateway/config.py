"""gateway's settings: the platform's (CIVICGRID_* environment variables) plus its upstreams."""
from __future__ import annotations

from pathlib import Path

from limits import parse_many
from pydantic import Field, field_validator

from civicgrid_common.paths import project_root
from civicgrid_common.settings import PlatformSettings


class GatewaySettings(PlatformSettings):
    service_name: str = "gateway"
    http_port: int = 8000
    # Each upstream's base URL, by the prefix the gateway serves it under (/api/<name>/...).
    upstreams: dict[str, str] = {
        "intake": "http://127.0.0.1:8001",
        "approval": "http://127.0.0.1:8002",
        "grid": "http://127.0.0.1:8003",
        "notifications": "http://127.0.0.1:8004",
        "statistics": "http://127.0.0.1:8005",
    }
    # Seconds: to connect to an upstream, and to wait for its answer (per read). A live stream
    # (a path ending in /stream) waits for ever: its upstream sends keep-alives.
    connect_timeout: float = Field(2.0, gt=0, le=60)
    read_timeout: float = Field(30.0, gt=0, le=600)
    # Connections kept open to each upstream, so that a request reuses one instead of dialling.
    pool_connections: int = Field(100, ge=1, le=10_000)
    # A bodiless idempotent request (GET, HEAD, OPTIONS, DELETE) that could not reach its
    # upstream is tried this many times in all; nothing else is tried again.
    attempts: int = Field(2, ge=1, le=5)
    # The circuit per upstream: this many transport failures in a row open it for the cool-down
    # (doubling while it keeps failing), during which its routes answer 503 at once.
    circuit_failures: int = Field(5, ge=1, le=1000)
    circuit_cooldown_seconds: float = Field(10.0, gt=0, le=3600)
    circuit_max_cooldown_seconds: float = Field(120.0, gt=0, le=86_400)
    # The most a request body may hold on its way through (the upstream applies its own limit).
    max_proxied_body_bytes: int = Field(25 * 1024 * 1024, ge=1, le=1024 ** 3)

    # Rate limits in the `limits` package's notation ("20/second;600/minute": every one holds),
    # counted in sliding windows. Per client address (the edge's X-Forwarded-For where uvicorn
    # trusts it: FORWARDED_ALLOW_IPS, 127.0.0.1 by default), before anything else; per signed-in
    # principal (the token's subject), once the token is verified. An address serves many
    # people (a community office behind one NAT), so its limit is the larger. Over a limit:
    # 429 problem+json with Retry-After.
    rate_limit_per_address: str = "100/second;3000/minute"
    rate_limit_per_principal: str = "30/second;900/minute"
    # Where the counts live: "memory://" counts per gateway replica (n replicas allow n times
    # the limit); a shared store ("redis://host:6379", see the limits package) counts them once.
    rate_limit_storage: str = "memory://"
    # Front-end origins a browser may call the gateway from (CORS), e.g. a console served from
    # its own host during development; none by default: the console is served by the gateway.
    cors_origins: list[str] = []

    # Sign-in for the console (entrypoints/api/sign_in.py): the gateway's own client at the
    # identity provider (oidc_issuer, oidc_client_id and oidc_client_secret, PlatformSettings';
    # none set: no sign-in, only bearer tokens), the origin browsers reach the gateway at (the
    # redirect URI registered at the client is {public_url}/auth/callback), and the session
    # cookies' key file (CIVICGRID_SESSION_KEY_FILE, made by the gateway's key command; unset:
    # the local stack's .local/keys/gateway-session.key, made if missing; elsewhere unset refuses
    # to start, since replicas must share it).
    public_url: str = "http://127.0.0.1:8000"
    session_key_file: Path | None = None
    # Cookies marked Secure: a browser sends them over https only, and to http://127.0.0.1 (a
    # secure context). Off only for a gateway reached over plain http at another address.
    session_cookie_secure: bool = True

    # The console's build (services/gateway/console/dist, made by `make up`), served at /; an
    # image copies it to /app/console (CIVICGRID_CONSOLE_DIR).
    console_dir: Path = Field(default_factory=lambda: project_root() / "services" / "gateway" / "console" / "dist")

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or value.count("/") != 2:
            raise ValueError(f"{value!r} is not an origin (scheme://host[:port], no path)")
        return value

    @field_validator("rate_limit_per_address", "rate_limit_per_principal")
    @classmethod
    def _limits(cls, value: str) -> str:
        parse_many(value)  # ValueError names what it could not read
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*" or not origin.startswith(("https://", "http://")) or origin.count("/") != 2:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path, no wildcard: "
                                 "the console sends credentials)")
        return value
