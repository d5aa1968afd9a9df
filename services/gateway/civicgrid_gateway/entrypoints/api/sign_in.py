"""Sign-in for the console (domain/sign_in.py says the rules): /auth/login, /auth/callback,
/auth/session and /auth/logout, and `session_authorization`, with which the proxy turns a
signed-in browser's session cookie into the bearer token it passes on."""
from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from http.cookies import SimpleCookie
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, RedirectResponse, Response

from civicgrid_common.identity.dependencies import app_token_verifier, authenticate, authorization_of, bearer_scheme
from civicgrid_common.identity.principal import Principal
from civicgrid_common.problems import BAD_REQUEST, FORBIDDEN, NOT_FOUND, UNAUTHENTICATED, UNAVAILABLE, Problem

from civicgrid_gateway.adapters.sign_in import CALLBACK_PATH, SignIn, SignInRefused, SignInUnavailable
from civicgrid_gateway.domain.sign_in import (
    CSRF_HEADER,
    LOGIN_TTL_SECONDS,
    MAX_CODE_CHARS,
    MAX_NEXT_CHARS,
    MAX_STATE_CHARS,
    RENEW_BEFORE_SECONDS,
    LoginAttempt,
    Session,
    safe_next,
)

SESSION_COOKIE = "civicgrid_session"
SIGN_IN_COOKIE = "civicgrid_sign_in"
# What the identity provider's `error` may say back through the browser: an OAuth error code.
_ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")

log = logging.getLogger("civicgrid.gateway.sign_in")


class SessionOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str
    name: str | None
    roles: list[str]
    jurisdictions: list[str]
    department: str | None
    csrf_token: str = Field(description="send it as X-CSRF-Token with every request that changes something")


def _sign_in(request: Request) -> SignIn:
    sign_in: SignIn | None = request.app.state.sign_in
    if sign_in is None:
        raise Problem(NOT_FOUND, "This gateway signs no one in: no identity provider client is configured "
                                 "(CIVICGRID_OIDC_ISSUER, CIVICGRID_OIDC_CLIENT_ID, CIVICGRID_OIDC_CLIENT_SECRET). "
                                 "Send a bearer token instead.")
    return sign_in


def _cookie(sign_in: SignIn, name: str, value: str, *, max_age: int, path: str = "/") -> str:
    """A Set-Cookie value: HttpOnly (no script reads it), SameSite=Lax (not sent on another
    site's subrequests or form posts; sent on the top-level return from the identity provider)."""
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel.update({"path": path, "max-age": str(max(max_age, 0)), "httponly": True, "samesite": "Lax"})
    if sign_in.secure_cookies:
        morsel["secure"] = True
    return morsel.OutputString()


def _session_cookie(sign_in: SignIn, session: Session, now: float) -> str:
    value = sign_in.cookies.seal("session", {"sid": session.session_id, "sub": session.subject,
                                             "rt": session.refresh_token, "csrf": session.csrf_token,
                                             "exp": session.expires_at})
    return _cookie(sign_in, SESSION_COOKIE, value, max_age=int(session.expires_at - now))


def _cleared(sign_in: SignIn, name: str, path: str = "/") -> str:
    return _cookie(sign_in, name, "", max_age=0, path=path)


def _unavailable(exc: SignInUnavailable) -> Problem:
    return Problem(UNAVAILABLE, f"Sign-in is not available right now ({exc}).", headers={"Retry-After": "10"})


async def login(request: Request,
                next: Annotated[str | None, Query(max_length=MAX_NEXT_CHARS,
                                                  description="the console's path to return to")] = None) -> Response:
    """Start signing in: the browser goes to the identity provider's login page, with a fresh
    state and PKCE verifier that only this browser's sign-in cookie holds."""
    sign_in = _sign_in(request)
    now = time.time()
    attempt = LoginAttempt(state=secrets.token_urlsafe(32), code_verifier=secrets.token_urlsafe(64),
                           next=safe_next(next), expires_at=int(now) + LOGIN_TTL_SECONDS)
    try:
        url = await sign_in.provider.authorization_url(attempt.state, attempt.code_verifier)
    except SignInUnavailable as exc:
        raise _unavailable(exc) from exc
    value = sign_in.cookies.seal("sign_in", {"state": attempt.state, "verifier": attempt.code_verifier,
                                             "next": attempt.next, "exp": attempt.expires_at})
    response = RedirectResponse(url, status_code=302)
    response.headers.append("set-cookie", _cookie(sign_in, SIGN_IN_COOKIE, value, max_age=LOGIN_TTL_SECONDS,
                                                  path=CALLBACK_PATH))
    response.headers["cache-control"] = "no-store"
    return response


async def callback(request: Request,
                   code: Annotated[str | None, Query(max_length=MAX_CODE_CHARS)] = None,
                   state: Annotated[str | None, Query(max_length=MAX_STATE_CHARS)] = None,
                   iss: Annotated[str | None, Query(max_length=512)] = None,
                   error: Annotated[str | None, Query(max_length=256)] = None,
                   error_description: Annotated[str | None, Query(max_length=1024)] = None,
                   session_state: Annotated[str | None, Query(max_length=256)] = None) -> Response:
    """The identity provider's return: the code redeemed with this browser's PKCE verifier,
    the person's session cookie set, the browser sent back to where it started."""
    sign_in = _sign_in(request)
    attempt = sign_in.cookies.open("sign_in", request.cookies.get(SIGN_IN_COOKIE))
    if attempt is None:
        raise Problem(BAD_REQUEST, "This sign-in has expired or was started in another browser; start again at "
                                   "/auth/login.", code="sign_in_not_started")
    if not state or not hmac.compare_digest(state, attempt["state"]):
        raise Problem(BAD_REQUEST, "The sign-in's state does not match the one this browser started with.",
                      code="sign_in_state_mismatch")
    if iss is not None and iss != sign_in.provider.issuer:  # RFC 9207: an answer from another issuer
        raise Problem(BAD_REQUEST, "The sign-in answer names another issuer.", code="sign_in_issuer_mismatch")
    if error is not None or not code:
        said = error if error and _ERROR_CODE.match(error) else "no code"
        raise Problem(UNAUTHENTICATED, f"The identity provider did not sign you in ({said}).", code="sign_in_refused")
    try:
        tokens = await sign_in.provider.redeem(code, attempt["verifier"])
    except SignInRefused as exc:
        raise Problem(UNAUTHENTICATED, f"The identity provider refused the sign-in's code ({exc.error}); start "
                                       "again at /auth/login.", code="sign_in_refused") from exc
    except SignInUnavailable as exc:
        raise _unavailable(exc) from exc
    # The token as every service will check it: a person with no role or jurisdiction gets
    # no session (401 with the reason), not a console that refuses everything.
    principal = await authenticate(app_token_verifier(request.app), f"Bearer {tokens['access_token']}")
    now = time.time()
    session = Session(session_id=secrets.token_urlsafe(18), subject=principal.subject,
                      refresh_token=tokens["refresh_token"], csrf_token=secrets.token_urlsafe(32),
                      expires_at=_refresh_expiry(tokens, now))
    sign_in.access_tokens.put(session.session_id, tokens["access_token"], now + float(tokens.get("expires_in", 60)))
    response = RedirectResponse(attempt["next"], status_code=303)
    response.headers.append("set-cookie", _session_cookie(sign_in, session, now))
    response.headers.append("set-cookie", _cleared(sign_in, SIGN_IN_COOKIE, CALLBACK_PATH))
    response.headers["cache-control"] = "no-store"
    log.info("signed in", extra={"subject": principal.subject})
    return response


def _refresh_expiry(tokens: dict[str, Any], now: float) -> int:
    """The session lasts as its refresh token does (Keycloak: the SSO session's idle time)."""
    return int(now + float(tokens.get("refresh_expires_in") or tokens.get("expires_in") or 60))


def _session(sign_in: SignIn, request: Request) -> Session | None:
    claims = sign_in.cookies.open("session", request.cookies.get(SESSION_COOKIE))
    if claims is None:
        return None
    return Session(session_id=claims["sid"], subject=claims["sub"], refresh_token=claims["rt"],
                   csrf_token=claims["csrf"], expires_at=claims["exp"])


async def session_authorization(request: Request) -> tuple[str, str | None] | None:
    """For a request without an Authorization header: the bearer value of its session (and a
    renewed session cookie to set, if the refresh token was renewed), or None when it has no
    session. A request that changes something must carry the session's CSRF token (403)."""
    found = await _signed_in(request)
    return None if found is None else found[1:]


async def _signed_in(request: Request) -> tuple[Session, str, str | None] | None:
    """session_authorization's answer with the session it read."""
    sign_in: SignIn | None = request.app.state.sign_in
    if sign_in is None or SESSION_COOKIE not in request.cookies:
        return None
    session = _session(sign_in, request)
    if session is None:
        raise Problem(UNAUTHENTICATED, "The session has ended or its cookie is not this gateway's; sign in again "
                                       "at /auth/login.", headers={"WWW-Authenticate": "Bearer"}, code="session_ended")
    if not session.csrf_ok(request.method, request.headers.get(CSRF_HEADER)):
        raise Problem(FORBIDDEN, "A request that changes something must carry the session's CSRF token in "
                                 "X-CSRF-Token (GET /auth/session gives it).", code="csrf_token_missing")
    access = sign_in.access_tokens.get(session.session_id, valid_for=RENEW_BEFORE_SECONDS)
    if access is not None:
        return session, f"Bearer {access}", None
    try:
        tokens = await sign_in.provider.refresh(session.refresh_token)
    except SignInRefused as exc:  # the session ended at the identity provider (logout, idle, revoked)
        raise Problem(UNAUTHENTICATED, "The session has ended; sign in again at /auth/login.",
                      headers={"WWW-Authenticate": "Bearer"}, code="session_ended") from exc
    except SignInUnavailable as exc:
        raise _unavailable(exc) from exc
    now = time.time()
    sign_in.access_tokens.put(session.session_id, tokens["access_token"], now + float(tokens.get("expires_in", 60)))
    renewed = Session(session.session_id, session.subject, tokens["refresh_token"], session.csrf_token,
                      _refresh_expiry(tokens, now))
    return session, f"Bearer {tokens['access_token']}", _session_cookie(sign_in, renewed, now)


async def session_info(request: Request) -> Response:
    """Who is signed in, with the CSRF token a console sends on every change; 401 if no one."""
    _sign_in(request)
    found = await _signed_in(request)
    if found is None:
        raise Problem(UNAUTHENTICATED, "No one is signed in in this browser; sign in at /auth/login.",
                      headers={"WWW-Authenticate": "Bearer"})
    session, authorization, renewed = found
    principal = await authenticate(app_token_verifier(request.app), authorization)
    shown = SessionOut(subject=principal.subject, name=principal.name, roles=sorted(r.value for r in principal.roles),
                       jurisdictions=list(principal.jurisdictions), department=principal.department,
                       csrf_token=session.csrf_token)
    response = JSONResponse(shown.model_dump(), headers={"cache-control": "no-store"})
    if renewed:
        response.headers.append("set-cookie", renewed)
    return response


async def logout(request: Request) -> Response:
    """Sign out: the session ended at the identity provider (its refresh tokens die with it) and
    its cookie cleared. Answered 204 whether or not anyone was signed in."""
    sign_in = _sign_in(request)
    session = _session(sign_in, request)
    if session is not None:
        if not session.csrf_ok(request.method, request.headers.get(CSRF_HEADER)):
            raise Problem(FORBIDDEN, "Signing out must carry the session's CSRF token in X-CSRF-Token.",
                          code="csrf_token_missing")
        sign_in.access_tokens.forget(session.session_id)
        try:
            await sign_in.provider.end_session(session.refresh_token)
        except SignInUnavailable as exc:
            # The cookie is cleared all the same; the identity provider's session then ends at
            # its own idle time.
            log.warning("sign-out could not reach the identity provider: %s", exc)
    response = Response(status_code=204, headers={"cache-control": "no-store"})
    response.headers.append("set-cookie", _cleared(sign_in, SESSION_COOKIE))
    return response


async def caller(request: Request,
                 credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> Principal:
    """The gateway's own routes' caller: a bearer token, or a signed-in browser's session (its
    CSRF rule too). The Authorization value used is left in request.state.authorization for
    the services the route asks, and a renewed session cookie in request.state.renewed_session."""
    # `credentials` is declared for OpenAPI's security scheme; the header is read here.
    principal, request.state.authorization, request.state.renewed_session = await authenticated(request)
    return principal


async def authenticated(request: Request) -> tuple[Principal, str, str | None]:
    """The caller of a request that needs one, by its Authorization header or else its browser's
    session: the principal, the Authorization value to pass on, and a renewed session cookie
    to set (or None)."""
    authorization, renewed = authorization_of(request), None
    if authorization is None and (found := await session_authorization(request)) is not None:
        authorization, renewed = found
    principal = await authenticate(app_token_verifier(request.app), authorization)
    assert authorization is not None  # authenticate refuses a request without one
    return principal, authorization, renewed


caller.civicgrid_roles = ()  # type: ignore[attr-defined]  # read by web.openapi: any role
