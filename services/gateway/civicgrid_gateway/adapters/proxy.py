"""The upstream services over HTTP (httpx): one pooled client per upstream, request and answer
bodies streamed through (never held whole), a circuit per upstream (civicgrid_common.circuit):
an upstream that stops answering costs its own routes one connect timeout each until the circuit
opens, then nothing, and the other upstreams' routes never notice."""
from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import AsyncIterator, Callable, Mapping, Sequence

import httpx

from civicgrid_common.circuit import Circuit, CircuitPolicy

from civicgrid_gateway.domain.case_file import Answer

log = logging.getLogger(__name__)


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


class Upstreams:
    def __init__(self, bases: Mapping[str, str], *, connect_timeout: float, read_timeout: float,
                 pool_connections: int, attempts: int, circuit: CircuitPolicy, max_body_bytes: int,
                 monotonic: Callable[[], float] = time.monotonic,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.names = frozenset(bases)
        self.attempts = attempts
        self.max_body_bytes = max_body_bytes
        self._policy = circuit
        self._monotonic = monotonic
        self._timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout,
                                      pool=connect_timeout)
        limits = httpx.Limits(max_connections=pool_connections, max_keepalive_connections=pool_connections)
        # trust_env=False: no proxy from the environment between the gateway and its services;
        # follow_redirects=False: an upstream's redirect goes back to the caller as it is.
        self._clients = {name: httpx.AsyncClient(base_url=base, timeout=self._timeout, limits=limits,
                                                 trust_env=False, follow_redirects=False, transport=transport)
                         for name, base in bases.items()}
        self._circuits = {name: Circuit(cooldown=circuit.cooldown) for name in bases}

    async def close(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self._clients.values()))

    def circuit_of(self, upstream: str) -> Circuit:
        return self._circuits[upstream]

    async def send(self, upstream: str, method: str, path: str, query: bytes,
                   headers: Sequence[tuple[str, str]], body: AsyncIterator[bytes] | None, *,
                   retry: bool, stream: bool) -> httpx.Response:
        """The upstream's answer, its body not read yet (the caller streams it and closes it)."""
        circuit = self._circuits[upstream]
        client = self._clients[upstream]
        timeout = httpx.Timeout(self._timeout.connect, read=None, write=self._timeout.write,
                                pool=self._timeout.pool) if stream else self._timeout
        content = self._bounded(body) if body is not None else None
        attempts = self.attempts if retry else 1
        for attempt in range(1, attempts + 1):
            admitted, wait = circuit.admit(self._monotonic())
            if not admitted:
                raise UpstreamUnavailable(upstream, "its circuit is open after repeated failures",
                                          max(1, math.ceil(wait or self._policy.cooldown)))
            # The path and query as they came, not parsed and written again.
            base = client.base_url
            url = base.copy_with(raw_path=base.raw_path.rstrip(b"/") + path.encode("latin-1")
                                 + (b"?" + query if query else b""))
            request = client.build_request(method, url, headers=list(headers), content=content, timeout=timeout)
            try:
                answer = await client.send(request, stream=True)
            except httpx.TransportError as exc:
                circuit.record(failed=True, now=self._monotonic(), policy=self._policy)
                log.warning("upstream %s: %s %s failed (attempt %d of %d): %r", upstream, method, path, attempt,
                            attempts, exc)
                if attempt == attempts:
                    reason = "it did not answer in time" if isinstance(exc, httpx.TimeoutException) else \
                        "it cannot be reached"
                    raise UpstreamUnavailable(upstream, reason, 1 if circuit.open_until is None else
                                              max(1, math.ceil(circuit.open_until - self._monotonic()))) from exc
                continue
            except BaseException:
                # No verdict on the upstream (a body too large, a caller gone mid-upload): a trial
                # request must not leave the circuit waiting for an outcome for good.
                circuit.trial = False
                raise
            circuit.record(failed=False, now=self._monotonic(), policy=self._policy)
            return answer
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
            async for chunk in answer.aiter_bytes():
                content += chunk
                if len(content) > self.max_body_bytes:
                    return Answer(None, reason=f"its answer exceeds {self.max_body_bytes} bytes")
        except httpx.HTTPError as exc:
            return Answer(None, reason=f"its answer broke off ({type(exc).__name__})")
        finally:
            await answer.aclose()
        try:
            return Answer(answer.status_code, json.loads(content) if content else None)
        except ValueError:
            return Answer(answer.status_code, None)

    async def _bounded(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in body:
            seen += len(chunk)
            if seen > self.max_body_bytes:
                raise BodyTooLarge(self.max_body_bytes)
            if chunk:
                yield chunk
