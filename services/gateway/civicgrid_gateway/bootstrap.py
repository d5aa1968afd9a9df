"""gateway's composition root: the upstream services (pooled clients and their circuits). No
database, no topics: the gateway keeps nothing."""
from __future__ import annotations

from civicgrid_common.circuit import CircuitPolicy
from civicgrid_common.service import Wired

from civicgrid_gateway.adapters.proxy import Upstreams
from civicgrid_gateway.config import GatewaySettings


async def bootstrap(settings: GatewaySettings, **upstream_options) -> Wired:
    upstreams = Upstreams(
        settings.upstreams, connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
        pool_connections=settings.pool_connections, attempts=settings.attempts,
        circuit=CircuitPolicy(failures=settings.circuit_failures, cooldown=settings.circuit_cooldown_seconds,
                              max_cooldown=settings.circuit_max_cooldown_seconds),
        max_body_bytes=settings.max_proxied_body_bytes, **upstream_options)
    return Wired(pool=None, state={"upstreams": upstreams}, close=upstreams.close)
