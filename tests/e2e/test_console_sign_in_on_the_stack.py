"""The console's sign-in at the gateway as `make up` runs it, against the stack's real Keycloak:
a browser (httpx with a cookie jar of its own, filling in Keycloak's own login form) starts at
/auth/login, comes back through /auth/callback with a session cookie and never a token, and
works through the gateway with that cookie alone: reads freely, changes only with the session's
CSRF token, in its own jurisdiction only; a cookie altered or of a signed-out session is refused;
the callback refuses a state it did not start and a sign-in begun in another browser; after
sign-in the browser is sent back only to a path of the gateway."""
from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from intake_cases import accepted_case, resident
from keycloak_login import ISSUER, browser, log_in_at

pytestmark = pytest.mark.integration

GATEWAY = "http://127.0.0.1:8000"
STREET, COMMUNITY = "320104001", "320104001001"


@pytest.fixture(autouse=True)
async def stack_up():
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            await http.get(f"{GATEWAY}/healthz")
            await http.get(f"{ISSUER}/.well-known/openid-configuration")
        except httpx.ConnectError as exc:
            pytest.fail(f"the stack's gateway or Keycloak is not running ({exc}); run `make up`", pytrace=False)


async def signed_in(http: httpx.AsyncClient, username: str, next: str = "/api/intake/v1/affairs") -> httpx.Response:
    """Sign in as a browser does; the gateway's answer to the callback (303 to `next`)."""
    back = await log_in_at(http, f"{GATEWAY}/auth/login?next={next}", username)
    assert back.startswith(f"{GATEWAY}/auth/callback?"), back
    answer = await http.get(back)
    assert answer.status_code == 303, answer.text
    return answer


async def test_a_clerk_signs_in_and_works_through_the_gateway_with_the_session_cookie_alone():
    async with browser() as http:
        answer = await signed_in(http, "clerk.huaihai")
        assert answer.headers["location"] == "/api/intake/v1/affairs"
        set_cookies = answer.headers.get_list("set-cookie")
        assert any(c.startswith("civicgrid_session=") and "HttpOnly" in c and "SameSite=Lax" in c for c in set_cookies)
        assert not any(part in str(set_cookies) for part in ("access_token", "eyJhbGciOiJSUzI1NiI"))  # no token

        me = (await http.get(f"{GATEWAY}/auth/session")).json()
        assert me["roles"] == ["window_clerk"] and me["jurisdictions"] == [STREET]
        csrf = {"X-CSRF-Token": me["csrf_token"]}

        assert (await http.get(f"{GATEWAY}/api/intake/v1/affairs")).status_code == 200
        refused = await http.post(f"{GATEWAY}/api/intake/v1/applicants", json=resident(COMMUNITY))
        assert refused.status_code == 403 and refused.json()["code"] == "csrf_token_missing", refused.text
        made = await http.post(f"{GATEWAY}/api/intake/v1/applicants", json=resident(COMMUNITY), headers=csrf)
        assert made.status_code == 201, made.text
        elsewhere = await http.post(f"{GATEWAY}/api/intake/v1/applicants", json=resident("320104002001"), headers=csrf)
        assert elsewhere.status_code == 403, elsewhere.text  # the realm's jurisdiction, enforced by intake

        # signed out: the session ends at Keycloak too, so a copy of the cookie is worth nothing
        copied = http.cookies.get("civicgrid_session")
        assert (await http.post(f"{GATEWAY}/auth/logout")).status_code == 403  # signing out needs the token too
        assert (await http.post(f"{GATEWAY}/auth/logout", headers=csrf)).status_code == 204
        assert "civicgrid_session" not in http.cookies
        assert (await http.get(f"{GATEWAY}/auth/session")).status_code == 401
    async with httpx.AsyncClient(timeout=30, cookies={"civicgrid_session": copied}) as thief:
        r = await thief.get(f"{GATEWAY}/api/intake/v1/affairs")
        assert r.status_code == 401 and r.json()["code"] == "session_ended", r.text


async def test_an_altered_session_cookie_is_refused():
    async with browser() as http:
        await signed_in(http, "reviewer.street")
        value = http.cookies.get("civicgrid_session")
    header, key, iv, ciphertext, tag = value.split(".")
    altered = ".".join([header, key, iv, ciphertext[:-2] + ("AA" if ciphertext[-2:] != "AA" else "BB"), tag])
    async with httpx.AsyncClient(timeout=30, cookies={"civicgrid_session": altered}) as http:
        r = await http.get(f"{GATEWAY}/api/intake/v1/affairs")
        assert r.status_code == 401 and r.json()["code"] == "session_ended", r.text


async def test_the_callback_refuses_a_state_it_did_not_start_and_a_sign_in_from_another_browser():
    async with browser() as http:
        back = await log_in_at(http, f"{GATEWAY}/auth/login", "leader.district")
        query = parse_qs(urlsplit(back).query)
        forged = back.replace(f"state={query['state'][0]}", "state=not-the-state")
        r = await http.get(forged)
        assert r.status_code == 400 and r.json()["code"] == "sign_in_state_mismatch", r.text
    async with browser() as other:  # the victim's browser, handed the attacker's callback URL
        r = await other.get(back)
        assert r.status_code == 400 and r.json()["code"] == "sign_in_not_started", r.text


@pytest.mark.parametrize("target", ["https://evil.example/phish", "//evil.example/", "/\\evil.example"])
async def test_after_sign_in_the_browser_goes_to_a_path_of_the_gateway_only(target):
    async with browser() as http:
        answer = await signed_in(http, "auditor.district", next=target)
        assert answer.headers["location"] == "/"


async def test_another_gateway_replica_serves_the_session_renewing_its_token_with_the_refresh_token():
    """The gateway keeps no session: a replica that has not seen the browser (here one built in
    this process with the stack's settings and session key) renews the access token with the
    cookie's refresh token, passes the request on, and sets the renewed cookie, which the first
    gateway takes in turn."""
    from civicgrid_common.settings import PlatformSettings

    from civicgrid_gateway.config import GatewaySettings
    from civicgrid_gateway.entrypoints.main import build_app

    async with browser() as http:
        await signed_in(http, "reviewer.community")
        cookie = http.cookies.get("civicgrid_session")
        settings = GatewaySettings(oidc_issuer=ISSUER, oidc_client_id="civicgrid-gateway",
                                   oidc_client_secret="local-only-gateway-secret", gc_freeze=False)
        assert settings.environment == PlatformSettings().environment == "local"  # the stack's session key
        replica = build_app(settings)
        async with replica.router.lifespan_context(replica), httpx.AsyncClient(
                transport=httpx.ASGITransport(replica, client=("127.0.0.1", 50000)), base_url=GATEWAY,
                cookies={"civicgrid_session": cookie}) as other:
            assert replica.state.sign_in.access_tokens.get("any", valid_for=0) is None
            r = await other.get("/api/approval/v1/approvals/inbox")
            assert r.status_code == 200, r.text
            [renewed] = [c for c in r.headers.get_list("set-cookie") if c.startswith("civicgrid_session=")]
            # a console's page asks for several things at once, each renewing the same session
            replica.state.sign_in.access_tokens.forget(replica.state.sign_in.cookies.open("session", cookie)["sid"])
            together = await asyncio.gather(*(other.get(p) for p in ("/api/approval/v1/approvals/inbox",
                                                                     "/api/intake/v1/affairs", "/auth/session",
                                                                     "/api/statistics/v1/kpis/cases")))
            assert [a.status_code for a in together] == [200, 200, 200, 200], [a.text for a in together]
        renewed_value = renewed.split(";", 1)[0].split("=", 1)[1]
        assert renewed_value != cookie  # a new refresh token, sealed anew
        http.cookies.set("civicgrid_session", renewed_value, domain="127.0.0.1", path="/")
        me = await http.get(f"{GATEWAY}/auth/session")
        assert me.status_code == 200 and me.json()["roles"] == ["community_reviewer"], me.text


async def test_a_signed_in_clerk_sees_the_case_they_accepted_in_the_gateways_case_view():
    async with browser() as http:
        await signed_in(http, "clerk.huaihai")
        csrf = {"X-CSRF-Token": (await http.get(f"{GATEWAY}/auth/session")).json()["csrf_token"]}
        http.base_url = f"{GATEWAY}/api/intake"
        case_id = await accepted_case(http, csrf, COMMUNITY)
        view = await http.get(f"{GATEWAY}/api/views/cases/{case_id}")
        assert view.status_code == 200, view.text
        assert view.json()["case"]["id"] == case_id and view.json()["case"]["status"] == "accepted"
    async with httpx.AsyncClient(timeout=30) as stranger:  # no cookie, no token
        assert (await stranger.get(f"{GATEWAY}/api/views/cases/{case_id}")).status_code == 401
