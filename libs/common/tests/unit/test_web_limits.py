"""The request size limit counts bytes as they stream: declared, chunked and lying bodies."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import AsyncIterator

import httpx
import pytest
from fastapi import Request

from civicgrid_common.settings import PlatformSettings
from civicgrid_common.web.app import create_app
from civicgrid_common.web.limits import BodySizeLimitMiddleware

LIMIT = 1000


class RecordingApp:
    """An ASGI app that reads the body and answers 200; remembers what it got."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@dataclass
class Outcome:
    status: int
    body: bytes
    app: RecordingApp
    reads: int  # how many times the middleware pulled from the client


async def call(chunks: list[bytes], content_length: int | None = None,
               headers: list[tuple[bytes, bytes]] | None = None) -> Outcome:
    app = RecordingApp()
    headers = list(headers or [])
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    read = 0

    async def receive() -> dict:
        nonlocal read
        read += 1
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await BodySizeLimitMiddleware(app, LIMIT)(scope, receive, send)
    return Outcome(sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), app, read)


async def test_body_within_the_limit_reaches_the_app_intact_in_chunks() -> None:
    chunks = [b"a" * 400, b"b" * 400, b"c" * 200]  # exactly LIMIT
    out = await call(chunks)
    assert out.status == 200 and out.app.bodies == [b"".join(chunks)]


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    out = await call([b"x" * 10], content_length=LIMIT + 1)
    assert out.status == 413 and out.app.bodies == [] and out.reads == 0
    problem = json.loads(out.body)
    assert problem["status"] == 413 and problem["max_bytes"] == LIMIT


async def test_chunked_body_over_the_limit_is_refused_without_reaching_the_app() -> None:
    out = await call([b"x" * 600, b"y" * 600, b"z" * 600])
    assert out.status == 413 and out.app.bodies == []
    assert out.reads == 2  # stopped as soon as the limit was passed
    assert json.loads(out.body)["title"] == "Content Too Large"


async def test_a_lying_content_length_does_not_get_past() -> None:
    out = await call([b"x" * 600, b"y" * 600], content_length=10)
    assert out.status == 413 and out.app.bodies == []


async def test_non_numeric_content_length_is_400() -> None:
    out = await call([b"x"], headers=[(b"content-length", b"12abc")])
    assert out.status == 400 and out.app.bodies == []


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(PlatformSettings(max_request_bytes=LIMIT), title="limits", version="0", idempotency=False)

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"received": len(await request.body())}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as c:
        yield c


async def test_service_refuses_a_streamed_chunked_upload_over_the_limit(client) -> None:
    async def upload() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"0123456789" * 30  # 300 bytes a chunk, no Content-Length

    r = await client.post("/echo", content=upload())
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"


async def test_service_accepts_a_chunked_upload_within_the_limit(client) -> None:
    async def upload() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"0123456789" * 30

    r = await client.post("/echo", content=upload())
    assert r.status_code == 200 and r.json() == {"received": 900}


async def test_service_refuses_a_declared_oversized_body(client) -> None:
    r = await client.post("/echo", content=b"x" * (LIMIT + 1))
    assert r.status_code == 413
