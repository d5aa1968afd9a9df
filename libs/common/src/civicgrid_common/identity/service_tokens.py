"""A service's own token from the identity provider, for the calls it makes as itself.

The OAuth 2.0 client-credentials grant (RFC 6749 section 4.4) with Authlib's httpx client: the
token endpoint found through the issuer's OIDC discovery document, the token fetched on first
use and again shortly before it expires. The service account's roles and jurisdictions are the
identity provider's to give (the realm's service-account users), not this process's to claim.
"""
from __future__ import annotations

import asyncio
import warnings
from typing import Any

import httpx
from authlib.integrations.base_client import OAuthError

with warnings.catch_warnings():
    # Authlib 1.9 would rather run on pydantic's httpx2 and warns, once, that it falls back to
    # httpx, on which this whole platform runs (one HTTP stack, not two); the fallback is
    # Authlib's own supported path in 1.9, and the dependency stays below 1.10 for it.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated", category=DeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

class DiscoveryFailed(Exception):
    """The issuer's discovery document could not be had, or describes another issuer."""


async def provider_metadata(client: AsyncOAuth2Client, issuer: str, backchannel: str | None = None) -> dict[str, Any]:
    """The issuer's OpenID provider metadata (OpenID Connect Discovery 1.0), fetched with
    `client` from the issuer or from `backchannel` (the issuer as this process reaches it), and
    trusted only if it names that very issuer."""
    url = f"{(backchannel or issuer).rstrip('/')}/.well-known/openid-configuration"
    try:
        answer = await client.request("GET", url, withhold_token=True)
        answer.raise_for_status()
        metadata: Any = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise DiscoveryFailed(f"the discovery of {issuer} failed: {type(exc).__name__}") from exc
    if not isinstance(metadata, dict) or metadata.get("issuer") != issuer.rstrip("/"):
        raise DiscoveryFailed(f"the discovery document at {url} names another issuer than {issuer}")
    return metadata


# Fetch a new token this long before the old one expires: a token that expires in flight to
# the service it was sent to would be refused there.
RENEW_BEFORE_EXPIRY_SECONDS = 60


class TokenUnavailable(Exception):
    """The identity provider did not issue a token (unreachable, refused the client, or
    answered something that is not a token); the reason is safe to log (no secret in it)."""


class ClientCredentialsToken:
    """`await token()` -> a bearer token for this service's own client at `issuer`."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, *, backchannel: str | None = None,
                 timeout: float = 10.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.backchannel = (backchannel or issuer).rstrip("/")  # where this process reaches the issuer
        self.client_id = client_id
        self._client = AsyncOAuth2Client(client_id, client_secret, timeout=timeout,
                                         token_endpoint_auth_method="client_secret_basic")
        self._token_endpoint: str | None = None
        self._lock = asyncio.Lock()  # one fetch at a time: concurrent callers share its token

    async def __call__(self) -> str:
        async with self._lock:
            token = self._client.token
            if token is None or token.is_expired(leeway=RENEW_BEFORE_EXPIRY_SECONDS) is not False:
                await self._fetch()
            return self._client.token["access_token"]

    async def _fetch(self) -> None:
        try:
            if self._token_endpoint is None:
                self._token_endpoint = await self._discover_token_endpoint()
            await self._client.fetch_token(self._token_endpoint, grant_type="client_credentials")
        except OAuthError as exc:  # the provider's answer, e.g. invalid_client or unauthorized_client
            raise TokenUnavailable(f"{self.issuer} refused client {self.client_id!r}: {exc.error}") from exc
        except httpx.HTTPError as exc:
            raise TokenUnavailable(f"{self.issuer} could not be reached: {type(exc).__name__}") from exc
        if not isinstance((self._client.token or {}).get("access_token"), str):
            raise TokenUnavailable(f"{self.issuer} answered the token request without an access token")

    async def _discover_token_endpoint(self) -> str:
        try:
            metadata = await provider_metadata(self._client, self.issuer, self.backchannel)
        except DiscoveryFailed as exc:
            raise TokenUnavailable(str(exc)) from exc
        if not isinstance(metadata.get("token_endpoint"), str):
            raise TokenUnavailable(f"the discovery document of {self.issuer} names no token endpoint for it")
        return metadata["token_endpoint"]

    async def close(self) -> None:
        await self._client.aclose()
