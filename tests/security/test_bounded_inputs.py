"""Unbounded input (OWASP API4), over every operation of intake's, approval's and statistics'
OpenAPI documents: every date, number, length and count a request controls is bounded.

- Statically: every parameter and every body member has a bound in the document (a string a
  maxLength, an anchored bounded pattern or an enum; a date a formatMinimum and formatMaximum;
  a number a minimum and a maximum; an array a maxItems; an object no other members).
- At its extremes: each bounded parameter and body member of every operation is sent just past
  its bound (year 1 and year 9999, 10**30, one character or item too many): a 422 problem naming
  it, nothing changed, never a 5xx.
"""
from __future__ import annotations

import copy
from typing import Any

import pytest

from checks import attempt, problem_faults
from openapi_walk import body_properties, operations, pointer, resolve, unbounded
from worlds import actor

pytestmark = pytest.mark.integration

_DATES = {"date": ("0001-01-01", "9999-12-31"),
          "date-time": ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59+08:00")}


def _extremes(schema: dict[str, Any]) -> list[Any]:
    """Values just past the schema's bounds (none if it has no bound of a kind we vary)."""
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return [v for branch in schema[combinator] for v in _extremes(branch)]
    kind = schema.get("type")
    if kind == "string" and schema.get("format") in _DATES:
        return list(_DATES[schema["format"]])
    if kind == "string" and "maxLength" in schema and "enum" not in schema:
        return ["7" * (schema["maxLength"] + 1)]
    if kind in ("integer", "number"):
        return [10**30, -(10**30)]
    if kind == "array" and "maxItems" in schema:
        item = schema.get("items") or {}
        filler = "7" if item.get("type") == "string" else 7
        return [[filler] * (schema["maxItems"] + 1)]
    return []


def _who(op) -> dict[str, str]:
    return actor(op.roles)


def _set(body: Any, path: tuple[str, ...], value: Any) -> Any | None:
    """A copy of `body` with `value` at `path`, or None if `path`'s parent is not in the body."""
    body = copy.deepcopy(body)
    node = body
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return None
        node = node[key]
    if not isinstance(node, dict):
        return None
    node[path[-1]] = value
    return body


def test_every_input_a_request_controls_is_bounded_in_the_document(world):
    found = []
    for op in operations(world.schema):
        for p in op.parameters():
            found += [f"{op.label} {p['in']}:{p['name']} {where}: {why}"
                      for where, why in unbounded(resolve(world.schema, p.get("schema", {})))]
        body = op.json_body(world.schema)
        if body is not None:
            found += [f"{op.label} body {where}: {why}" for where, why in unbounded(body)]
    assert not found, "unbounded inputs:\n" + "\n".join(found)


async def test_every_bounded_parameter_just_past_its_bound_is_a_422_naming_it(world):
    failures, tried = [], 0
    for op in operations(world.schema):
        for p in op.parameters():
            if p["in"] not in ("query", "path") or p["name"] in ("ext",):
                continue
            for value in _extremes(resolve(world.schema, p.get("schema", {}))):
                if p["in"] == "query":
                    r, changed = await attempt(world, op, _who(op), query={p["name"]: str(value)})
                else:
                    r, changed = await attempt(world, op, _who(op), url=world.url(op.path, **{p["name"]: str(value)}))
                tried += 1
                named = [(str(e.get("field")).split(".")[0], e.get("in")) for e in (r.json().get("errors") or [])] \
                    if r.headers.get("content-type", "").startswith("application/problem+json") else []
                # A path segment too long for any id names nothing: 404 is as right as 422.
                acceptable = r.status_code == 422 and (p["name"], p["in"]) in named or \
                    (p["in"] == "path" and r.status_code == 404)
                if not acceptable:
                    failures.append(f"{op.label} {p['in']}:{p['name']}={str(value)[:40]}: {r.status_code} {r.text[:200]}")
                if changed:
                    failures.append(f"{op.label} {p['name']}: changed the stores")
    assert tried, "no parameter extreme was generated"
    failures += [f for r in world.recorded.responses for f in problem_faults(r)]
    assert not failures, "\n".join(failures)


async def test_every_bounded_body_member_just_past_its_bound_is_a_422_naming_it(world):
    failures, tried = [], 0
    for op in operations(world.schema):
        schema = op.json_body(world.schema)
        valid = world.bodies.get((op.method, op.path))
        if schema is None or valid is None:
            continue
        for path, member in body_properties(schema):
            for value in _extremes(member):
                body = _set(valid, path, value)
                if body is None:
                    continue
                r, changed = await attempt(world, op, _who(op), body=body)
                tried += 1
                pointers = [e.get("pointer") for e in (r.json().get("errors") or [])] if r.status_code == 422 else []
                if r.status_code != 422 or pointer(path) not in pointers:
                    failures.append(f"{op.label} {pointer(path)}={str(value)[:40]}: {r.status_code} {r.text[:300]}")
                if changed:
                    failures.append(f"{op.label} {pointer(path)}: changed the stores")
    assert tried or world.service == "statistics", "no body extreme was generated"
    failures += [f for r in world.recorded.responses for f in problem_faults(r)]
    assert not failures, "\n".join(failures)


def _kind(schema: dict[str, Any]) -> str | None:
    """The JSON type a member takes, unions with null included ('integer', 'boolean', ...)."""
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            kinds = {_kind(branch) for branch in schema[combinator]} - {"null", None}
            return kinds.pop() if len(kinds) == 1 else None
    return schema.get("type")


async def test_a_boolean_or_integer_member_takes_only_a_json_boolean_or_integer(world):
    """'yes', 'true' and '1' are strings: a lax model would read them as true or 1."""
    failures, tried = [], 0
    for op in operations(world.schema):
        schema = op.json_body(world.schema)
        valid = world.bodies.get((op.method, op.path))
        if schema is None or valid is None:
            continue
        for path, member in body_properties(schema):
            wrong = {"boolean": ["true", "yes", 1], "integer": ["1", 1.5, True]}.get(_kind(member) or "", [])
            for value in wrong:
                body = _set(valid, path, value)
                if body is None:
                    continue
                r, changed = await attempt(world, op, _who(op), body=body)
                tried += 1
                pointers = [e.get("pointer") for e in (r.json().get("errors") or [])] if r.status_code == 422 else []
                if r.status_code != 422 or pointer(path) not in pointers or changed:
                    failures.append(f"{op.label} {pointer(path)}={value!r}: {r.status_code} {r.text[:200]}")
    assert tried or world.service == "statistics", "no boolean or integer member was tried"
    assert not failures, "\n".join(failures)
