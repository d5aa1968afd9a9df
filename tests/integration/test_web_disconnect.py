"""A client that goes away mid-upload: the cut-off body never reaches the app, nothing is kept
under its Idempotency-Key, and the client's retry with the whole body goes through."""
from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

import pytest
from fastapi import Body

from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.web.app import create_app

pytestmark = pytest.mark.integration


async def call(app, messages: list[dict], headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bytes]:
    pending, out = list(messages), []

    async def receive():
        return pending.pop(0) if pending else await asyncio.sleep(3600)

    async def send(message):
        out.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "path": "/things", "raw_path": b"/things", "root_path": "", "scheme": "http", "query_string": b"",
             "server": ("test", 80), "client": ("client", 1), "headers": headers, "app": None}
    await asyncio.wait_for(app(scope, receive, send), 10)
    start = next((m for m in out if m["type"] == "http.response.start"), None)
    return (start["status"] if start else None), b"".join(m.get("body", b"") for m in out if "body" in m)


async def test_a_cut_off_upload_is_dropped_and_its_key_stays_free(fresh_db, pool):
    @asynccontextmanager
    async def lifespan(app):
        app.state.pool = pool
        yield

    app = create_app(fresh_db, title="t", version="1", lifespan=lifespan)
    handled: list[dict] = []

    @app.post("/things", status_code=201)
    async def things(payload: dict = Body(...)):
        handled.append(payload)
        return {"created": payload}

    token = mint_local_token("window_clerk", "320104001")
    headers = [(b"content-type", b"application/json"), (b"idempotency-key", b'"k-1"'),
               (b"authorization", f"Bearer {token}".encode()), (b"host", b"test")]
    body = json.dumps({"name": "a", "note": "b" * 50}).encode()
    async with app.router.lifespan_context(app):
        cut = await call(app, [{"type": "http.request", "body": body[:20], "more_body": True},
                               {"type": "http.disconnect"}], headers)
        retry = await call(app, [{"type": "http.request", "body": body, "more_body": False}], headers)
    assert cut == (None, b"")  # no answer to nobody, and the app never ran
    assert retry[0] == 201 and handled == [json.loads(body)]
