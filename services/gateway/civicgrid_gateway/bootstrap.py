"""gateway's composition root: the upstream services (pooled clients and their circuits), the
contracts it publishes, the rate limits' counters, the services' OpenAPI documents merged, and
sign-in (its client at the identity provider, the session cookies' key) when it is configured.
No database, no topics: the gateway keeps nothing (a session lives in its browser's cookie)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from civicgrid_common.circuit import CircuitPolicy
from civicgrid_common.contracts import Contracts
from civicgrid_common.service import Wired

from civicgrid_gateway.adapters.contracts import PublishedContracts
from civicgrid_gateway.adapters.openapi import AggregatedOpenApi
from civicgrid_gateway.adapters.proxy import Upstreams
from civicgrid_gateway.adapters.rate_limits import RateLimits
from civicgrid_gateway.adapters.sign_in import (
    CALLBACK_PATH,
    AccessTokens,
    IdentityProvider,
    SessionCookies,
    SignIn,
    load_session_key,
)
from civicgrid_gateway.config import GatewaySettings


def sign_in_of(settings: GatewaySettings) -> SignIn | None:
    if not (settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret):
        return None
    provider = IdentityProvider(settings.oidc_issuer, settings.oidc_client_id,
                                settings.oidc_client_secret.get_secret_value(), settings.public_url + CALLBACK_PATH,
                                backchannel=settings.oidc_backchannel_url)
    return SignIn(provider, SessionCookies(load_session_key(settings.session_key_file, settings.environment)),
                  AccessTokens(), secure_cookies=settings.session_cookie_secure)


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
    sign_in = sign_in_of(settings)

    async def close() -> None:
        await upstreams.close()
        if sign_in is not None:
            await sign_in.provider.close()

    return Wired(pool=None, state={"upstreams": upstreams, "contracts": contracts, "rate_limits": rate_limits,
                                   "openapi": openapi, "sign_in": sign_in}, close=close)
