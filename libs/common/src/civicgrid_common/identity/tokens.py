"""JWT (RS256) minting for the local stack and verification against a JWKS.

Every service verifies tokens itself (not only the gateway). The JWKS is either a file (the
local stack's .local/keys/jwks.json) or the identity provider's OIDC `jwks_uri`. Several issuers
may be trusted at once (the local key and Keycloak on the local stack): a token is checked
against the keys of the issuer it names and no other, so a token signed with one issuer's key
that claims another issuer fails.
"""
from __future__ import annotations

import binascii
import json
import os
import threading
import time
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet
from jwt.utils import base64url_decode

from civicgrid_common.identity.localkeys import KEY_ID, ensure_local_keys, private_key_path
from civicgrid_common.identity.principal import InvalidPrincipal, Principal, Role, validate_jurisdiction
from civicgrid_common.paths import local_state_dir
from civicgrid_common.settings import PlatformSettings

ALGORITHM = "RS256"
DEFAULT_TTL_SECONDS = 8 * 3600  # one working day at the desk
# Clock skew tolerated between the token issuer and this service.
DEFAULT_LEEWAY_SECONDS = 30

_DEFAULTS = PlatformSettings.model_fields


class InvalidToken(Exception):
    """The bearer token is missing, malformed, badly signed, expired or not for us."""


class JwksUnavailable(Exception):
    """The JWKS could not be loaded: our problem (or the identity provider's), not the caller's."""


def mint_token(
    private_key_pem: bytes | str,
    roles: Role | str | Iterable[Role | str],
    jurisdictions: str | Iterable[str],
    department: str | None = None,
    subject: str | None = None,
    name: str | None = None,
    ttl: int = DEFAULT_TTL_SECONDS,
    *,
    issuer: str = _DEFAULTS["jwt_issuer"].default,
    audience: str = _DEFAULTS["jwt_audience"].default,
    key_id: str = KEY_ID,
    now: float | None = None,
) -> str:
    """Sign a token carrying civicgrid's claims; raise InvalidPrincipal for bad roles or codes."""
    role_list = [roles] if isinstance(roles, (str, Role)) else list(roles)
    code_list = [jurisdictions] if isinstance(jurisdictions, str) else list(jurisdictions)
    if not role_list:
        raise InvalidPrincipal("a token needs at least one role")
    if not code_list:
        raise InvalidPrincipal("a token needs at least one jurisdiction")
    if ttl <= 0:
        raise InvalidPrincipal("ttl must be positive (seconds)")
    parsed = [r if isinstance(r, Role) else Role.parse(r) for r in role_list]
    for code in code_list:
        validate_jurisdiction(code)
    subject = subject or f"local:{parsed[0].value}:{'+'.join(code_list) or 'none'}"
    # Validates the combination (e.g. department role needs a department) before signing.
    Principal(subject=subject, roles=frozenset(parsed), jurisdictions=tuple(code_list),
              name=name, department=department)
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "jti": str(uuid.uuid4()),
        "roles": [r.value for r in dict.fromkeys(parsed)],
        "jurisdictions": code_list,
    }
    if name:
        claims["name"] = name
    if department:
        claims["department"] = department
    return jwt.encode(claims, private_key_pem, algorithm=ALGORITHM, headers={"kid": key_id})


def mint_local_token(
    roles: Role | str | Iterable[Role | str], jurisdictions: str | Iterable[str], **claims: Any
) -> str:
    """A token signed with the local stack's key (.local/keys, made if missing), for the
    issuer and audience the settings name: what `civicgrid token` prints, the demo and tests use."""
    keys = local_state_dir() / "keys"
    ensure_local_keys(keys)
    settings = PlatformSettings()
    return mint_token(private_key_path(keys).read_bytes(), roles, jurisdictions,
                      issuer=settings.jwt_issuer, audience=settings.jwt_audience, **claims)


def _is_url(jwks: str) -> bool:
    return jwks.startswith(("http://", "https://"))


class _FileKeys:
    """A JWKS file, re-read when it changes on disk (key rotation without a restart)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: PyJWKSet | None = None

    def signing_key(self, kid: str | None) -> PyJWK:
        return self._pick(self._load(), kid)

    def key_at_hand(self, kid: str | None) -> PyJWK | None:
        """The key if the file is loaded and unchanged on disk (a stat, no read), else None."""
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        keys = self._keys
        if keys is None or (st.st_mtime_ns, st.st_size) != self._stamp:
            return None
        try:
            return self._pick(keys, kid)
        except InvalidToken:
            return None  # `signing_key` says why

    @staticmethod
    def _pick(keys: PyJWKSet, kid: str | None) -> PyJWK:
        if kid is None:
            if len(keys.keys) == 1:
                return keys.keys[0]
            raise InvalidToken("token has no key id ('kid') and the JWKS holds several keys")
        try:
            return keys[kid]
        except KeyError:
            raise InvalidToken(f"token signed with unknown key id {kid!r}") from None

    def _load(self) -> PyJWKSet:
        try:
            st = os.stat(self._path)
        except OSError as exc:
            raise JwksUnavailable(f"JWKS file {self._path} cannot be read: {exc}") from exc
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._keys is None or stamp != self._stamp:
                try:
                    self._keys = PyJWKSet.from_json(self._path.read_text())
                except (OSError, ValueError, jwt.PyJWTError) as exc:
                    raise JwksUnavailable(f"JWKS file {self._path} is not a usable JWK set: {exc}") from exc
                self._stamp = stamp
            return self._keys


class _UrlKeys:
    """An OIDC jwks_uri, fetched with PyJWT's client (cached; refetched for an unknown kid)."""

    def __init__(self, url: str) -> None:
        self._client = PyJWKClient(url, cache_keys=True, lifespan=300, timeout=10)
        # Keys by kid once fetched: what the client's own per-kid cache (cache_keys=True, no
        # expiry) would answer without I/O, which the client cannot be asked about.
        self._fetched: dict[str, PyJWK] = {}

    def key_at_hand(self, kid: str | None) -> PyJWK | None:
        return self._fetched.get(kid) if kid is not None else None

    def signing_key(self, kid: str | None) -> PyJWK:
        try:
            if kid is None:
                keys = self._client.get_signing_keys()
                if len(keys) == 1:
                    return keys[0]
                raise InvalidToken("token has no key id ('kid') and the JWKS holds several keys")
            key = self._client.get_signing_key(kid)
            if len(self._fetched) < 64:  # bounded: a kid comes from the token's header
                self._fetched[kid] = key
            return key
        except jwt.PyJWKClientConnectionError as exc:
            raise JwksUnavailable(f"JWKS at {self._client.uri} cannot be fetched: {exc}") from exc
        except jwt.PyJWKClientError as exc:
            raise InvalidToken(str(exc)) from exc


class _DiscoveredKeys:
    """An OIDC issuer's keys at the jwks_uri its discovery document names (OpenID Connect
    Discovery 1.0), the document fetched on first use."""

    def __init__(self, issuer: str, backchannel: str | None = None) -> None:
        self._issuer = issuer
        self._backchannel = backchannel
        self._keys: _UrlKeys | None = None
        self._lock = threading.Lock()

    def key_at_hand(self, kid: str | None) -> PyJWK | None:
        return self._keys.key_at_hand(kid) if self._keys is not None else None

    def signing_key(self, kid: str | None) -> PyJWK:
        with self._lock:
            if self._keys is None:
                self._keys = _UrlKeys(discover(self._issuer, backchannel=self._backchannel)["jwks_uri"])
        return self._keys.signing_key(kid)


def discover(issuer: str, *, backchannel: str | None = None, timeout: float = 10) -> dict[str, Any]:
    """The issuer's OpenID provider metadata, fetched from the issuer (or from `backchannel`,
    the issuer as this process reaches it); JwksUnavailable if it cannot be had or names another
    issuer (the spec's check: metadata is trusted only for the issuer it came from)."""
    import urllib.request

    url = (backchannel or issuer).rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            metadata = json.loads(answer.read(1_000_000))
    except (OSError, ValueError) as exc:
        raise JwksUnavailable(f"OIDC discovery at {url} failed: {exc}") from exc
    if not isinstance(metadata, dict) or metadata.get("issuer") != issuer or not isinstance(metadata.get("jwks_uri"), str):
        raise JwksUnavailable(f"OIDC discovery at {url} does not describe issuer {issuer!r} with a jwks_uri")
    return metadata


def _keys_from(jwks: str) -> "_FileKeys | _UrlKeys":
    return _UrlKeys(jwks) if _is_url(jwks) else _FileKeys(Path(jwks))


_REMEMBERED_HEADER_CHARS = 512  # a JOSE header of alg, typ and kid is about 100; longer ones are read, not kept


def _header_of(segment: str) -> dict[str, Any]:
    return _remembered_header(segment) if len(segment) <= _REMEMBERED_HEADER_CHARS else _read_header(segment)


@lru_cache(maxsize=256)
def _remembered_header(segment: str) -> dict[str, Any]:
    return _read_header(segment)


def _read_header(segment: str) -> dict[str, Any]:
    try:
        header = json.loads(base64url_decode(segment))
    except (ValueError, binascii.Error) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidToken(f"malformed token: its header is not base64url JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise InvalidToken("malformed token: its header is not a JSON object")
    return header


class TokenVerifier:
    """Verifies bearer tokens (signature, iss, aud, exp, nbf) and turns them into Principals.

    `verify` may block on first use of a JWKS URL or a new key id (PyJWT fetches with urllib):
    in async code, try `verify_offline` first, which never does I/O and answers None when the
    key is not at hand, and only then `verify` in a worker thread, as `require()` does. A hop
    to a thread costs more than the RS256 check itself.
    """

    def __init__(self, jwks: str, *, issuer: str, audience: str,
                 leeway: float = DEFAULT_LEEWAY_SECONDS,
                 oidc_issuer: str | None = None, oidc_jwks: str | None = None,
                 oidc_backchannel_url: str | None = None) -> None:
        """Trust `issuer`'s tokens checked against `jwks`, and, if `oidc_issuer` is given, that
        identity provider's too, against `oidc_jwks` or else the keys its discovery names."""
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._issuers: dict[str, _FileKeys | _UrlKeys | _DiscoveredKeys] = {issuer: _keys_from(jwks)}
        if oidc_issuer and oidc_issuer != issuer:
            self._issuers[oidc_issuer] = (_keys_from(oidc_jwks) if oidc_jwks
                                          else _DiscoveredKeys(oidc_issuer, oidc_backchannel_url))
        self._only = next(iter(self._issuers.items())) if len(self._issuers) == 1 else None

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> "TokenVerifier":
        return cls(settings.jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                   oidc_issuer=settings.oidc_issuer, oidc_jwks=settings.oidc_jwks,
                   oidc_backchannel_url=settings.oidc_backchannel_url)

    @property
    def issuers(self) -> tuple[str, ...]:
        return tuple(self._issuers)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token, else InvalidToken (JwksUnavailable if the keys
        cannot be had). May fetch the JWKS."""
        issuer, keys = self._issuer_of(token)
        return self._verify_with(token, keys.signing_key(self._header(token).get("kid")), issuer)

    def verify_offline(self, token: str) -> Principal | None:
        """As `verify`, with the keys already at hand; None if that needs I/O first."""
        issuer, keys = self._issuer_of(token)
        key = keys.key_at_hand(self._header(token).get("kid"))
        return None if key is None else self._verify_with(token, key, issuer)

    def _issuer_of(self, token: str) -> tuple[str, "_FileKeys | _UrlKeys | _DiscoveredKeys"]:
        """The issuer whose keys are to check the token: the one trusted, or, when several are,
        the one the token names (read unverified, only to choose; `jwt.decode` then requires
        that very issuer and that issuer's signature)."""
        if self._only is not None:
            return self._only
        segments = token.split(".")
        if len(segments) != 3:
            raise InvalidToken("malformed token: a JWT has three segments")
        try:
            claimed = json.loads(base64url_decode(segments[1])).get("iss")
        except (ValueError, binascii.Error, AttributeError) as exc:
            raise InvalidToken(f"malformed token: its payload is not base64url JSON ({exc})") from exc
        keys = self._issuers.get(claimed) if isinstance(claimed, str) else None
        if keys is None:
            raise InvalidToken(f"token issued by {claimed!r}, which is not trusted here")
        return claimed, keys

    @staticmethod
    def _header(token: str) -> dict[str, Any]:
        """The token's JOSE header, only to pick the key: `jwt.decode` checks the whole token,
        this header included, again. Read from its first segment and remembered by it: the
        tokens of one key share that segment, and PyJWT's reading of a header checks every
        character of all three segments (as costly as the RS256 check)."""
        header = _header_of(token.partition(".")[0])
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"token algorithm must be {ALGORITHM}, not {header.get('alg')!r}")
        return header

    def _verify_with(self, token: str, key: PyJWK, issuer: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidToken("token is not valid yet") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from exc
        try:
            principal = Principal.from_claims(claims)
        except InvalidPrincipal as exc:
            raise InvalidToken(f"invalid token claims: {exc}") from exc
        # A token that names no role or no jurisdiction authorises nothing: it is not a
        # credential (401), not a caller who lacks a permission (403).
        if not principal.roles:
            raise InvalidToken("token carries no role ('roles' is empty)")
        if not principal.jurisdictions:
            raise InvalidToken("token carries no jurisdiction ('jurisdictions' is empty)")
        return principal
