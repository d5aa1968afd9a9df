"""The problems civicgrid answers with: one catalogue of RFC 9457 problem types for every
service, and the rule violations that domains raise. Pure: no web framework here, so the
domain, identity and web layers can all import it.

**Types say what class of problem it is; `code` says which rule.** A client switches on
`type` (retry? reload? show the fields?) and shows `detail`; `code` (e.g. `materials_incomplete`)
names the domain's rule for logs and finer handling. Every type is a relative URI reference
`/problems/<slug>` (RFC 9457 §3.1.1 allows one): the same identifier in every service and every
deployment, and it resolves against whichever origin answered — each service (and the gateway)
serves the catalogue's pages at /problems/.

**Where the fault is.** A problem about the request's content names the field at fault in
`errors`: `{"pointer": "#/materials/0", "detail": ...}` for a member of the JSON body (RFC 6901
pointer), `{"field": "community", "in": "query", "detail": ...}` for a parameter.

**No existence oracle.** An object the caller may not see is answered exactly like one that does
not exist (`not-found`, 404), so ids and jurisdictions cannot be enumerated.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Mapping, Sequence

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_PATH = "/problems/"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    title: str
    status: int  # the HTTP status this type is answered with
    summary: str  # one line: when a client gets it
    advice: str  # what the client should do about it

    @property
    def uri(self) -> str:
        return PROBLEM_PATH + self.slug


def _type(slug: str, status: int, title: str, summary: str, advice: str) -> ProblemType:
    return ProblemType(slug=slug, title=title, status=status, summary=summary, advice=advice)


BAD_REQUEST = _type(
    "bad-request", 400, "Bad Request",
    "The HTTP request itself is malformed: a header that is not valid (two Authorization headers, a "
    "Content-Length that is not a number).",
    "Fix the request; sending it again unchanged gets the same answer.")
MALFORMED_BODY = _type(
    "malformed-body", 400, "Malformed request body",
    "The body is not JSON this API can read: not UTF-8, not valid JSON, or nested deeper than the limit.",
    "Send a UTF-8 JSON body of the documented shape; `detail` says where reading stopped.")
IDEMPOTENCY_KEY_INVALID = _type(
    "idempotency-key-invalid", 400, "Invalid Idempotency-Key",
    "The Idempotency-Key header is empty, too long or not printable ASCII.",
    "Send a structured-field string such as \"8e03978e-40d5-43e8-bc93-6894a57f9324\" (1 to 255 characters).")
UNAUTHENTICATED = _type(
    "unauthenticated", 401, "Not authenticated",
    "No bearer token, or one that is malformed, badly signed, expired, not yet valid, for another issuer or "
    "audience, or that authorises nothing (no role, no jurisdiction).",
    "Sign in again (or mint a new token) and send it as `Authorization: Bearer <token>`.")
FORBIDDEN = _type(
    "forbidden", 403, "Forbidden",
    "The caller is known but none of its roles may do this, or a rule reserves it to someone else.",
    "Ask someone who holds the role named in `detail`; retrying does not help.")
OUTSIDE_JURISDICTION = _type(
    "outside-jurisdiction", 403, "Outside your jurisdiction",
    "A district, street, community or grid code that the request names lies outside the caller's "
    "jurisdictions (the field is named in `errors`).",
    "Name a unit inside your own jurisdiction.")
NOT_FOUND = _type(
    "not-found", 404, "Not Found",
    "There is no such resource, or none that the caller may see: the two are answered alike, so that ids and "
    "jurisdictions cannot be probed.",
    "Check the id; a resource of another jurisdiction is reached by that jurisdiction's staff.")
METHOD_NOT_ALLOWED = _type(
    "method-not-allowed", 405, "Method Not Allowed",
    "The resource exists but does not take this HTTP method.",
    "Use a method the `Allow` header lists.")
STATE_CONFLICT = _type(
    "state-conflict", 409, "The state does not allow this",
    "The command is well-formed but the resource's current state does not allow it now (`code` names the rule).",
    "Reload the resource and decide again; sending the same command again gets the same answer.")
STALE_VERSION = _type(
    "stale-version", 409, "Stale version",
    "The resource changed since the caller read it (`expected_version` or the task is no longer current).",
    "Reload it, look at what changed, and decide again.")
IDEMPOTENCY_KEY_IN_FLIGHT = _type(
    "idempotency-key-in-flight", 409, "Request in progress",
    "A request with this Idempotency-Key is still being processed.",
    "Retry after the seconds in `Retry-After`; you will get the first request's answer.")
REQUEST_TOO_LARGE = _type(
    "request-too-large", 413, "Content Too Large",
    "The request body exceeds the service's limit (`max_bytes`).",
    "Send less; files go to their own upload routes.")
UNSUPPORTED_MEDIA_TYPE = _type(
    "unsupported-media-type", 415, "Unsupported Media Type",
    "The body's Content-Type is not one the route reads.",
    "Send `Content-Type: application/json` (or the type the route documents).")
VALIDATION_ERROR = _type(
    "validation-error", 422, "Request is not valid",
    "The request is readable but breaks a rule: a field has the wrong type or is out of range, an unknown "
    "field, a reference to something that does not exist, or a domain rule on the input (`code`). Every field "
    "at fault is in `errors`.",
    "Correct each field listed in `errors` and send the request again.")
IDEMPOTENCY_KEY_REUSED = _type(
    "idempotency-key-reused", 422, "Idempotency-Key reused",
    "This Idempotency-Key was used for a different request (another body, query or route).",
    "Use a new key for a new request; reuse a key only to repeat exactly the same request.")
TOO_MANY_REQUESTS = _type(
    "too-many-requests", 429, "Too Many Requests",
    "The caller sent more requests than its limit allows.",
    "Wait the seconds in `Retry-After`.")
INTERNAL_ERROR = _type(
    "internal-error", 500, "Internal Server Error",
    "Something failed that should not have. Nothing of the request took effect unless its answer said so.",
    "Report the `trace_id`; retrying with the same Idempotency-Key is safe.")
UNAVAILABLE = _type(
    "unavailable", 503, "Service Unavailable",
    "A dependency (the identity provider's keys, the database) cannot be reached right now.",
    "Retry after the seconds in `Retry-After`.")
CONTENDED = _type(
    "contended", 503, "Busy",
    "The command lost to concurrent changes on every attempt; nothing was changed.",
    "Send the same request again after `Retry-After`.")
NOT_READY = _type(
    "not-ready", 503, "Not ready",
    "/readyz: a dependency of the service does not answer (`failed` names it).",
    "An orchestrator routes elsewhere until it is ready.")

CATALOGUE: tuple[ProblemType, ...] = (
    BAD_REQUEST, MALFORMED_BODY, IDEMPOTENCY_KEY_INVALID, UNAUTHENTICATED, FORBIDDEN, OUTSIDE_JURISDICTION,
    NOT_FOUND, METHOD_NOT_ALLOWED, STATE_CONFLICT, STALE_VERSION, IDEMPOTENCY_KEY_IN_FLIGHT, REQUEST_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE, VALIDATION_ERROR, IDEMPOTENCY_KEY_REUSED, TOO_MANY_REQUESTS, INTERNAL_ERROR,
    UNAVAILABLE, CONTENDED, NOT_READY,
)
BY_SLUG: Mapping[str, ProblemType] = {t.slug: t for t in CATALOGUE}
BY_URI: Mapping[str, ProblemType] = {t.uri: t for t in CATALOGUE}
assert len(BY_SLUG) == len(CATALOGUE), "problem slugs are unique"

# What a bare HTTP status (a framework's 404, 405, ...) is answered as.
_FOR_STATUS: Mapping[int, ProblemType] = {
    400: BAD_REQUEST, 401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND, 405: METHOD_NOT_ALLOWED,
    409: STATE_CONFLICT, 413: REQUEST_TOO_LARGE, 415: UNSUPPORTED_MEDIA_TYPE, 422: VALIDATION_ERROR,
    429: TOO_MANY_REQUESTS, 500: INTERNAL_ERROR, 503: UNAVAILABLE,
}


def type_for_status(status: int) -> ProblemType:
    if status in _FOR_STATUS:
        return _FOR_STATUS[status]
    return INTERNAL_ERROR if status >= 500 else BAD_REQUEST


def status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# --- where the fault is ------------------------------------------------------------------------

def json_pointer(path: Sequence[str | int]) -> str:
    """A URI-fragment JSON Pointer for a location in the body, as in RFC 9457's example."""
    return "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def body_error(path: str | Sequence[str | int], detail: str, **extra: Any) -> dict[str, Any]:
    """An `errors` entry for a body member: 'materials', 'location/lat' or ('materials', 0)."""
    parts = path.split("/") if isinstance(path, str) else list(path)
    return {"pointer": json_pointer([p for p in parts if p != ""]), "detail": detail, **extra}


def parameter_error(name: str, where: str, detail: str, **extra: Any) -> dict[str, Any]:
    """An `errors` entry for a query, path, header or cookie parameter."""
    return {"field": name, "in": where, "detail": detail, **extra}


# --- the answered problem ----------------------------------------------------------------------

class Problem(Exception):
    """An error answered as problem+json: a catalogue type, a detail, and extension members
    (RFC 9457 §3.2) such as `errors`, `code`. The web layer renders it."""

    def __init__(
        self,
        type: ProblemType,
        detail: str | None = None,
        *,
        status: int | None = None,
        title: str | None = None,
        instance: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if not isinstance(type, ProblemType):
            raise TypeError("a Problem's type is one of civicgrid_common.problems' catalogue")
        self.problem_type = type
        self.status = status or type.status
        self.title = title or type.title
        self.detail = detail
        self.instance = instance
        self.headers = dict(headers or {})
        self.extra = extra
        super().__init__(detail or self.title)

    @property
    def type(self) -> str:
        return self.problem_type.uri

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail is not None:
            body["detail"] = self.detail
        if self.instance is not None:
            body["instance"] = self.instance
        body.update(self.extra)
        return body


# --- what domains raise --------------------------------------------------------------------------

class Refusal(str, enum.Enum):
    """What kind of refusal a rule violation is; each is answered with one problem type."""

    INVALID = "invalid"  # the input breaks the rule: 422, naming the field
    FORBIDDEN = "forbidden"  # the caller may not: 403
    OUTSIDE_JURISDICTION = "outside_jurisdiction"  # a code the input names is not the caller's: 403
    NOT_FOUND = "not_found"  # no such thing (or none the caller may see): 404
    CONFLICT = "conflict"  # the state does not allow it now: 409
    STALE = "stale"  # decided on an old version: 409


_REFUSAL_TYPE: Mapping[Refusal, ProblemType] = {
    Refusal.INVALID: VALIDATION_ERROR, Refusal.FORBIDDEN: FORBIDDEN, Refusal.OUTSIDE_JURISDICTION: OUTSIDE_JURISDICTION,
    Refusal.NOT_FOUND: NOT_FOUND,
    Refusal.CONFLICT: STATE_CONFLICT, Refusal.STALE: STALE_VERSION,
}


class RuleViolation(Exception):
    """A domain rule refuses a command; nothing was changed. `code` names the rule, `refusal`
    its kind, `field` the body member at fault (e.g. 'materials' or 'location/lat') or
    `parameter` the (name, where) of a query or path parameter; `errors` several fields at once.
    Domains subclass it; the web layer answers every one in one place."""

    refusal: Refusal = Refusal.CONFLICT

    def __init__(self, code: str, message: str, *, refusal: Refusal | None = None, field: str | None = None,
                 parameter: tuple[str, str] | None = None, errors: Sequence[Mapping[str, Any]] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if refusal is not None:
            self.refusal = refusal
        self.field = field
        self.parameter = parameter
        self.errors = [dict(e) for e in errors] if errors else None
        self.extra = extra

    def field_errors(self) -> list[dict[str, Any]] | None:
        if self.errors is not None:
            return self.errors
        if self.field is not None:
            return [body_error(self.field, self.message)]
        if self.parameter is not None:
            return [parameter_error(self.parameter[0], self.parameter[1], self.message)]
        return None

    def problem(self) -> Problem:
        extra: dict[str, Any] = {"code": self.code, **self.extra}
        errors = self.field_errors()
        if errors is None and self.refusal is Refusal.INVALID:
            errors = [{"detail": self.message}]
        if errors is not None:
            extra["errors"] = errors
        return Problem(_REFUSAL_TYPE[self.refusal], self.message, **extra)


class NotFound(RuleViolation):
    """No such resource, or none the caller may see (answered alike: no existence oracle)."""

    refusal = Refusal.NOT_FOUND

    def __init__(self, what: str, id: str) -> None:
        super().__init__("not_found", f"no {what} {id!r}")
        self.what, self.id = what, id


class OutsideJurisdiction(RuleViolation):
    """A code the input names (a case's jurisdiction, an applicant's places) is not inside the
    caller's jurisdiction: 403, naming each field. One class for every service."""

    refusal = Refusal.OUTSIDE_JURISDICTION

    def __init__(self, fields: str | Sequence[str], message: str | None = None, **extra: Any) -> None:
        names = [fields] if isinstance(fields, str) else list(fields)
        message = message or f"{', '.join(names)}: not inside your jurisdiction"
        super().__init__("outside_jurisdiction", message, errors=[body_error(f, message) for f in names], **extra)
