"""The upstream services over HTTP (aiohttp's client): one pooled session per upstream, request and
answer bodies streamed through (never held whole), a circuit per upstream (civicgrid_common.circuit):
an upstream that stops answering costs its own routes one connect timeout each until the circuit
opens, then nothing, and the other upstreams' routes never notice.

aiohttp rather than httpx: every proxied request crosses this client, and on this machine httpx's
AsyncClient spent 1.5-1.7 ms of CPU a request where aiohttp's spent 0.14-0.16 ms (the same
16-connection loop against one loopback server, 2026-12-04). The answer's body is passed on as
the upstream wrote it (no decompression), and the client adds no header of its own that the
caller did not send (no Accept-Encoding: an upstream must not compress for a caller who did not
ask)."""
from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import AsyncIterator, Callable, Mapping, Sequence

import aiohttp
from yarl import URL

from civicgrid_common.circuit import Circuit, CircuitPolicy

from civicgrid_gateway.domain.case_file import Answer

log = logging.getLogger(__name__)

_NOT_ADDED = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


class UpstreamUnavailable(Exception):
    """The upstream cannot be reached now (its circuit is open, or it did not answer)."""

    def __init__(self, upstream: str, reason: str, retry_after: int) -> None:
        super().__init__(f"{upstream}: {reason}")
        self.upstream = upstream
        self.reason = reason
        self.retry_after = retry_after


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body exceeds {limit} bytes")
        self.limit = limit


class UpstreamAnswer:
    """An upstream's answer whose body is not read yet: stream it with `body()`, then `close()`
    (a body read to its end gives the connection back to the pool; one left unread closes it)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        # As they came, a repeated one (Set-Cookie) repeated: (name, value) in bytes.
        self.raw_headers: tuple[tuple[bytes, bytes], ...] = response.raw_headers

    def body(self) -> AsyncIterator[bytes]:
        return self._response.content.iter_any()

    async def close(self) -> None:
        self._response.release()


class Upstreams:
    def __init__(self, bases: Mapping[str, str], *, connect_timeout: float, read_timeout: float,
                 pool_connections: int, attempts: int, circuit: CircuitPolicy, max_body_bytes: int,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.names = frozenset(bases)
        self.attempts = attempts
        self.max_body_bytes = max_body_bytes
        self._policy = circuit
        self._monotonic = monotonic
        self._bases = {name: base.rstrip("/") for name, base in bases.items()}
        # connect: a free connection from the pool, or a new one; sock_read: each read of the answer.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_connect=connect_timeout,
                                              sock_read=read_timeout)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout,
                                                     sock_connect=connect_timeout, sock_read=None)
        self._pool_connections = pool_connections
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._circuits = {name: Circuit(cooldown=circuit.cooldown) for name in bases}

    def _session(self, upstream: str) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop (aiohttp binds a session to its loop).
        session = self._sessions.get(upstream)
        if session is None or session.closed:
            # trust_env=False: no proxy from the environment between the gateway and its services.
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_connections, limit_per_host=self._pool_connections),
                timeout=self._timeout, auto_decompress=False, trust_env=False, skip_auto_headers=_NOT_ADDED,
                cookie_jar=aiohttp.DummyCookieJar())
            self._sessions[upstream] = session
        return session

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._sessions.values()))

    def circuit_of(self, upstream: str) -> Circuit:
        return self._circuits[upstream]

    async def send(self, upstream: str, method: str, path: str, query: bytes,
                   headers: Sequence[tuple[str, str]], body: AsyncIterator[bytes] | None, *,
                   retry: bool, stream: bool) -> UpstreamAnswer:
        """The upstream's answer, its body not read yet (the caller streams it and closes it)."""
        circuit = self._circuits[upstream]
        session = self._session(upstream)
        # The path and query as they came, not parsed and written again (an escaped "/" stays so).
        url = URL(self._bases[upstream] + path + ("?" + query.decode("latin-1") if query else ""), encoded=True)
        content = self._bounded(body) if body is not None else None
        attempts = self.attempts if retry else 1
        for attempt in range(1, attempts + 1):
            admitted, wait = circuit.admit(self._monotonic())
            if not admitted:
                raise UpstreamUnavailable(upstream, "its circuit is open after repeated failures",
                                          max(1, math.ceil(wait or self._policy.cooldown)))
            try:
                response = await session.request(method, url, headers=list(headers), data=content,
                                                 allow_redirects=False,
                                                 timeout=self._stream_timeout if stream else self._timeout)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if isinstance(exc.__cause__, BodyTooLarge):
                    # aiohttp raises the body's own error as the cause of a ClientConnectionError:
                    # no verdict on the upstream, the caller sent too much.
                    circuit.trial = False
                    raise exc.__cause__ from None
                circuit.record(failed=True, now=self._monotonic(), policy=self._policy)
                log.warning("upstream %s: %s %s failed (attempt %d of %d): %r", upstream, method, path, attempt,
                            attempts, exc)
                if attempt == attempts:
                    reason = "it did not answer in time" if isinstance(exc, asyncio.TimeoutError) else \
                        "it cannot be reached"
                    raise UpstreamUnavailable(upstream, reason, 1 if circuit.open_until is None else
                                              max(1, math.ceil(circuit.open_until - self._monotonic()))) from exc
                continue
            except BaseException:
                # No verdict on the upstream (a caller gone mid-upload): a trial request must not
                # leave the circuit waiting for an outcome for good.
                circuit.trial = False
                raise
            circuit.record(failed=False, now=self._monotonic(), policy=self._policy)
            return UpstreamAnswer(response)
        raise AssertionError("unreachable")

    async def get_json(self, upstream: str, path: str, query: str, headers: Sequence[tuple[str, str]]) -> Answer:
        """A GET for the gateway's own views (retried as any bodiless GET, behind the same
        circuit): the service's status and JSON body, read whole but no larger than the limit of
        a body, or no status if it did not answer."""
        try:
            answer = await self.send(upstream, "GET", path, query.encode("ascii"), headers, None, retry=True,
                                     stream=False)
        except UpstreamUnavailable as exc:
            return Answer(None, reason=exc.reason)
        try:
            content = bytearray()
            async for chunk in answer.body():
                content += chunk
                if len(content) > self.max_body_bytes:
                    return Answer(None, reason=f"its answer exceeds {self.max_body_bytes} bytes")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return Answer(None, reason=f"its answer broke off ({type(exc).__name__})")
        finally:
            await answer.close()
        try:
            return Answer(answer.status, json.loads(content) if content else None)
        except ValueError:
            return Answer(answer.status, None)

    async def _bounded(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in body:
            seen += len(chunk)
            if seen > self.max_body_bytes:
                raise BodyTooLarge(self.max_body_bytes)
            if chunk:
                yield chunk
