"""gateway's composition root: the upstream services (pooled clients and their circuits), the
contracts it publishes, the rate limits' counters and the services' OpenAPI documents merged.
No database, no topics: the gateway keeps nothing."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from civicgrid_common.circuit import CircuitPolicy
from civicgrid_common.contracts import Contracts
from civicgrid_common.service import Wired

from civicgrid_gateway.adapters.contracts import PublishedContracts
from civicgrid_gateway.adapters.openapi import AggregatedOpenApi
from civicgrid_gateway.adapters.proxy import Upstreams
from civicgrid_gateway.adapters.rate_limits import RateLimits
from civicgrid_gateway.config import GatewaySettings


async def bootstrap(settings: GatewaySettings, gateway_document: Callable[[], Mapping[str, Any]],
                    **upstream_options) -> Wired:
    upstreams = Upstreams(
        settings.upstreams, connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
        pool_connections=settings.pool_connections, attempts=settings.attempts,
        circuit=CircuitPolicy(failures=settings.circuit_failures, cooldown=settings.circuit_cooldown_seconds,
                              max_cooldown=settings.circuit_max_cooldown_seconds),
        max_body_bytes=settings.max_proxied_body_bytes, **upstream_options)
    contracts = PublishedContracts(Contracts(settings.contracts_dir), settings.schema_base_url)
    rate_limits = RateLimits(settings.rate_limit_storage, address=settings.rate_limit_per_address,
                             principal=settings.rate_limit_per_principal)
    openapi = AggregatedOpenApi(upstreams, gateway_document)
    return Wired(pool=None, state={"upstreams": upstreams, "contracts": contracts, "rate_limits": rate_limits,
                                   "openapi": openapi}, close=upstreams.close)
