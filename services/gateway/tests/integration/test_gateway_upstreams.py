"""The gateway's client to its upstream services (adapters/proxy.py) against real HTTP servers on
loopback: what it sends is what the caller sent (no header of its own, the path as written), what
comes back is what the upstream wrote (compressed bytes stay compressed), a body over the limit is
stopped on its way, a trial request without a verdict does not shut the circuit for good, and the
aggregated OpenAPI document says which service did not answer and asks it again."""
from __future__ import annotations

import asyncio
import gzip
import json
import socket

import pytest
from standins.serving import serving  # uvicorn on 127.0.0.1:0 for a test

from civicgrid_common.circuit import CircuitPolicy

from civicgrid_gateway.adapters.openapi import KEPT_SECONDS, AggregatedOpenApi
from civicgrid_gateway.adapters.proxy import BodyTooLarge, Upstreams

GATEWAY_DOCUMENT = {"openapi": "3.1.0", "info": {"title": "civicgrid gateway", "version": "1"}, "paths": {},
                    "components": {"schemas": {}}}


def document(operation: str) -> dict:
    return {"openapi": "3.1.0", "info": {"title": operation, "version": "1"},
            "paths": {"/v1/cases": {"get": {"operationId": operation, "responses": {"200": {"description": "ok"}}}}},
            "components": {"schemas": {}}}


class Upstream:
    """A service's HTTP as a plain ASGI app: notes each request (method, raw path, headers, body
    length) and answers with `answer` (status, headers, body)."""

    def __init__(self, answer=(200, [(b"content-type", b"application/json")], b"{}")) -> None:
        self.answer = answer
        self.seen: list[tuple[str, bytes, dict[bytes, bytes], int]] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        self.seen.append((scope["method"], scope["raw_path"] + (b"?" + scope["query_string"]
                                                                 if scope["query_string"] else b""),
                          dict(scope["headers"]), size))
        status, headers, body = self.answer(scope) if callable(self.answer) else self.answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def upstreams(bases: dict[str, str], **options) -> Upstreams:
    return Upstreams(bases, **{"connect_timeout": 1.0, "read_timeout": 5.0, "pool_connections": 2, "attempts": 1,
                               "circuit": CircuitPolicy(failures=5), "max_body_bytes": 1 << 20, **options})


async def read(answer) -> bytes:
    try:
        return b"".join([chunk async for chunk in answer.body()])
    finally:
        await answer.close()


async def test_the_caller_s_request_goes_on_as_sent_and_the_answer_comes_back_as_written():
    compressed = gzip.compress(json.dumps({"items": list(range(200))}).encode())
    upstream = Upstream((200, [(b"content-type", b"application/json"), (b"content-encoding", b"gzip"),
                               (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")], compressed))
    async with serving(upstream) as base:
        client = upstreams({"intake": base + "/"})
        try:
            answer = await client.send("intake", "GET", "/v1/cases/a%2Fb", b"q=%E4%B8%AD+d&x=1",
                                       [("authorization", "Bearer t"), ("accept-encoding", "gzip")], None,
                                       retry=True, stream=False)
            assert answer.status == 200
            assert await read(answer) == compressed  # not decompressed on the way
            assert [v for k, v in answer.raw_headers if k.lower() == b"set-cookie"] == [b"a=1", b"b=2"]
            [(method, path, headers, _)] = upstream.seen
            assert (method, path) == ("GET", b"/v1/cases/a%2Fb?q=%E4%B8%AD+d&x=1")  # as written, "/" still escaped
            assert headers[b"authorization"] == b"Bearer t" and headers[b"accept-encoding"] == b"gzip"

            # a caller who asks for no encoding: the client asks for none in its stead, nor names itself
            await read(await client.send("intake", "POST", "/v1/cases", b"", [("content-type", "application/json"),
                                                                             ("content-length", "2")],
                                         one_chunk(b"{}"), retry=False, stream=False))
            _, _, headers, size = upstream.seen[-1]
            assert size == 2 and headers[b"content-length"] == b"2" and b"transfer-encoding" not in headers
            assert not {b"accept-encoding", b"user-agent", b"accept"} & set(headers)
        finally:
            await client.close()


async def one_chunk(body: bytes):
    yield body


async def test_a_body_over_the_limit_is_stopped_and_a_trial_without_a_verdict_lets_the_next_try():
    upstream = Upstream()
    async with serving(upstream) as base:
        policy = CircuitPolicy(failures=1, cooldown=5)
        now = [0.0]
        client = upstreams({"intake": base}, max_body_bytes=4, circuit=policy, monotonic=lambda: now[0])
        try:
            circuit = client.circuit_of("intake")
            circuit.record(failed=True, now=0.0, policy=policy)
            now[0] = 10.0  # the cool-down is over: the next request is the trial

            async def big():
                yield b"abc"
                yield b"too many bytes"

            with pytest.raises(BodyTooLarge):
                await client.send("intake", "POST", "/v1/x", b"", [], big(), retry=False, stream=False)
            assert all(size <= 4 for *_, size in upstream.seen)  # never more than the limit reached it
            ok = await client.send("intake", "GET", "/v1/x", b"", [], None, retry=False, stream=False)
            assert ok.status == 200 and circuit.open_until is None
            await read(ok)
        finally:
            await client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openapi_of(operation: str) -> Upstream:
    return Upstream((200, [(b"content-type", b"application/json")], json.dumps(document(operation)).encode()))


async def test_the_document_is_kept_a_minute_and_a_service_that_does_not_answer_is_said_and_asked_again():
    intake, approval, approval_port = openapi_of("intake_register"), openapi_of("approval_register"), free_port()
    clock = [0.0]
    async with serving(intake) as intake_base:
        client = upstreams({"intake": intake_base, "approval": f"http://127.0.0.1:{approval_port}/"})
        aggregated = AggregatedOpenApi(client, lambda: GATEWAY_DOCUMENT, now=lambda: clock[0])
        try:
            partial = await aggregated.document()  # nothing listens on approval's port
            assert partial["x-civicgrid-unavailable"] == ["approval"]
            assert "/api/intake/v1/cases" in partial["paths"] and "/api/approval/v1/cases" not in partial["paths"]

            async with serving(approval, port=approval_port):
                whole = await aggregated.document()  # not kept while one was missing: asked again at once
                assert len(intake.seen) == 2 and len(approval.seen) == 1
                assert "x-civicgrid-unavailable" not in whole and "/api/approval/v1/cases" in whole["paths"]

                clock[0] = KEPT_SECONDS - 1
                assert await aggregated.document() == whole and len(intake.seen) == 2  # kept
                clock[0] = KEPT_SECONDS + 1
                await aggregated.document()
                assert len(intake.seen) == 3 and len(approval.seen) == 2

                # callers asking at once share one round of fetches
                clock[0] = 3 * KEPT_SECONDS
                documents = await asyncio.gather(*(aggregated.document() for _ in range(5)))
                assert all(d == documents[0] for d in documents)
                assert len(intake.seen) == 4 and len(approval.seen) == 3
        finally:
            await client.close()
