"""FastAPI dependency that authenticates the caller and enforces role and jurisdiction.

    @app.get("/streets/{street}/cases")
    async def cases(street: str, who: Principal = Depends(require(Role.STREET_REVIEWER,
                                                                  jurisdiction_param="street"))):

401 (with WWW-Authenticate: Bearer) for a missing, invalid or expired token; 403 for a role
the route does not admit or a jurisdiction code outside the caller's; all as problem+json.
The verifier lives in app.state.token_verifier (create_app puts it there).
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from civicgrid_common.identity.principal import InvalidPrincipal, Principal, Role, validate_jurisdiction
from civicgrid_common.identity.tokens import DEFAULT_LEEWAY_SECONDS, InvalidToken, JwksUnavailable, TokenVerifier
from civicgrid_common.problems import (
    BAD_REQUEST,
    FORBIDDEN,
    OUTSIDE_JURISDICTION,
    UNAUTHENTICATED,
    UNAVAILABLE,
    VALIDATION_ERROR,
    Problem,
    parameter_error,
)

# Documents the bearer scheme in OpenAPI; errors are ours (auto_error=False), as problems.
bearer_scheme = HTTPBearer(auto_error=False, description=(
    "JWT (RS256) from the identity provider or `civicgrid token`: `iss`, `aud`, `sub`, `iat` and `exp` are "
    f"required; `exp` and `nbf` are checked with {DEFAULT_LEEWAY_SECONDS:g} s of leeway for clock skew; the "
    "token must carry at least one role and one jurisdiction. Send exactly one Authorization header."))


def _unauthenticated(detail: str, error: str) -> Problem:
    # RFC 6750 §3: the challenge names the error so clients know to fetch a new token.
    challenge = f'Bearer error="{error}", error_description="{detail.replace(chr(34), chr(39))}"'
    return Problem(UNAUTHENTICATED, detail, headers={"WWW-Authenticate": challenge})


def app_token_verifier(app: Any) -> TokenVerifier:
    verifier = getattr(app.state, "token_verifier", None)
    if verifier is None:
        raise RuntimeError("app.state.token_verifier is not set; build the app with create_app()")
    return verifier


async def authenticate(verifier: TokenVerifier, authorization: str | None) -> Principal:
    """The principal behind an Authorization header value, or a 401/503 Problem."""
    if not authorization:
        raise Problem(UNAUTHENTICATED, "A bearer token is required.", headers={"WWW-Authenticate": "Bearer"})
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated("The Authorization header must be 'Bearer <token>'.", "invalid_request")
    try:
        # Verified on the loop when the key is at hand (the usual case, ~0.15 ms); a JWKS to
        # fetch is blocking I/O and goes to a worker thread.
        principal = verifier.verify_offline(token.strip())
        if principal is None:
            principal = await run_in_threadpool(verifier.verify, token.strip())
        return principal
    except InvalidToken as exc:
        raise _unauthenticated(str(exc), "invalid_token") from exc
    except JwksUnavailable as exc:
        raise Problem(UNAVAILABLE, "Tokens cannot be verified right now; try again later.",
                      headers={"Retry-After": "5"}) from exc


def authorization_of(request: Request) -> str | None:
    """The one Authorization header; two are refused rather than one of them silently chosen
    (a proxy and a client could each add one)."""
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        raise Problem(BAD_REQUEST, "Send exactly one Authorization header.",
                      errors=[parameter_error("Authorization", "header", "sent more than once")])
    return values[0] if values else None


def _requested_code(request: Request, param: str) -> str | None:
    value = request.path_params.get(param)
    if value is None:
        value = request.query_params.get(param)
    return value


def require(*roles: Role, jurisdiction_param: str | None = None) -> Callable[..., Awaitable[Principal]]:
    """A dependency yielding the caller's Principal if it holds one of `roles` (any role if
    none are given) and, with `jurisdiction_param`, if the code in that path or query parameter
    lies inside its jurisdictions. An absent optional parameter is not checked: the route must
    then scope its query by `principal.jurisdictions` itself."""
    wanted = tuple(Role(r) for r in roles)

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
    ) -> Principal:
        # `credentials` is declared for OpenAPI's security scheme; the header is parsed here.
        principal = await authenticate(app_token_verifier(request.app), authorization_of(request))
        if wanted and not principal.has_any(*wanted):
            raise Problem(FORBIDDEN, "This action needs one of the roles: " + ", ".join(r.value for r in wanted) + ".")
        if jurisdiction_param:
            code = _requested_code(request, jurisdiction_param)
            if code is not None:
                _check_jurisdiction(principal, jurisdiction_param, code, _where(request, jurisdiction_param))
        return principal

    # Read by web.openapi: every operation documents the roles it admits.
    dependency.civicgrid_roles = tuple(r.value for r in wanted)  # type: ignore[attr-defined]
    return dependency


def _where(request: Request, param: str) -> str:
    return "path" if param in request.path_params else "query"


def _check_jurisdiction(principal: Principal, param: str, code: str, where: str) -> None:
    try:
        validate_jurisdiction(code)
    except InvalidPrincipal as exc:
        raise Problem(VALIDATION_ERROR, str(exc), errors=[parameter_error(param, where, str(exc))]) from exc
    if not principal.may_act_in(code):
        detail = f"{code} is not inside your jurisdiction."
        raise Problem(OUTSIDE_JURISDICTION, detail, jurisdiction=code, errors=[parameter_error(param, where, detail)])



def admin_of(unit: Callable[[Request], str], action: str) -> Callable[..., Awaitable[str]]:
    """A dependency: an admin whose jurisdiction covers `unit(request)` (e.g. the service's
    district, for changes that move every due date in it); returns the admin's subject, to
    record as who did it. Anyone else gets 403 naming the unit and the action."""

    async def dependency(request: Request, principal: Principal = Depends(require(Role.ADMIN))) -> str:
        code = unit(request)
        if not principal.may_act_in(code):
            raise Problem(FORBIDDEN, f"{action} needs an admin of {code}")
        return principal.subject

    return dependency
