"""What the platform adds to every service's OpenAPI document, so front-end teams (and the tests
that check every route) read the rules from the document itself:

- `x-civicgrid-roles` on each operation: the roles `identity.require` admits (an empty list:
  any signed-in principal); an operation without it needs no token;
- the `Idempotency-Key` header on every POST (web.idempotency);
- problem+json among every operation's 4XX answers: the platform's own refusals (a body too
  large, unreadable or unstorable text, a bad Idempotency-Key) come before any route, even one
  that answers its own errors in another format (Open311).
"""
from __future__ import annotations

from typing import Any, Iterator

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from civicgrid_common.problems import PROBLEM_MEDIA_TYPE
from civicgrid_common.web.idempotency import MAX_KEY_LENGTH

ROLES_EXTENSION = "x-civicgrid-roles"
# A dependency made by identity.require carries the roles it admits in this attribute.
ROLES_ATTRIBUTE = "civicgrid_roles"

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes the POST safe to retry: a repeat with the same key and the same body (key order does "
                   "not matter) gets the first answer again (`Idempotent-Replayed: true`); the same key with "
                   "another body is 422 idempotency-key-reused; a repeat while the first runs is 409.",
    # e.g. "8e03978e-40d5-43e8-bc93-6894a57f9324", quotes included (a structured-field string)
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH + 2},
}


def _calls(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def route_roles(route: Any) -> list[str] | None:
    """The roles an operation admits (every `require` on it must pass), None if it needs no token."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    found = [getattr(call, ROLES_ATTRIBUTE) for call in _calls(dependant) if hasattr(call, ROLES_ATTRIBUTE)]
    if not found:
        return None
    admitted: set[str] | None = None
    for roles in found:
        if roles:  # an empty tuple admits any signed-in principal: no constraint
            admitted = set(roles) if admitted is None else admitted & set(roles)
    return sorted(admitted) if admitted is not None else []


def document_platform_rules(app: FastAPI, *, idempotency: bool) -> None:
    generate = app.openapi
    documented: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if documented.get("schema") is not None and app.openapi_schema is documented["schema"]:
            return app.openapi_schema
        schema = generate()
        # Route contexts: included routers' routes with their prefixes and dependencies.
        roles = {(route.path_format or route.path, method.lower()): route_roles(route)
                 for route in iter_route_contexts(app.routes) for method in (route.methods or ())}
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                if not isinstance(operation, dict):
                    continue
                admitted = roles.get((path, method))
                if admitted is not None:
                    operation[ROLES_EXTENSION] = admitted
                client_errors = operation.setdefault("responses", {}).setdefault(
                    "4XX", {"description": "Client error (problem+json)", "content": {}})
                client_errors.setdefault("content", {}).setdefault(
                    PROBLEM_MEDIA_TYPE, {"schema": {"$ref": "#/components/schemas/ProblemDetails"}})
                if idempotency and method == "post":
                    parameters = operation.setdefault("parameters", [])
                    if not any(p.get("name") == "Idempotency-Key" for p in parameters):
                        parameters.append(dict(_IDEMPOTENCY_KEY))
        documented["schema"] = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
