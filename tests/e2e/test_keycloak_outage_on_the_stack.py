"""Keycloak out of reach in the middle of people's sessions (the network between the gateway and
the identity provider cut, as a failed node or a partition does it, while the stack's Keycloak
stays up for the other tests): who holds a live access token keeps working; who needs a new one
(another replica, or a token that expired) gets 503 problem+json with Retry-After and keeps the
session, which works again, renewed, once Keycloak is reachable; sign-in says it is unavailable
instead of hanging. Two gateway replicas are built in this process with the stack's settings
and session key, reaching Keycloak through the cuttable forwarder as their backchannel
(CIVICGRID_OIDC_BACKCHANNEL_URL; Keycloak runs with --hostname-backchannel-dynamic, as in
docker-compose and deploy/k8s, so that its token endpoints follow that address)."""
from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
import pytest
from keycloak_login import ISSUER, browser, log_in_at
from tcp_cut import Cuttable

from civicgrid_gateway.config import GatewaySettings
from civicgrid_gateway.entrypoints.main import build_app

pytestmark = pytest.mark.integration

GATEWAY = "http://127.0.0.1:8000"  # the redirect URI registered at Keycloak names this origin


@asynccontextmanager
async def replica(backchannel: str):
    settings = GatewaySettings(oidc_issuer=ISSUER, oidc_backchannel_url=f"{backchannel}/realms/civicgrid",
                               oidc_client_id="civicgrid-gateway", oidc_client_secret="local-only-gateway-secret",
                               gc_freeze=False)
    assert settings.environment == "local"  # the stack's session key, shared by the replicas
    app = build_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app, client=("127.0.0.1", 50001)), base_url=GATEWAY) as client:
        async def secure_context(response: httpx.Response) -> None:
            for kept in client.cookies.jar:  # as a browser treats http://127.0.0.1 (keycloak_login.browser)
                kept.secure = False

        client.event_hooks["response"].append(secure_context)
        yield client


def session_cookies(response: httpx.Response) -> list[str]:
    return [c for c in response.headers.get_list("set-cookie") if c.startswith("civicgrid_session=")]


async def test_a_session_survives_keycloak_out_of_reach_and_renews_once_it_is_back():
    link = await Cuttable("127.0.0.1", 8180).mend()
    try:
        async with replica(link.base) as first, replica(link.base) as second, browser() as person:
            # signed in at the first replica, Keycloak's login form filled in by the "browser"
            start = await first.get("/auth/login", params={"next": "/auth/session"})
            assert start.status_code == 302, start.text
            back = await log_in_at(person, start.headers["location"], "reviewer.street")
            assert back.startswith(f"{GATEWAY}/auth/callback?"), back
            assert (await first.get(back.removeprefix(GATEWAY))).status_code == 303
            cookie = first.cookies.get("civicgrid_session")
            assert (await first.get("/api/approval/v1/approvals/inbox")).status_code == 200
            # the second replica has served the session too (Keycloak's endpoints and keys read)
            second.cookies.set("civicgrid_session", cookie, domain="127.0.0.1", path="/")
            assert (await second.get("/api/approval/v1/approvals/inbox")).status_code == 200
            used = link.connections
            assert used > 0  # the replicas did reach Keycloak through the link

            await link.cut()
            # a live access token needs no Keycloak: the first replica keeps serving the session
            for path in ("/api/approval/v1/approvals/inbox", "/api/statistics/v1/kpis/cases", "/auth/session"):
                r = await first.get(path)
                assert r.status_code == 200, (path, r.text)
            # at the second replica the access token has expired (as after 300 s): renewing it at
            # Keycloak's token endpoint is unavailable, said plainly; the cookie neither cleared
            # nor replaced
            sign_in = second._transport.app.state.sign_in
            sign_in.access_tokens.forget(sign_in.cookies.open("session", second.cookies.get("civicgrid_session"))["sid"])
            r = await second.get("/api/approval/v1/approvals/inbox")
            assert r.status_code == 503, r.text
            assert r.headers["content-type"] == "application/problem+json" and r.headers["retry-after"] == "10"
            assert r.json()["detail"].startswith("Sign-in is not available right now (the identity provider's token "
                                                 "endpoint: ConnectError)"), r.text
            assert session_cookies(r) == []
            # someone signing in meanwhile: Keycloak's login page is the browser's to reach, but
            # the gateway cannot redeem the code; the callback says so, and works once tried again
            start = await first.get("/auth/login", params={"next": "/auth/session"})
            assert start.status_code == 302
            async with browser() as newcomer:
                back = await log_in_at(newcomer, start.headers["location"], "reviewer.community")
            callback = back.removeprefix(GATEWAY)
            r = await first.get(callback)
            assert r.status_code == 503 and r.headers["retry-after"] == "10", r.text
            assert session_cookies(r) == []

            await link.mend()
            r = await first.get(callback)  # the same code, not yet redeemed
            assert r.status_code == 303, r.text
            assert (await first.get("/auth/session")).json()["roles"] == ["community_reviewer"]
            r = await second.get("/api/approval/v1/approvals/inbox")
            assert r.status_code == 200, r.text
            [renewed] = session_cookies(r)
            assert renewed.split(";", 1)[0] != f"civicgrid_session={cookie}"
            me = (await second.get("/auth/session")).json()
            assert me["roles"] == ["street_reviewer"] and me["jurisdictions"] == ["320104001"]
            assert link.connections > used
    finally:
        if link.server is not None:
            await link.cut()
