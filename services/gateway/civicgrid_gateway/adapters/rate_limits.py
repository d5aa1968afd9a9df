"""Rate limits on the `limits` package: sliding-window counters per key, in the storage its URI
names (memory per process, or a shared store such as Redis)."""
from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string


class RateLimits:
    """`await limits.over(kind, key)`: None while `key` is within every limit of its kind,
    else the whole seconds to wait before its next request would be let through."""

    def __init__(self, storage_uri: str, **limits_by_kind: str) -> None:
        # The async flavour of the storage ("async+memory://"), for the asyncio limiter.
        uri = storage_uri if storage_uri.startswith("async+") else "async+" + storage_uri
        self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(uri))
        self._limits: dict[str, list[RateLimitItem]] = {kind: parse_many(spec) for kind, spec in limits_by_kind.items()}

    async def over(self, kind: str, key: str) -> int | None:
        for item in self._limits[kind]:
            if not await self._limiter.hit(item, kind, key):
                stats = await self._limiter.get_window_stats(item, kind, key)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return None
