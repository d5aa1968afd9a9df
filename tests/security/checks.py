"""Sending an operation's request as someone, and the checks every answer must pass."""
from __future__ import annotations

import json
from typing import Any

import httpx

from civicgrid_common.problems import BY_URI, PROBLEM_MEDIA_TYPE

from openapi_walk import Operation
from worlds import COMMUNITY, STREET, World

# Answers in their own documented format, not problem+json (GeoReport v2's errors).
OPEN311 = "/open311/"


async def send(world: World, op: Operation, headers: dict[str, str], *, body: Any = ...,
               query: dict[str, str] | None = None, url: str | None = None) -> httpx.Response:
    """The operation's request with the world's valid body (or `body`) and `headers`."""
    if body is ...:
        body = world.bodies.get((op.method, op.path))
    kwargs: dict[str, Any] = {"headers": headers, "params": query}
    if body is not None:
        kwargs["content"] = json.dumps(body, ensure_ascii=False).encode()
        kwargs["headers"] = {**headers, "Content-Type": "application/json"}
    return await world.client.request(op.method, url or world.url(op.path), **kwargs)


async def attempt(world: World, op: Operation, headers: dict[str, str], **kwargs: Any) -> tuple[httpx.Response, bool]:
    """Send the operation's request (as `send`) and say whether it changed the world's stores."""
    before = await world.state()
    response = await send(world, op, headers, **kwargs)
    return response, await world.state() != before


def problem_faults(response: httpx.Response) -> list[str]:
    """What is wrong with an error answer: not problem+json, a type not in the catalogue, a
    status or title that disagrees with its type, a 422 that names no field."""
    if response.status_code < 400 or response.request.url.path.startswith(OPEN311):
        return []
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    if response.headers.get("content-type", "").split(";")[0] != PROBLEM_MEDIA_TYPE:
        return [f"{where}: not problem+json ({response.headers.get('content-type')})"]
    body = response.json()
    kind = BY_URI.get(body.get("type"))
    if kind is None:
        return [f"{where}: type {body.get('type')!r} is not in the catalogue"]
    faults = []
    if body.get("status") != response.status_code:
        faults.append(f"{where}: status member {body.get('status')} differs")
    if kind.status == response.status_code and body.get("title") != kind.title:
        faults.append(f"{where}: title {body.get('title')!r} is not the type's {kind.title!r}")
    if response.status_code == 422:
        errors = body.get("errors") or []
        if not errors or not all(e.get("pointer") or e.get("field") for e in errors):
            faults.append(f"{where}: a 422 whose `errors` do not name each field: {errors}")
    return faults


def leaks_place(response: httpx.Response) -> bool:
    """Whether a refusal names where the object is (the existence oracle's tell)."""
    return COMMUNITY in response.text or f'"{STREET}"' in response.text
