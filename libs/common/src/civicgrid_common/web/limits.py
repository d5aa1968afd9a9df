"""Request size limit as a pure ASGI middleware.

A declared Content-Length over the limit is refused at once; otherwise the bytes are counted
as they stream in (a chunked body declares no length, and a declared length may lie), and the
request is refused with 413 the moment it passes the limit, before the app sees any of it.
"""
from __future__ import annotations

from civicgrid_common.problems import BAD_REQUEST, REQUEST_TOO_LARGE, Problem, parameter_error
from civicgrid_common.web.asgi import ASGIApp, BodyTooLarge, ClientDisconnected, Receive, Scope, Send, header, read_body, replaying
from civicgrid_common.web.problems import problem_response


def _too_large(limit: int) -> Problem:
    return Problem(REQUEST_TOO_LARGE, f"The request body exceeds the limit of {limit} bytes.", max_bytes=limit)


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await problem_response(Problem(BAD_REQUEST, "Content-Length is not a number.", errors=[
                    parameter_error("Content-Length", "header", "not a number")]))(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await problem_response(_too_large(self.max_bytes))(scope, receive, send)
                return
        try:
            body = await read_body(receive, self.max_bytes)
        except BodyTooLarge:
            await problem_response(_too_large(self.max_bytes))(scope, receive, send)
            return
        except ClientDisconnected:
            return  # nobody is listening for an answer
        await self.app(scope, replaying(body, receive), send)
