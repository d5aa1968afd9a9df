"""Sign-in's adapters: the identity provider's endpoints (Authlib's OAuth 2.0 client on httpx),
the browser's cookies (JWE compact, `dir` + A256GCM, with joserfc: encrypted and authenticated
under the gateway's session key, so a cookie can be neither read nor made elsewhere), and the
access tokens the gateway holds for signed-in sessions (in memory: a replica without one gets
its own with the session's refresh token)."""
from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from authlib.integrations.base_client import OAuthError
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

# Authlib's client as the platform imports it (service_tokens says why there)
from civicgrid_common.identity.service_tokens import AsyncOAuth2Client, DiscoveryFailed, provider_metadata
from civicgrid_common.keyfiles import load_aes_key
from civicgrid_common.paths import local_state_dir

CALLBACK_PATH = "/auth/callback"  # the redirect URI registered at the client is {public_url}/auth/callback
# A browser keeps at least 4096 bytes a cookie (RFC 6265 §6.1); a longer one is not ours.
MAX_COOKIE_CHARS = 4096
_ENCRYPTION = {"alg": "dir", "enc": "A256GCM"}


class SignInUnavailable(Exception):
    """The identity provider could not be reached or answered what is not OAuth."""


class SignInRefused(Exception):
    """The identity provider refused: a code used or expired, a session it ended (`error`)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class SessionCookies:
    """Cookie values sealed for one use (`sign_in` or `session`): one cannot stand for the other."""

    def __init__(self, key: bytes) -> None:
        self._key = OctKey.import_key(key)

    def seal(self, use: str, claims: dict[str, Any]) -> str:
        value = jwe.encrypt_compact(dict(_ENCRYPTION), json.dumps({**claims, "use": use}).encode(), self._key)
        if len(value) > MAX_COOKIE_CHARS:  # the refresh token grew beyond what a browser keeps
            raise ValueError(f"a {use} cookie of {len(value)} characters would not be kept by a browser")
        return value

    def open(self, use: str, value: str | None, *, now: float | None = None) -> dict[str, Any] | None:
        """The claims of a cookie this gateway sealed for `use`, unexpired; else None."""
        if not value or len(value) > MAX_COOKIE_CHARS:
            return None
        try:
            claims = json.loads(jwe.decrypt_compact(value, self._key).plaintext)
        except (JoseError, ValueError):  # altered, another key's, or not a JWE at all
            return None
        if not isinstance(claims, dict) or claims.get("use") != use:
            return None
        expires_at = claims.get("exp")
        if not isinstance(expires_at, int) or expires_at <= (now if now is not None else time.time()):
            return None
        return claims


class IdentityProvider:
    """The gateway's own client at the identity provider: the authorization-code flow with
    PKCE, refreshing, and ending a session. Its endpoints from the issuer's discovery document
    (fetched through `backchannel` where the gateway reaches the issuer at another address; the
    authorization endpoint in it is the browser's)."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, redirect_uri: str, *,
                 backchannel: str | None = None, timeout: float = 10.0) -> None:
        self.issuer = issuer.rstrip("/")
        self._backchannel = (backchannel or issuer).rstrip("/")
        # One client for every person: it is used for the token endpoint's answers alone, never
        # to call an API with the token Authlib remembers on it.
        self._client = AsyncOAuth2Client(client_id, client_secret, redirect_uri=redirect_uri, scope="openid",
                                         code_challenge_method="S256", timeout=timeout,
                                         token_endpoint_auth_method="client_secret_basic")
        self._metadata: dict[str, Any] | None = None

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            try:
                self._metadata = await provider_metadata(self._client, self.issuer, self._backchannel)
            except DiscoveryFailed as exc:
                raise SignInUnavailable(str(exc)) from exc
        return self._metadata

    async def authorization_url(self, state: str, code_verifier: str) -> str:
        endpoint = (await self.metadata())["authorization_endpoint"]
        url, _ = self._client.create_authorization_url(endpoint, state=state, code_verifier=code_verifier)
        return url

    async def redeem(self, code: str, code_verifier: str) -> dict[str, Any]:
        """The tokens for an authorization code (with the PKCE verifier of its request)."""
        return await self._token_request(code=code, code_verifier=code_verifier, grant_type="authorization_code")

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        return await self._token_request(refresh_token=refresh_token, grant_type="refresh_token")

    async def _token_request(self, **params: str) -> dict[str, Any]:
        endpoint = (await self.metadata())["token_endpoint"]
        try:
            token = await self._client.fetch_token(endpoint, **params)
        except OAuthError as exc:
            raise SignInRefused(exc.error or "refused") from exc
        except httpx.HTTPError as exc:
            raise SignInUnavailable(f"the identity provider's token endpoint: {type(exc).__name__}") from exc
        if not isinstance(token.get("access_token"), str) or not isinstance(token.get("refresh_token"), str):
            raise SignInUnavailable("the identity provider answered without an access and a refresh token")
        return dict(token)

    async def end_session(self, refresh_token: str) -> None:
        """End the person's session at the identity provider (its refresh tokens die with it):
        OpenID Connect RP-initiated logout, sent by the gateway itself with its client's
        credentials and the refresh token, as Keycloak accepts it."""
        endpoint = (await self.metadata()).get("end_session_endpoint")
        if not endpoint:
            return
        try:
            answer = await self._client.request(
                "POST", endpoint, data={"refresh_token": refresh_token, "client_id": self._client.client_id},
                auth=(self._client.client_id, self._client.client_secret), withhold_token=True)
        except httpx.HTTPError as exc:
            raise SignInUnavailable(f"the identity provider's logout: {type(exc).__name__}") from exc
        if answer.status_code >= 500:
            raise SignInUnavailable(f"the identity provider's logout answered {answer.status_code}")

    async def close(self) -> None:
        await self._client.aclose()


@dataclass
class SignIn:
    """What bootstrap wires when sign-in is configured (app.state.sign_in; None when it is not)."""

    provider: "IdentityProvider"
    cookies: "SessionCookies"
    access_tokens: "AccessTokens"
    secure_cookies: bool


class AccessTokens:
    """The access token of each signed-in session this replica has seen, until it nears its
    expiry; bounded (the least recently used goes first)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, session_id: str, *, valid_for: float, now: float | None = None) -> str | None:
        held = self._tokens.get(session_id)
        if held is None or held[1] - valid_for <= (now if now is not None else time.time()):
            return None
        self._tokens.move_to_end(session_id)
        return held[0]

    def put(self, session_id: str, token: str, expires_at: float) -> None:
        self._tokens[session_id] = (token, expires_at)
        self._tokens.move_to_end(session_id)
        while len(self._tokens) > self.capacity:
            self._tokens.popitem(last=False)

    def forget(self, session_id: str) -> None:
        self._tokens.pop(session_id, None)


KEY_FILE_ENV = "CIVICGRID_SESSION_KEY_FILE"
LOCAL_KEY_FILE = "gateway-session.key"


class SessionKeyError(ValueError):
    """The session cookies' key file is missing or unusable."""


def local_key_path() -> Path:
    return local_state_dir() / "keys" / LOCAL_KEY_FILE


def load_session_key(path: Path | None, environment: str) -> bytes:
    return load_aes_key(path, environment=environment, setting=KEY_FILE_ENV, what="the session cookies' key",
                        command="civicgrid_gateway.entrypoints.keys", local=local_key_path, error=SessionKeyError)
