"""require(): 401 and 403 as problem+json, role and jurisdiction checks, through a real app."""
from __future__ import annotations

import time
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest
from fastapi import Depends

from civicgrid_common.identity import Principal, Role, mint_token
from civicgrid_common.identity.dependencies import require
from civicgrid_common.identity.localkeys import ensure_local_keys, private_key_path
from civicgrid_common.settings import PlatformSettings
from civicgrid_common.web.app import create_app
from civicgrid_common.web.problems import PROBLEM_MEDIA_TYPE

STREET, OTHER_STREET = "320104001", "320104002"


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    keys_dir = tmp_path_factory.mktemp("keys")
    jwks = ensure_local_keys(keys_dir)
    return private_key_path(keys_dir).read_bytes(), jwks


def token(signing_key, *roles: str, codes: tuple[str, ...] = (STREET,), **kw) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token(signing_key[0], list(roles), list(codes), **kw)}


@pytest.fixture
async def client(signing_key) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(PlatformSettings(jwks=str(signing_key[1])), title="t", version="0", idempotency=False)

    @app.get("/communities/{community}/inbox")
    async def inbox(community: str, who: Principal = Depends(
            require(Role.COMMUNITY_REVIEWER, Role.STREET_REVIEWER, jurisdiction_param="community"))) -> dict:
        return {"subject": who.subject, "community": community}

    @app.get("/cases")
    async def cases(who: Principal = Depends(require(Role.WINDOW_CLERK, jurisdiction_param="street"))) -> dict:
        return {"jurisdictions": list(who.jurisdictions)}

    @app.get("/me")
    async def me(who: Principal = Depends(require())) -> dict:
        return {"roles": sorted(r.value for r in who.roles), "department": who.department}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as c:
        yield c


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body


async def test_reviewer_acts_in_a_community_of_their_street(client, signing_key) -> None:
    r = await client.get(f"/communities/{STREET}001/inbox",
                         headers=token(signing_key, "street_reviewer", subject="wang"))
    assert r.status_code == 200
    assert r.json() == {"subject": "wang", "community": f"{STREET}001"}


async def test_missing_token_is_401_with_bearer_challenge(client) -> None:
    r = await client.get(f"/communities/{STREET}001/inbox")
    body = assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    assert "bearer token is required" in body["detail"]


@pytest.mark.parametrize("header", ["Bearer not.a.token", "Basic dXNlcjpwYXNz", "Bearer "])
async def test_malformed_credentials_are_401(client, header: str) -> None:
    r = await client.get("/me", headers={"Authorization": header})
    assert_problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer error=")


async def test_expired_token_is_401_saying_so(client, signing_key) -> None:
    r = await client.get("/me", headers=token(signing_key, "admin", ttl=60, now=time.time() - 3600))
    body = assert_problem(r, 401)
    assert "expired" in body["detail"]
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_wrong_role_is_403(client, signing_key) -> None:
    r = await client.get(f"/communities/{STREET}001/inbox", headers=token(signing_key, "window_clerk"))
    body = assert_problem(r, 403)
    assert "community_reviewer" in body["detail"] and "street_reviewer" in body["detail"]


async def test_community_of_another_street_is_403(client, signing_key) -> None:
    r = await client.get(f"/communities/{OTHER_STREET}001/inbox", headers=token(signing_key, "street_reviewer"))
    body = assert_problem(r, 403)
    assert body["jurisdiction"] == f"{OTHER_STREET}001"
    assert body["type"].endswith("outside-jurisdiction")


async def test_jurisdiction_from_the_query_string_is_checked(client, signing_key) -> None:
    clerk = token(signing_key, "window_clerk")
    assert (await client.get("/cases", params={"street": STREET}, headers=clerk)).status_code == 200
    assert_problem(await client.get("/cases", params={"street": OTHER_STREET}, headers=clerk), 403)
    # No code asked for: the route scopes by the principal's own jurisdictions.
    unscoped = await client.get("/cases", headers=clerk)
    assert unscoped.status_code == 200 and unscoped.json() == {"jurisdictions": [STREET]}


async def test_a_malformed_jurisdiction_code_is_422_with_the_field(client, signing_key) -> None:
    r = await client.get("/cases", params={"street": "32010400"}, headers=token(signing_key, "window_clerk"))
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "street"


async def test_district_wide_principal_covers_every_street(client, signing_key) -> None:
    r = await client.get(f"/communities/{OTHER_STREET}007/inbox",
                         headers=token(signing_key, "community_reviewer", codes=("320104",)))
    assert r.status_code == 200


async def test_any_role_and_department_claim(client, signing_key) -> None:
    r = await client.get("/me", headers=token(signing_key, "department", codes=("320104",),
                                                department="public-security"))
    assert r.json() == {"roles": ["department"], "department": "public-security"}


async def test_openapi_declares_the_bearer_scheme(client) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert doc["paths"]["/me"]["get"]["security"] == [{"HTTPBearer": []}]
