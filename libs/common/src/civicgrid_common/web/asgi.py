"""Small ASGI helpers shared by the pure ASGI middlewares (no Starlette request objects, so
they see every byte as it streams and can answer before the app runs)."""
from __future__ import annotations

from typing import Awaitable, Callable, MutableMapping, Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds {limit} bytes")
        self.limit = limit


class ClientDisconnected(Exception):
    """The client went away before sending its whole body: there is no request to handle."""


async def read_body(receive: Receive, limit: int | None = None) -> bytes:
    """Read the whole request body, counting bytes as they arrive (chunked bodies have no
    Content-Length); raise BodyTooLarge as soon as more than `limit` bytes came in, and
    ClientDisconnected if the client left mid-body (a cut-off body must never reach the app,
    nor be remembered under an Idempotency-Key that the client's retry will reuse)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the already-read body, then defers to the real one
    (which reports the client's disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
