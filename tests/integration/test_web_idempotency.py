"""Idempotency-Key on POST against the real PostgreSQL: replay, misuse, in-flight duplicates,
failures and crashed requests."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import AsyncIterator

import asyncpg
import httpx
import fastapi
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel

from civicgrid_common.identity import Principal, mint_token
from civicgrid_common.identity.dependencies import require
from civicgrid_common.identity.localkeys import ensure_local_keys, private_key_path
from civicgrid_common.settings import PlatformSettings
from civicgrid_common.web.app import create_app
from civicgrid_common.web.idempotency import purge_expired

pytestmark = pytest.mark.integration

COMMUNITY = "320104001001"


class Complaint(BaseModel):
    text: str


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    keys_dir = tmp_path_factory.mktemp("keys")
    jwks = ensure_local_keys(keys_dir)
    return private_key_path(keys_dir).read_bytes(), jwks


def auth(signing_key, subject: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token(signing_key[0], "window_clerk", COMMUNITY, subject=subject)}


def build_app(pool: asyncpg.Pool, jwks: Path) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.execute("CREATE TABLE complaints (id bigserial PRIMARY KEY, text text, filed_by text)")
        app.state.pool = pool
        yield

    app = create_app(PlatformSettings(jwks=str(jwks)), title="idem", version="0", lifespan=lifespan)
    app.state.gate = None  # an asyncio.Event that holds /complaints open, when set by a test
    app.state.failures_left = 0

    @app.post("/complaints", status_code=201)
    async def file_complaint(body: Complaint, who: Principal = Depends(require())) -> dict:
        if app.state.failures_left:
            app.state.failures_left -= 1
            raise RuntimeError("database hiccup")
        complaint_id = await pool.fetchval(
            "INSERT INTO complaints (text, filed_by) VALUES ($1, $2) RETURNING id", body.text, who.subject)
        if app.state.gate is not None:
            await app.state.gate.wait()
        return {"id": complaint_id, "text": body.text}

    return app


@pytest.fixture
async def service(pool: asyncpg.Pool, signing_key) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = build_app(pool, signing_key[1])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            yield app, client


async def complaints(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM complaints")


async def test_repeat_with_same_body_replays_the_stored_response(service, pool, signing_key) -> None:
    _, client = service
    headers = {**auth(signing_key, "clerk-a"), "Idempotency-Key": '"8e03978e-40d5-43e8-bc93-6894a57f9324"'}
    first = await client.post("/complaints", json={"text": "路灯坏了"}, headers=headers)
    again = await client.post("/complaints", json={"text": "路灯坏了"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["content-type"] == "application/json"
    assert await complaints(pool) == 1


async def test_same_key_with_another_body_is_422(service, pool, signing_key) -> None:
    _, client = service
    headers = {**auth(signing_key, "clerk-a"), "Idempotency-Key": "k-1"}
    assert (await client.post("/complaints", json={"text": "one"}, headers=headers)).status_code == 201
    r = await client.post("/complaints", json={"text": "two"}, headers=headers)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/idempotency-key-reused"
    assert await complaints(pool) == 1


async def test_same_key_with_another_query_string_is_422(service, pool, signing_key) -> None:
    _, client = service
    headers = {**auth(signing_key, "clerk-a"), "Idempotency-Key": "k-2"}
    assert (await client.post("/complaints", json={"text": "x"}, headers=headers)).status_code == 201
    r = await client.post("/complaints", params={"urgent": "1"}, json={"text": "x"}, headers=headers)
    assert r.status_code == 422
    assert await complaints(pool) == 1


async def test_keys_belong_to_their_principal(service, pool, signing_key) -> None:
    _, client = service
    for clerk in ("clerk-a", "clerk-b"):
        r = await client.post("/complaints", json={"text": "same"},
                              headers={**auth(signing_key, clerk), "Idempotency-Key": "shared-key"})
        assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert await pool.fetch("SELECT filed_by FROM complaints ORDER BY id") == [("clerk-a",), ("clerk-b",)]


async def test_duplicate_while_the_first_is_in_flight_is_409(service, pool, signing_key) -> None:
    app, client = service
    app.state.gate = asyncio.Event()
    headers = {**auth(signing_key, "clerk-a"), "Idempotency-Key": "slow-one"}
    first = asyncio.create_task(client.post("/complaints", json={"text": "x"}, headers=headers))
    for _ in range(200):  # until the first request has claimed the key and done its work
        if await complaints(pool) == 1:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the first request never reached its handler")
    duplicate = await client.post("/complaints", json={"text": "x"}, headers=headers)
    assert duplicate.status_code == 409
    assert duplicate.headers["retry-after"] == "1"
    assert duplicate.json()["type"] == "/problems/idempotency-key-in-flight"
    app.state.gate.set()
    assert (await asyncio.wait_for(first, 30)).status_code == 201
    replay = await client.post("/complaints", json={"text": "x"}, headers=headers)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert await complaints(pool) == 1


async def test_a_failed_request_frees_its_key_for_a_retry(service, pool, signing_key) -> None:
    app, client = service
    app.state.failures_left = 1
    headers = {**auth(signing_key, "clerk-a"), "Idempotency-Key": "retry-me"}
    failed = await client.post("/complaints", json={"text": "x"}, headers=headers)
    assert failed.status_code == 500
    assert await pool.fetchval("SELECT count(*) FROM http_idempotency_keys") == 0
    retried = await client.post("/complaints", json={"text": "x"}, headers=headers)
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert await complaints(pool) == 1


async def test_claim_left_by_a_crashed_process_is_taken_over(service, pool, signing_key) -> None:
    _, client = service
    # What a process killed mid-request leaves behind: a claim with no response, long ago.
    await pool.execute(
        "INSERT INTO http_idempotency_keys (subject, idempotency_key, claim_id, method, path, request_hash, created_at)"
        " VALUES ('clerk-a', 'orphan', gen_random_uuid(), 'POST', '/complaints', 'whatever', now() - interval '1 hour')")
    r = await client.post("/complaints", json={"text": "x"},
                          headers={**auth(signing_key, "clerk-a"), "Idempotency-Key": "orphan"})
    assert r.status_code == 201
    row = await pool.fetchrow("SELECT status_code, completed_at FROM http_idempotency_keys WHERE idempotency_key = 'orphan'")
    assert row["status_code"] == 201 and row["completed_at"] is not None


async def test_expired_responses_are_not_replayed_and_are_purged(service, pool, signing_key) -> None:
    _, client = service
    headers = {**auth(signing_key, "clerk-a"), "Idempotency-Key": "yesterday"}
    await client.post("/complaints", json={"text": "x"}, headers=headers)
    await pool.execute("UPDATE http_idempotency_keys SET created_at = now() - interval '2 days'")
    again = await client.post("/complaints", json={"text": "x"}, headers=headers)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert await complaints(pool) == 2
    await pool.execute("UPDATE http_idempotency_keys SET created_at = now() - interval '2 days'")
    assert await purge_expired(pool, timedelta(hours=24)) == 1


async def test_without_a_key_every_post_runs(service, pool, signing_key) -> None:
    _, client = service
    for _ in range(2):
        assert (await client.post("/complaints", json={"text": "x"}, headers=auth(signing_key, "c"))).status_code == 201
    assert await complaints(pool) == 2
    assert await pool.fetchval("SELECT count(*) FROM http_idempotency_keys") == 0


@pytest.mark.parametrize("key", ['""', "x" * 256, "schlüssel"])
async def test_invalid_keys_are_400(service, pool, signing_key, key: str) -> None:
    _, client = service
    r = await client.post("/complaints", json={"text": "x"},
                          headers={**auth(signing_key, "c"), "Idempotency-Key": key.encode("utf-8")})
    assert r.status_code == 400 and r.json()["type"] == "/problems/idempotency-key-invalid"
    assert await complaints(pool) == 0


async def test_bad_token_with_a_key_is_a_plain_401(service, pool) -> None:
    _, client = service
    r = await client.post("/complaints", json={"text": "x"},
                          headers={"Authorization": "Bearer forged", "Idempotency-Key": "k"})
    assert r.status_code == 401
    assert await pool.fetchval("SELECT count(*) FROM http_idempotency_keys") == 0


async def test_a_no_store_response_is_never_kept_under_its_key(fresh_db, pool):
    """Personal data (responses marked Cache-Control: no-store) never sit in the idempotency
    table; the key is freed and a retry runs the route again."""
    from civicgrid_common.identity.tokens import mint_local_token

    @asynccontextmanager
    async def lifespan(app):
        app.state.pool = pool
        yield

    app = create_app(fresh_db, title="t", version="1", lifespan=lifespan)
    runs: list[int] = []

    @app.post("/people")
    async def people(response: fastapi.Response):
        runs.append(1)
        response.headers["Cache-Control"] = "no-store"
        return {"id_number": "11010519491231002X"}

    headers = {"Authorization": f"Bearer {mint_local_token('window_clerk', '320104001')}",
               "Idempotency-Key": '"pii-1"'}
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            first = await client.post("/people", json={}, headers=headers)
            second = await client.post("/people", json={}, headers=headers)
    assert (first.status_code, second.status_code) == (200, 200), first.text
    assert len(runs) == 2 and "idempotent-replayed" not in second.headers
    assert await pool.fetchval("SELECT count(*) FROM http_idempotency_keys") == 0
