"""Every service's own OpenAPI document, fetched from it and merged (domain/openapi.py) into the
one the gateway serves at /api/openapi.json; kept a minute, so that a front end's build asking
for it often does not ask every service each time."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Mapping

import httpx

from civicgrid_gateway.domain.openapi import aggregate

KEPT_SECONDS = 60.0

class AggregatedOpenApi:
    def __init__(self, upstreams: Mapping[str, str], gateway_document: Callable[[], Mapping[str, Any]], *,
                 timeout: float, now: Callable[[], float] = time.monotonic,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._upstreams = dict(upstreams)
        self._gateway_document = gateway_document
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._now = now
        self._kept: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self._client.aclose()

    async def document(self) -> dict[str, Any]:
        async with self._lock:  # one fetch at a time; the others take its result
            if self._kept is not None and self._now() - self._kept[0] < KEPT_SECONDS:
                return self._kept[1]
            fetched = await asyncio.gather(*(self._fetch(base) for base in self._upstreams.values()))
            documents = {name: doc for name, doc in zip(self._upstreams, fetched) if doc is not None}
            merged = aggregate(self._gateway_document(), documents)
            missing = sorted(set(self._upstreams) - set(documents))
            if missing:
                # Said in the document, and not kept: the next request asks the missing again.
                merged["x-civicgrid-unavailable"] = missing
            else:
                self._kept = (self._now(), merged)
            return merged

    async def _fetch(self, base: str) -> dict[str, Any] | None:
        try:
            response = await self._client.get(f"{base.rstrip('/')}/openapi.json")
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError):
            return None
