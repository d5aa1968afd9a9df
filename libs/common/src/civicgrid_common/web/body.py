"""What every request must be before a route sees it: readable text, storable text, bounded nesting.

A pure ASGI middleware, inside the size limit (the body is already bounded and buffered):

- a JSON body that is not UTF-8, not JSON, or nested deeper than `MAX_DEPTH` is `malformed-body`
  (400), saying where reading stopped;
- a string anywhere in the JSON body, or a query parameter, that holds U+0000 or a lone surrogate
  is `validation-error` (422) naming the member (JSON pointer) or the parameter: PostgreSQL cannot
  store either, and no field of ours means one;
- a path holding U+0000 names no resource: `not-found` (404).

Checks cost one C-speed scan of the bytes when nothing is wrong; the body is parsed once more
only when the scan finds something to locate.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterator
from urllib.parse import parse_qsl

from civicgrid_common.problems import MALFORMED_BODY, NOT_FOUND, VALIDATION_ERROR, Problem, body_error, parameter_error
from civicgrid_common.web.asgi import ASGIApp, ClientDisconnected, Receive, Scope, Send, header, read_body, replaying
from civicgrid_common.web.problems import problem_response

# Deeper than any body of ours (a workflow definition is 5 levels), far below Python's recursion limit.
MAX_DEPTH = 32
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# How JSON spells them: an escaped NUL or an escaped surrogate (a raw NUL byte is invalid JSON).
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _is_json(content_type: str | None, body: bytes) -> bool:
    if content_type is None:
        # FastAPI reads a body without a content type as JSON when a route expects JSON.
        return body.lstrip()[:1] in (b"{", b"[")
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _walk(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any, int]]:
    """(path, value, depth) of every node, iteratively (a deep body must not recurse here)."""
    stack: list[tuple[tuple[str | int, ...], Any, int]] = [(path, value, 1)]
    while stack:
        at, node, depth = stack.pop()
        yield at, node, depth
        if isinstance(node, dict):
            stack.extend(((*at, k), v, depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*at, i), v, depth + 1) for i, v in enumerate(node))


def body_problem(body: bytes) -> Problem | None:
    """Why a JSON body may not reach a route, or None."""
    if not body.strip():
        return None  # no body: the route says whether it needs one
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem(MALFORMED_BODY, f"The request body is not UTF-8: invalid byte at position {exc.start}.")
    nesting = body.count(b"[") + body.count(b"{")
    try:
        parsed = json.loads(text)
    except RecursionError:
        return Problem(MALFORMED_BODY, f"The request body is nested deeper than {MAX_DEPTH} levels.")
    except json.JSONDecodeError as exc:
        return Problem(MALFORMED_BODY, f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                                       f"column {exc.colno}.")
    if nesting < MAX_DEPTH and not _UNSTORABLE_ESCAPE.search(body):
        return None
    errors = []
    for path, node, depth in _walk(parsed):
        if depth > MAX_DEPTH:
            return Problem(MALFORMED_BODY, f"The request body is nested deeper than {MAX_DEPTH} levels.")
        if isinstance(node, str) and _UNSTORABLE.search(node):
            errors.append(body_error(list(path), "contains U+0000 or a lone surrogate, which cannot be stored"))
        if isinstance(node, dict):
            errors.extend(body_error([*path, key], "a member name contains U+0000 or a lone surrogate")
                          for key in node if _UNSTORABLE.search(key))
    if errors:
        return Problem(VALIDATION_ERROR, "A value contains a character that cannot be stored; see `errors`.",
                       errors=sorted(errors, key=lambda e: e["pointer"]))
    return None


def query_problem(query_string: bytes) -> Problem | None:
    if b"%00" not in query_string.lower() and b"%ed" not in query_string.lower() and b"\x00" not in query_string:
        return None
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, encoding="utf-8",
                      errors="surrogateescape")
    bad = sorted({name for name, value in pairs if _UNSTORABLE.search(name) or _UNSTORABLE.search(value)})
    if not bad:
        return None
    return Problem(VALIDATION_ERROR, "A query parameter contains a character that cannot be stored.",
                   errors=[parameter_error(_UNSTORABLE.sub("\ufffd", name), "query",
                                           "contains U+0000 or bytes that are not UTF-8") for name in bad])


class RequestTextGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = None
        if "\x00" in scope.get("path", ""):
            problem = Problem(NOT_FOUND, "no such resource")
        else:
            problem = query_problem(scope.get("query_string", b""))
        if problem is None and scope["method"] in _BODY_METHODS:
            try:
                body = await read_body(receive)
            except ClientDisconnected:
                return  # nobody is listening for an answer
            if _is_json(header(scope, b"content-type"), body):
                problem = body_problem(body)
            receive = replaying(body, receive)
        if problem is not None:
            await problem_response(problem)(scope, receive, send)
            return
        await self.app(scope, receive, send)
