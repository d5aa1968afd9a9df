"""Sign-in at the stack's real Keycloak (realm `civicgrid`, deploy/local/keycloak/civicgrid-realm.json)
and the services as `make up` runs them trusting what it issues:

- a desk user signs in by the authorization-code flow with PKCE (S256) at the gateway's client
  and calls intake and approval with the access token: the roles, jurisdictions and department
  the realm gives them are what the services act on;
- the realm refuses what it must: an authorization request without PKCE, the password grant,
  a wrong password, a wrong client secret;
- a token signed with the local key that claims Keycloak as its issuer is refused by every
  service (each issuer's tokens are checked against that issuer's keys only);
- notifications gets its own token by the client-credentials grant and with it asks intake for
  an applicant's address: an accepted case's email (the applicant chose email; an SMS would wait
  through China's night) reaches the stack's SMTP server, and intake's history of the case names
  Keycloak's service account as the one the address was disclosed to.
"""
from __future__ import annotations

import asyncio
import secrets
import time
import uuid

import httpx
import jwt
import pytest
from intake_cases import accepted_case, mailbox_messages, resident
from keycloak_login import DEMO_PASSWORD, ISSUER, LoginRefused, log_in

from civicgrid_common.identity.localkeys import private_key_path
# Authlib's httpx client as the platform imports it (service_tokens says why it is imported there)
from civicgrid_common.identity.service_tokens import (
    RENEW_BEFORE_EXPIRY_SECONDS,
    AsyncOAuth2Client,
    ClientCredentialsToken,
    TokenUnavailable,
)
from civicgrid_common.identity.tokens import TokenVerifier, mint_local_token, mint_token
from civicgrid_common.paths import local_state_dir
from civicgrid_common.settings import PlatformSettings

pytestmark = pytest.mark.integration

AUTH = f"{ISSUER}/protocol/openid-connect/auth"
TOKEN = f"{ISSUER}/protocol/openid-connect/token"
GATEWAY_CLIENT, GATEWAY_SECRET = "civicgrid-gateway", "local-only-gateway-secret"
CALLBACK = "http://127.0.0.1:8000/auth/callback"
INTAKE, APPROVAL = "http://127.0.0.1:8001", "http://127.0.0.1:8002"
STREET, COMMUNITY = "320104001", "320104001001"
GRID_ROUTE = "http://127.0.0.1:8003/v1/communities/320104001001/grids"


@pytest.fixture(autouse=True)
async def keycloak_up():
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            r = await http.get(f"{ISSUER}/.well-known/openid-configuration")
        except httpx.ConnectError:
            pytest.fail("the stack's Keycloak is not running on :8180; run `make up`", pytrace=False)
    assert r.status_code == 200 and r.json()["issuer"] == ISSUER


def gateway_client() -> AsyncOAuth2Client:
    return AsyncOAuth2Client(GATEWAY_CLIENT, GATEWAY_SECRET, redirect_uri=CALLBACK, scope="openid",
                             code_challenge_method="S256", timeout=30)


async def sign_in(username: str, password: str = DEMO_PASSWORD) -> dict:
    """The gateway's side of the code flow around the browser's: an authorization URL with a
    fresh PKCE verifier and state, the browser's login, the code exchanged with the verifier."""
    async with gateway_client() as client:
        verifier = secrets.token_urlsafe(48)
        url, state = client.create_authorization_url(AUTH, code_verifier=verifier)
        back = await log_in(url, username, password)
        assert back["state"] == [state] and back["iss"] == [ISSUER], back
        return await client.fetch_token(TOKEN, code=back["code"][0], code_verifier=verifier)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_window_clerk_signs_in_with_pkce_and_works_in_their_street_only():
    tokens = await sign_in("clerk.huaihai")
    access = tokens["access_token"]
    principal = TokenVerifier.from_settings(PlatformSettings(oidc_issuer=ISSUER)).verify(access)
    assert principal.roles == {"window_clerk"} and principal.jurisdictions == (STREET,)
    assert principal.subject == jwt.decode(tokens["id_token"], options={"verify_signature": False})["sub"]
    async with httpx.AsyncClient(base_url=INTAKE, timeout=30) as intake:
        assert (await intake.get("/v1/affairs", headers=bearer(access))).status_code == 200
        applicant = await intake.post("/v1/applicants", headers=bearer(access), json=resident(COMMUNITY))
        assert applicant.status_code == 201, applicant.text
        # the next street is not the clerk's: refused for the jurisdiction, not for the token
        elsewhere = await intake.post("/v1/applicants", headers=bearer(access), json=resident("320104002001"))
        assert elsewhere.status_code == 403, elsewhere.text
    async with httpx.AsyncClient(base_url=APPROVAL, timeout=30) as approval:
        # a clerk is no reviewer: approval knows the token and refuses the role
        inbox = await approval.get("/v1/approvals/inbox", headers=bearer(access))
        assert inbox.status_code == 403, inbox.text


async def test_a_department_staff_members_token_names_their_department():
    access = (await sign_in("staff.civil"))["access_token"]
    principal = TokenVerifier.from_settings(PlatformSettings(oidc_issuer=ISSUER)).verify(access)
    assert principal.roles == {"department"} and principal.department == "civil_affairs"
    assert principal.jurisdictions == ("320104",)


async def test_the_realm_refuses_a_request_without_pkce_the_password_grant_and_a_wrong_password():
    async with gateway_client() as client:
        client.code_challenge_method = None
        url, _ = client.create_authorization_url(AUTH)  # no code_challenge
        back = await log_in(url, "clerk.huaihai")
        assert back["error"] == ["invalid_request"] and "code" not in back, back
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(TOKEN, auth=(GATEWAY_CLIENT, GATEWAY_SECRET),
                            data={"grant_type": "password", "username": "clerk.huaihai", "password": DEMO_PASSWORD})
        assert r.status_code in (400, 401) and r.json()["error"] == "unauthorized_client", r.text
    # A user no other test signs in as: Keycloak's brute-force protection locks a user out for a
    # minute when a failure and another login of theirs come close together (tests in parallel).
    with pytest.raises(LoginRefused):
        await sign_in("approver.civil", password="not-the-password")
    # a success clears Keycloak's count of failures: repeated runs never reach its lockout
    assert "access_token" in await sign_in("approver.civil")


async def test_a_local_key_token_that_claims_keycloak_as_its_issuer_is_refused_everywhere():
    forged = mint_token(private_key_path(local_state_dir() / "keys").read_bytes(), "admin", "320104", issuer=ISSUER)
    genuine_local = mint_local_token("window_clerk", STREET)
    async with httpx.AsyncClient(timeout=30) as http:
        for url in (f"{INTAKE}/v1/affairs", f"{APPROVAL}/v1/approvals/inbox", GRID_ROUTE,
                    "http://127.0.0.1:8004/v1/inbox", "http://127.0.0.1:8005/v1/kpis/cases",
                    "http://127.0.0.1:8000/api/intake/v1/affairs"):
            r = await http.get(url, headers=bearer(forged))
            assert r.status_code == 401, (url, r.status_code, r.text)
        assert (await http.get(f"{INTAKE}/v1/affairs", headers=bearer(genuine_local))).status_code == 200


async def test_a_wrong_client_secret_gets_no_token_and_says_why():
    token = ClientCredentialsToken(ISSUER, "civicgrid-notifications", "not-the-secret")
    try:
        with pytest.raises(TokenUnavailable, match="refused client 'civicgrid-notifications'"):
            await token()
    finally:
        await token.close()


async def test_notifications_asks_for_an_applicants_number_with_its_own_keycloak_token():
    service = ClientCredentialsToken(ISSUER, "civicgrid-notifications", "local-only-notifications-secret")
    try:
        first = await service()
        assert await service() == first  # renewed only near its expiry, not per call
        # a minute before its expiry it is renewed: a new token from Keycloak
        service._client.token["expires_at"] = int(time.time()) + RENEW_BEFORE_EXPIRY_SECONDS - 1
        renewed = await service()
        assert renewed != first and await service() == renewed
    finally:
        await service.close()
    account = TokenVerifier.from_settings(PlatformSettings(oidc_issuer=ISSUER)).verify(first)
    assert account.roles == {"notifier"} and account.jurisdictions == ("320104",)

    clerk = bearer(mint_local_token("window_clerk", STREET, subject="wc-sign-in"))
    # By email: an SMS (or a WeChat message) in China's night waits for the morning (quiet hours),
    # and this test would then fail from 22:00 to 08:00 China time; an email leaves at once.
    address = f"e2e-{uuid.uuid4().hex[:12]}@example.com"
    async with httpx.AsyncClient(base_url=INTAKE, timeout=30) as intake:
        case_id = await accepted_case(intake, clerk, COMMUNITY, contact_channels={"channels": ["email"],
                                                                                  "email": address})
        # the running notifications service: consumes the acceptance, gets its token from
        # Keycloak, asks intake for the address, sends the mail to the stack's SMTP server
        sent = await until(lambda: mailbox_messages(address), 60)
        assert len(sent) == 1, sent
        history = (await intake.get(f"/v1/cases/{case_id}/history", headers=clerk)).json()
    [disclosed] = [e for e in history["events"] if e["type"].endswith("contact_disclosed.v1")]
    assert disclosed["data"]["actor"] == account.subject, disclosed  # Keycloak's service account
    assert disclosed["data"]["channel"] == "email"


async def until(probe, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            await asyncio.sleep(1)  # a second one, if there were to be one, has had its time
            return probe()
        await asyncio.sleep(0.5)
    return probe()
