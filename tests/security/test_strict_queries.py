"""A query parameter that is a boolean takes only `true` or `false`, one that is an integer only an
integer, over every operation of intake's, approval's and statistics' OpenAPI documents: "yes",
"1" or "on" is no boolean (a lax parser reads them as true), "1.5" or "ten" no integer. Each is
a 422 problem naming the parameter, and nothing changes."""
from __future__ import annotations

import pytest

from checks import attempt, problem_faults
from openapi_walk import json_kind, operations, resolve
from worlds import actor

pytestmark = pytest.mark.integration

WRONG = {"boolean": ["yes", "1", "on", "True"], "integer": ["1.5", "ten", "1e3"]}


async def test_a_boolean_or_integer_query_parameter_takes_only_its_json_spelling(world):
    failures, tried = [], {"boolean": 0, "integer": 0}
    for op in operations(world.schema):
        for p in op.parameters("query"):
            kind = json_kind(resolve(world.schema, p.get("schema", {})))
            for value in WRONG.get(kind or "", []):
                r, changed = await attempt(world, op, actor(op.roles), query={p["name"]: value})
                tried[kind] += 1
                named = [e.get("field") for e in (r.json().get("errors") or [])] if r.status_code == 422 else []
                if r.status_code != 422 or p["name"] not in named or changed:
                    failures.append(f"{op.label} ?{p['name']}={value}: {r.status_code} {r.text[:200]}")
    assert tried["integer"], "no integer query parameter was tried"
    if world.service != "statistics":
        assert tried["boolean"], "no boolean query parameter was tried"
    failures += [f for r in world.recorded.responses for f in problem_faults(r)]
    assert not failures, "\n".join(failures)
