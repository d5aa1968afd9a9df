"""X-Request-Id on every request and answer: the caller's when it is a sane one, else a new one;
on request.state for the proxy to pass on, and on every answer (the gateway's own problems too)."""
from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from civicgrid_common.web.asgi import header

from civicgrid_gateway.domain.routes import request_id


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = header(scope, b"x-request-id")
        rid = request_id(given)
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)
