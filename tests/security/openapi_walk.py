"""Reading a service's OpenAPI document the way the class tests need it: every operation with
its roles (`x-civicgrid-roles`), parameters and body schema ($refs resolved), and what makes a
schema unbounded. Generated from the document, so a route added tomorrow is tested tomorrow."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

METHODS = ("get", "put", "post", "delete", "patch")
# A quantifier without an upper bound lets a pattern match any length.
_UNBOUNDED_QUANTIFIER = re.compile(r"(?<!\\)[*+]|\{\d+,\}")


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # templated, as in the document
    spec: dict[str, Any]
    roles: list[str] | None  # None: no token needed

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_parameters(self) -> list[str]:
        return re.findall(r"{([^}]+)}", self.path)

    def parameters(self, where: str | None = None) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if where is None or p["in"] == where]

    def json_body(self, document: dict[str, Any]) -> dict[str, Any] | None:
        content = (self.spec.get("requestBody") or {}).get("content") or {}
        schema = (content.get("application/json") or {}).get("schema")
        return resolve(document, schema) if schema is not None else None

    @property
    def takes_form(self) -> bool:
        content = (self.spec.get("requestBody") or {}).get("content") or {}
        return "application/x-www-form-urlencoded" in content


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                spec = item[method]
                found.append(Operation(method.upper(), path, spec, spec.get("x-civicgrid-roles")))
    return found


# Where a recursive schema refers to itself (an eligibility rule's all_of holds rules): the
# reference is left as {CYCLE: ref}, its schema being resolved, and checked, where it begins.
CYCLE = "x-cycle"


def resolve(document: dict[str, Any], schema: Any, _within: tuple[str, ...] = ()) -> Any:
    """The schema with every local $ref replaced by what it names, but a $ref inside what it
    names (a cycle) replaced by {CYCLE: ref}."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            ref = schema["$ref"]
            if ref in _within:
                return {CYCLE: ref}
            target: Any = document
            for part in ref.lstrip("#/").split("/"):
                target = target[part]
            return resolve(document, {**target, **{k: v for k, v in schema.items() if k != "$ref"}}, (*_within, ref))
        return {k: resolve(document, v, _within) for k, v in schema.items()}
    if isinstance(schema, list):
        return [resolve(document, v, _within) for v in schema]
    return schema


def unbounded(schema: dict[str, Any], where: str = "#") -> Iterator[tuple[str, str]]:
    """(where, why) of every part of `schema` that lets a request send unbounded input."""
    if not schema or schema == {}:
        yield where, "no schema: anything goes"
        return
    if CYCLE in schema:
        return  # checked where the recursion begins
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            for i, branch in enumerate(schema[combinator]):
                yield from unbounded(branch, f"{where}({combinator} {i})")
            return
    if "enum" in schema or "const" in schema:
        return
    kind = schema.get("type")
    if kind == "null" or kind == "boolean":
        return
    if kind == "string":
        if "maxLength" in schema:
            return
        if schema.get("format") in ("date", "date-time"):
            if "formatMaximum" not in schema or "formatMinimum" not in schema:
                yield where, f"a {schema['format']} without a range (formatMinimum/formatMaximum)"
            return
        pattern = schema.get("pattern")
        if pattern is not None and pattern.startswith("^") and pattern.endswith("$") \
                and not _UNBOUNDED_QUANTIFIER.search(pattern):
            return
        yield where, "a string without maxLength (or an anchored pattern of bounded length)"
        return
    if kind in ("integer", "number"):
        low = "minimum" in schema or "exclusiveMinimum" in schema
        high = "maximum" in schema or "exclusiveMaximum" in schema
        if not (low and high):
            yield where, f"an {kind} without {'minimum' if not low else 'maximum'}"
        return
    if kind == "array":
        if "maxItems" not in schema:
            yield where, "an array without maxItems"
        yield from unbounded(schema.get("items") or {}, f"{where}/items")
        return
    if kind == "object" or "properties" in schema:
        extra = schema.get("additionalProperties", True)
        if extra is True or extra == {}:
            yield where, "an object that takes any other member (additionalProperties not false)"
        elif isinstance(extra, dict):
            yield from unbounded(extra, f"{where}/*")
        for name, sub in (schema.get("properties") or {}).items():
            yield from unbounded(sub, f"{where}/{name}")
        return
    yield where, f"no type ({sorted(schema)})"


def body_properties(schema: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """(path, schema) of every named member of a body schema, nested ones included."""
    if not isinstance(schema, dict):
        return
    for combinator in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(combinator, []):
            yield from body_properties(branch, path)
    for name, sub in (schema.get("properties") or {}).items():
        yield (*path, name), sub
        yield from body_properties(sub, (*path, name))
    if isinstance(schema.get("items"), dict):
        yield from body_properties(schema["items"], path)


def pointer(path: tuple[str | int, ...]) -> str:
    return "#" + "".join(f"/{p}" for p in path)


def json_kind(schema: dict[str, Any]) -> str | None:
    """The JSON type a schema takes, unions with null included ('integer', 'boolean', ...)."""
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            kinds = {json_kind(branch) for branch in schema[combinator]} - {"null", None}
            return kinds.pop() if len(kinds) == 1 else None
    return schema.get("type")
