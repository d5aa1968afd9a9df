"""A service built with create_app, served by a real uvicorn on a free port on 127.0.0.1,
against the real PostgreSQL and Kafka: readiness, a token from `civicgrid token`, a raw chunked
upload over the limit, and Idempotency-Key across real connections."""
from __future__ import annotations

import asyncio
import socket
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI
from pydantic import BaseModel

from civicgrid_common.identity import Principal, Role, mint_token
from civicgrid_common.identity.dependencies import require
from civicgrid_common.identity.localkeys import ensure_local_keys, private_key_path
from civicgrid_common.settings import PlatformSettings
from civicgrid_common.web.app import create_app
from civicgrid_common.web.health import kafka_ready, postgres_ready

pytestmark = pytest.mark.integration

LIMIT = 4096


class Patrol(BaseModel):
    grid: str
    note: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_app(settings: PlatformSettings, kafka_settings: PlatformSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from civicgrid_common.db import create_pool

        app.state.pool = await create_pool(settings)
        await app.state.pool.execute("CREATE TABLE IF NOT EXISTS patrols (id bigserial PRIMARY KEY, grid text)")
        try:
            yield
        finally:
            await app.state.pool.close()

    app = create_app(settings, title="grid", version="0", lifespan=lifespan,
                     ready_checks={"postgres": postgres_ready, "kafka": kafka_ready(kafka_settings)})

    @app.post("/patrols", status_code=201)
    async def report(body: Patrol, who: Principal = Depends(require(Role.GRID_WORKER))) -> dict:
        patrol_id = await app.state.pool.fetchval("INSERT INTO patrols (grid) VALUES ($1) RETURNING id", body.grid)
        return {"id": patrol_id}

    return app


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):  # bounded wait for start-up (lifespan included)
            if server.started:
                break
            if task.done():
                task.result()  # surfaces the start-up error
            await asyncio.sleep(0.05)
        else:
            pytest.fail("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    keys_dir = tmp_path_factory.mktemp("keys")
    jwks = ensure_local_keys(keys_dir)
    return private_key_path(keys_dir).read_bytes(), jwks


@pytest.fixture
def service_settings(fresh_db: PlatformSettings, signing_key) -> PlatformSettings:
    return fresh_db.model_copy(update={"jwks": str(signing_key[1]), "max_request_bytes": LIMIT})


async def test_ready_when_postgres_and_kafka_answer(service_settings, settings) -> None:
    async with serving(build_app(service_settings, settings)) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["checks"] == {"postgres": "ok", "kafka": "ok"}
        # The idempotency table was installed at start-up, in the service's own database.
        conn = await asyncpg.connect(service_settings.dsn())
        try:
            assert await conn.fetchval("SELECT to_regclass('http_idempotency_keys') IS NOT NULL")
        finally:
            await conn.close()


async def test_not_ready_names_kafka_when_no_broker_answers(service_settings) -> None:
    nowhere = service_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    async with serving(build_app(service_settings, nowhere)) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/readyz")
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        assert list(r.json()["failed"]) == ["kafka"]
        assert (await client.get("/healthz")).status_code == 200


async def raw_chunked_post(url: str, token: str, chunks: list[bytes]) -> bytes:
    """POST with Transfer-Encoding: chunked and no Content-Length, over a bare socket."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write((f"POST /patrols HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        for chunk in chunks:
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 30)
    finally:
        writer.close()


async def test_chunked_upload_over_the_limit_is_413_on_a_real_server(service_settings, settings, signing_key) -> None:
    token = mint_token(signing_key[0], "grid_worker", "320104001001")
    note = b"x" * 1500
    async with serving(build_app(service_settings, settings)) as url:
        big = await raw_chunked_post(url, token, [b'{"grid": "320104001001001", "note": "', note, note, note, b'"}'])
        small = await raw_chunked_post(url, token, [b'{"grid": "320104001001001", ', b'"note": "all safe"}'])
    assert big.startswith(b"HTTP/1.1 413 ")
    assert b"application/problem+json" in big
    assert small.startswith(b"HTTP/1.1 201 "), small


async def test_idempotent_post_over_real_connections(service_settings, settings, signing_key) -> None:
    headers = {"Authorization": "Bearer " + mint_token(signing_key[0], "grid_worker", "320104001001"),
               "Idempotency-Key": '"patrol-2026-11-23-grid-001"'}
    body = {"grid": "320104001001001", "note": "有事报事，无事报平安"}
    async with serving(build_app(service_settings, settings)) as url:
        async with httpx.AsyncClient(base_url=url) as first_client:
            first = await first_client.post("/patrols", json=body, headers=headers)
        async with httpx.AsyncClient(base_url=url) as retrying_client:  # a new connection
            again = await retrying_client.post("/patrols", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    conn = await asyncpg.connect(service_settings.dsn())
    try:
        assert await conn.fetchval("SELECT count(*) FROM patrols") == 1
    finally:
        await conn.close()
