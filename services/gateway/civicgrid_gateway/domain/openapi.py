"""One OpenAPI document of every service's routes as the gateway serves them (pure: no I/O).

Each service's own document is rewritten to the gateway's paths (`/v1/cases` of intake is
`/api/intake/v1/cases`; intake's Open311 keeps its public `/open311/v2/...`), its components
named after it (`intake.CaseOut`, every `$ref` to them rewritten), its operation ids and tags
prefixed with it, so that two services' names never collide. The bearer scheme is one for all.
What the gateway answers itself (health, problem pages) is the gateway's, not each service's.
"""
from __future__ import annotations

from typing import Any, Mapping

from civicgrid_gateway.domain.routes import API_PREFIX, OPEN311_PREFIX

# The paths every service has that the gateway does not proxy (it answers them itself).
_OWN_PATHS = ("/healthz", "/readyz", "/metrics", "/problems")
_COMPONENT_REF = "#/components/"
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


class ConflictingDefinitions(ValueError):
    """Two services define the same security scheme differently."""


def _public_path(service: str, path: str) -> str | None:
    if any(path == own or path.startswith(own + "/") for own in _OWN_PATHS):
        return None
    if service == "intake" and (path == OPEN311_PREFIX or path.startswith(OPEN311_PREFIX + "/")):
        return path
    return f"{API_PREFIX}{service}{path}"


def _ref(service: str, ref: str) -> str:
    if not ref.startswith(_COMPONENT_REF):
        return ref
    kind, _, name = ref[len(_COMPONENT_REF):].partition("/")
    return ref if kind == "securitySchemes" else f"{_COMPONENT_REF}{kind}/{service}.{name}"


def _renamed(service: str, node: Any) -> Any:
    """`node` with every reference to a component (a $ref, a discriminator's mapping) pointing
    at the service's renamed component."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = _ref(service, value)
            elif key == "discriminator" and isinstance(value, dict) and isinstance(value.get("mapping"), dict):
                out[key] = {**value, "mapping": {k: _ref(service, v) if isinstance(v, str) else v
                                                 for k, v in value["mapping"].items()}}
            else:
                out[key] = _renamed(service, value)
        return out
    if isinstance(node, list):
        return [_renamed(service, item) for item in node]
    return node


def aggregate(gateway: Mapping[str, Any], services: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The gateway's own document (`gateway`) with every service's operations added."""
    document: dict[str, Any] = {
        "openapi": gateway["openapi"],
        "info": {**gateway["info"], "title": "civicgrid API (through the gateway)"},
        "servers": [{"url": "/"}],
        "paths": {path: item for path, item in gateway.get("paths", {}).items()},
        "components": {kind: dict(defs) for kind, defs in gateway.get("components", {}).items()},
        "tags": list(gateway.get("tags", [])),
    }
    components: dict[str, dict[str, Any]] = document["components"]
    for service, spec in sorted(services.items()):
        spec = _renamed(service, spec)
        for kind, defs in spec.get("components", {}).items():
            target = components.setdefault(kind, {})
            for name, definition in defs.items():
                if kind == "securitySchemes":
                    if target.get(name, definition) != definition:
                        raise ConflictingDefinitions(f"{service} defines the security scheme {name!r} differently")
                    target[name] = definition
                else:
                    target[f"{service}.{name}"] = definition
        for path, item in spec.get("paths", {}).items():
            public = _public_path(service, path)
            if public is None:
                continue
            document["paths"][public] = {key: _prefixed(service, value) if key in _METHODS else value
                                         for key, value in item.items()}
        document["tags"] += [{**tag, "name": f"{service} {tag['name']}"} for tag in spec.get("tags", [])]
    return document


def _prefixed(service: str, operation: dict[str, Any]) -> dict[str, Any]:
    out = dict(operation)
    if "operationId" in out:
        out["operationId"] = f"{service}_{out['operationId']}"
    out["tags"] = [f"{service} {tag}" for tag in out.get("tags", [])] or [service]
    return out
