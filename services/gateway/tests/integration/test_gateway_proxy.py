"""The gateway in front of a real service (notifications, on a fresh database, over uvicorn) and
an upstream that is down (nothing listens on its port): what the caller sends arrives, what the
service answers comes back unchanged, the token is checked first, an upstream that is down answers
503 problem+json with Retry-After on its own routes only, and its circuit then answers at once."""
from __future__ import annotations

import socket
import time

import httpx
import pytest
from standins.serving import serving  # uvicorn on 127.0.0.1:0 for a test

from civicgrid_gateway.config import GatewaySettings
from civicgrid_gateway.entrypoints.main import build_app

from civicgrid_notifications.config import NotificationsSettings
from civicgrid_notifications.entrypoints.main import build_app as notifications_app


class Seen:
    """The real upstream app, noting the requests that reached it (method, path, headers)."""

    def __init__(self, app) -> None:
        self.app = app
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.requests.append((scope["method"], scope["raw_path"] + b"?" + scope["query_string"],
                                  {k.decode(): v.decode() for k, v in scope["headers"]}))
        await self.app(scope, receive, send)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def upstream(fresh_db):
    app = notifications_app(NotificationsSettings(pg_database=fresh_db.pg_database, outbox_relay=False, consume=False,
                                                  send=False, timers=False))
    seen = Seen(app)
    async with app.router.lifespan_context(app), serving(seen) as base:
        seen.base = base
        yield seen


@pytest.fixture
async def gateway(upstream):
    settings = GatewaySettings(upstreams={"notifications": upstream.base,
                                          "intake": f"http://127.0.0.1:{_free_port()}"},  # down
                               circuit_failures=3, circuit_cooldown_seconds=30)
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            client.app = app
            yield client


async def test_a_request_reaches_its_service_and_the_answer_comes_back_unchanged(gateway, upstream, token):
    me = token("community_reviewer", "320104001001", subject="reviewer-wang")
    direct = httpx.AsyncClient(base_url=upstream.base)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = await gateway.put("/api/notifications/v1/me/preferences?x=1&y=%E4%B8%AD+d", json={"in_app": {"delivery": "digest"}},
                          headers={**me, "X-Request-Id": "desk-42", "traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "desk-42" and r.json()["in_app"]["delivery"] == "digest"
    method, path, headers = upstream.requests[-1]
    assert (method, path) == ("PUT", b"/v1/me/preferences?x=1&y=%E4%B8%AD+d")  # the query as it was written
    assert headers["x-request-id"] == "desk-42" and headers["authorization"] == me["Authorization"]
    assert headers["x-forwarded-proto"] == "http"
    assert headers["traceparent"].split("-")[1] == trace  # the caller's trace, continued
    mine = await gateway.get("/api/notifications/v1/me/preferences", headers=me)
    straight = await direct.get("/v1/me/preferences", headers=me)
    assert mine.status_code == straight.status_code == 200 and mine.json() == straight.json()
    # the service's own refusal, field by field, as the service gave it
    bad = await gateway.put("/api/notifications/v1/me/preferences", headers=me, json={"in_app": {"delivery": "x"}})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert [e["pointer"] for e in bad.json()["errors"]] == ["#/in_app/delivery"]
    assert len(mine.headers.get_list("date")) <= 1  # the server in front sets its own, once
    await direct.aclose()


async def test_the_token_is_checked_at_the_gateway_before_any_service_sees_the_request(gateway, upstream, token):
    before = len(upstream.requests)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        r = await gateway.get("/api/notifications/v1/inbox", headers=headers)
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json"), r.text
        assert len(r.headers["x-request-id"]) == 32  # one is made when none is given
    assert len(upstream.requests) == before
    unknown = await gateway.get("/api/payroll/v1/x", headers=token("leader", "320104"))
    assert unknown.status_code == 404 and "/api/<service>/" in unknown.json()["detail"]


async def test_a_service_that_is_down_answers_503_on_its_routes_only_and_its_circuit_then_at_once(gateway, token):
    leader = token("leader", "320104")
    for _ in range(2):  # each GET is tried twice: 4 failures, the circuit opens at the third
        r = await gateway.get("/api/intake/v1/cases", headers=leader)
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["upstream"] == "intake" and int(r.headers["retry-after"]) >= 1
    circuit = gateway.app.state.upstreams.circuit_of("intake")
    assert circuit.open_until is not None
    started = time.monotonic()
    r = await gateway.post("/api/intake/v1/cases", headers=leader, json={})
    assert r.status_code == 503 and 1 <= int(r.headers["retry-after"]) <= 30
    assert "circuit is open" in r.json()["detail"] and time.monotonic() - started < 0.5
    # the other service's routes do not notice
    ok = await gateway.get("/api/notifications/v1/inbox", headers=leader)
    assert ok.status_code == 200, ok.text
