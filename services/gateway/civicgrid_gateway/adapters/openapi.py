"""Every service's own OpenAPI document, fetched from it and merged (domain/openapi.py) into the
one the gateway serves at /api/openapi.json; kept a minute, so that a front end's build asking
for it often does not ask every service each time. Fetched over the proxy's own clients
(adapters/proxy.py), so a service that is down costs its circuit's answer, not a timeout."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Mapping

from civicgrid_gateway.adapters.proxy import Upstreams
from civicgrid_gateway.domain.openapi import aggregate

KEPT_SECONDS = 60.0


class AggregatedOpenApi:
    def __init__(self, upstreams: Upstreams, gateway_document: Callable[[], Mapping[str, Any]], *,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._upstreams = upstreams
        self._gateway_document = gateway_document
        self._now = now
        self._kept: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def document(self) -> dict[str, Any]:
        async with self._lock:  # one fetch at a time; the others take its result
            if self._kept is not None and self._now() - self._kept[0] < KEPT_SECONDS:
                return self._kept[1]
            names = sorted(self._upstreams.names)
            answers = await asyncio.gather(*(self._upstreams.get_json(name, "/openapi.json", "", [])
                                             for name in names))
            documents = {name: answer.body for name, answer in zip(names, answers) if answer.ok}
            merged = aggregate(self._gateway_document(), documents)
            missing = sorted(set(names) - set(documents))
            if missing:
                # Said in the document, and not kept: the next request asks the missing again.
                merged["x-civicgrid-unavailable"] = missing
            else:
                self._kept = (self._now(), merged)
            return merged
