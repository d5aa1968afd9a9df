"""Sign-in for the web console, the pure rules: the gateway is a backend for frontends (the
OAuth 2.0 for Browser-Based Apps BCP's "BFF"). A browser never holds a token: the gateway runs
the authorization-code flow with PKCE at the identity provider, keeps the person's refresh token
in an encrypted, HttpOnly session cookie, and adds an access token to what it passes on.

A request signed in by cookie that changes something must also carry the session's CSRF token
in `X-CSRF-Token` (a page of another site can make the browser send the cookie, not read the
token). A request with an `Authorization` header is not a cookie request at all."""
from __future__ import annotations

import hmac
from dataclasses import dataclass

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
# What a redirect after sign-in may name: a path of this origin, bounded.
MAX_NEXT_CHARS = 512
DEFAULT_NEXT = "/"
# Long enough for any identity provider's code and state, short enough to bound the work.
MAX_CODE_CHARS = 4096
MAX_STATE_CHARS = 256
# A login started and not finished within this time is void (the browser's sign-in cookie too).
LOGIN_TTL_SECONDS = 600
# An access token this close to its expiry is renewed before it is passed on.
RENEW_BEFORE_SECONDS = 30


def safe_next(value: str | None) -> str:
    """Where to send the browser after sign-in: a path on this origin, never another site
    (an open redirect would turn the sign-in page into a phishing relay)."""
    if not value or len(value) > MAX_NEXT_CHARS or not value.startswith("/") or value.startswith("//") \
            or "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return DEFAULT_NEXT
    return value


@dataclass(frozen=True)
class LoginAttempt:
    """A sign-in under way: what the callback must find again (in the browser's sign-in cookie)."""

    state: str
    code_verifier: str
    next: str
    expires_at: int


@dataclass(frozen=True)
class Session:
    """A signed-in person, as their session cookie holds it."""

    session_id: str
    subject: str
    refresh_token: str
    csrf_token: str
    expires_at: int  # the refresh token's expiry: the session's end unless renewed

    def csrf_ok(self, method: str, sent: str | None) -> bool:
        """A safe method needs no token; any other needs the session's own."""
        return method in SAFE_METHODS or (sent is not None and hmac.compare_digest(sent, self.csrf_token))
