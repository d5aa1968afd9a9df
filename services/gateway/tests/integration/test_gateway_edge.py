"""The gateway's edge on the app as it is built for `make up`: rate limits per client address and
per signed-in principal (429 problem+json with Retry-After), CORS for the configured front-end
origins only, and the access log without personal data. Intake is down here (nothing listens on
its port): what is asserted happens before a request would reach it."""
from __future__ import annotations

import json
import logging
import socket
from contextlib import asynccontextmanager

import httpx

from civicgrid_gateway.config import GatewaySettings
from civicgrid_gateway.entrypoints.main import build_app

CONSOLE = "https://console.example.org"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def gateway(**settings):
    app = build_app(GatewaySettings(upstreams={"intake": f"http://127.0.0.1:{_free_port()}"}, **settings))
    async with app.router.lifespan_context(app):
        def client(address: str = "203.0.113.7") -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)),
                                     base_url="http://gateway")
        yield client


def assert_too_many(response: httpx.Response, per: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    problem = response.json()
    assert problem["type"].endswith("/too-many-requests") and problem["limit"] == per


async def test_an_address_over_its_limit_is_told_to_wait_and_others_are_not():
    async with gateway(rate_limit_per_address="5/minute") as client:
        async with client() as flood, client("198.51.100.9") as other:
            assert [(await flood.get("/contracts/")).status_code for _ in range(5)] == [200] * 5
            assert_too_many(await flood.get("/contracts/"), "address")
            assert_too_many(await flood.post("/open311/v2/requests.json", data={"x": "1"}), "address")
            assert (await flood.get("/healthz")).status_code == 200  # probes are never limited
            assert (await other.get("/contracts/")).status_code == 200


async def test_a_principal_over_its_limit_is_told_to_wait_from_any_address(token):
    async with gateway(rate_limit_per_principal="3/minute") as client:
        wang = token("window_clerk", "320104001", subject="clerk-wang")
        li = token("window_clerk", "320104001", subject="clerk-li")
        async with client() as desk, client("198.51.100.9") as phone:
            # counted once the token is verified, before the (down) service is tried: 503 is its answer
            assert [(await desk.get("/api/intake/v1/cases", headers=wang)).status_code for _ in range(3)] == [503] * 3
            assert_too_many(await phone.get("/api/intake/v1/cases", headers=wang), "principal")
            assert (await desk.get("/api/intake/v1/cases", headers=li)).status_code == 503
            # an unverified token is refused as such and counts for no one
            forged = {"Authorization": "Bearer x.y.z"}
            assert (await desk.get("/api/intake/v1/cases", headers=forged)).status_code == 401


async def test_cors_answers_the_configured_console_only_and_lets_it_read_a_429():
    async with gateway(cors_origins=[CONSOLE], rate_limit_per_address="2/minute") as client:
        async with client() as browser:
            preflight = await browser.options("/api/intake/v1/cases", headers={
                "Origin": CONSOLE, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == CONSOLE
            assert preflight.headers["access-control-allow-credentials"] == "true"
            assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()
            evil = await browser.options("/api/intake/v1/cases", headers={
                "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
            assert "access-control-allow-origin" not in evil.headers
            ok = await browser.get("/contracts/", headers={"Origin": CONSOLE})
            assert ok.headers["access-control-allow-origin"] == CONSOLE
            assert "x-request-id" in ok.headers["access-control-expose-headers"].lower()
            await browser.get("/contracts/", headers={"Origin": CONSOLE})
            refused = await browser.get("/contracts/", headers={"Origin": CONSOLE})
            assert_too_many(refused, "address")
            assert refused.headers["access-control-allow-origin"] == CONSOLE
            assert "retry-after" in refused.headers["access-control-expose-headers"].lower()
    async with gateway() as client:  # no origins configured: no CORS at all
        async with client() as browser:
            r = await browser.get("/contracts/", headers={"Origin": CONSOLE})
            assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def test_the_access_log_says_what_happened_and_nothing_personal(token, caplog):
    me = token("window_clerk", "320104001", subject="clerk-wang")
    secret_query = "identity_number=110101199003077777&name=%E5%BC%A0%E4%B8%89&phone=13800000000"
    async with gateway() as client:
        async with client("203.0.113.77") as desk:
            with caplog.at_level(logging.INFO, logger="civicgrid.gateway.access"):
                r = await desk.get(f"/api/intake/v1/applicants?{secret_query}",
                                   headers={**me, "X-Request-Id": "desk-7", "User-Agent": "Mozilla/5.0 (clerk)"})
                await desk.get("/healthz")
    assert r.status_code == 503
    [line] = [rec for rec in caplog.records if rec.name == "civicgrid.gateway.access"]
    assert (line.http_method, line.http_path, line.http_status) == ("GET", "/api/intake/v1/applicants", 503)
    assert line.query_names == ["identity_number", "name", "phone"]
    assert line.request_id == "desk-7" and line.authenticated is True
    assert line.client_network == "203.0.113.0/24" and line.duration_ms >= 0 and line.bytes_sent > 0
    written = json.dumps({k: str(v) for k, v in vars(line).items()}, ensure_ascii=False)
    for personal in ("110101199003077777", "张三", "%E5%BC%A0", "13800000000", "203.0.113.77", "Mozilla",
                     me["Authorization"].split()[1], "clerk-wang"):
        assert personal not in written, personal
