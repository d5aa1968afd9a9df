"""One catalogue of problem types for the whole system, over every operation of intake's,
approval's and statistics' OpenAPI documents (the other class tests check every answer they got
against it as well):

- every operation documents problem+json among its 4XX answers, and every POST its
  Idempotency-Key header;
- every type of the catalogue resolves, on every service, to its page;
- a body that is not UTF-8, not JSON or nested too deep, and a query parameter holding U+0000,
  sent to every operation that takes them, are each the same problem everywhere, naming the
  parameter where one is at fault, and change nothing.
"""
from __future__ import annotations

import pytest

from civicgrid_common.problems import CATALOGUE, PROBLEM_MEDIA_TYPE

from checks import problem_faults
from openapi_walk import operations
from worlds import actor

pytestmark = pytest.mark.integration

_BROKEN_BODIES = {
    "not UTF-8": b'{"reason": "\xff\xfe"}',
    "not JSON": b'{"reason": ',
    "nested too deep": b'{"reason": ' + b"[" * 3000 + b"]" * 3000 + b"}",
}


def test_every_operation_documents_its_problems_and_every_post_its_idempotency_key(world):
    missing = []
    for op in operations(world.schema):
        errors = (op.spec.get("responses") or {}).get("4XX", {}).get("content", {})
        if PROBLEM_MEDIA_TYPE not in errors:
            missing.append(f"{op.label}: no problem+json among its 4XX answers")
        if op.method == "POST" and "Idempotency-Key" not in [p["name"] for p in op.parameters("header")]:
            missing.append(f"{op.label}: Idempotency-Key not declared")
    assert not missing, "\n".join(missing)


async def test_every_problem_type_resolves_to_its_page_on_every_service(world):
    for kind in CATALOGUE:
        page = await world.client.get(kind.uri)
        assert page.status_code == 200 and kind.title in page.text, (world.service, kind.uri)


async def test_broken_bodies_and_unstorable_queries_are_the_same_problems_everywhere(world):
    failures = []
    for op in operations(world.schema):
        who = actor(op.roles)
        url = world.url(op.path)
        before = await world.state()
        if op.json_body(world.schema) is not None:
            for what, raw in _BROKEN_BODIES.items():
                r = await world.client.request(op.method, url, content=raw,
                                               headers={**who, "Content-Type": "application/json"})
                if r.status_code != 400 or r.json().get("type") != "/problems/malformed-body":
                    failures.append(f"{op.label} with a body {what}: {r.status_code} {r.text[:200]}")
        for p in op.parameters("query")[:1]:
            r = await world.client.request(op.method, url, params={p["name"]: "a\x00b"}, headers=who)
            named = [(e.get("field"), e.get("in")) for e in r.json().get("errors") or []]
            if r.status_code != 422 or (p["name"], "query") not in named:
                failures.append(f"{op.label} with U+0000 in {p['name']}: {r.status_code} {r.text[:200]}")
        if await world.state() != before:
            failures.append(f"{op.label}: a refused request changed the stores")
    failures += [f for r in world.recorded.responses for f in problem_faults(r)]
    assert not failures, "\n".join(failures)
