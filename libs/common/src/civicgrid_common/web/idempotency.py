"""Idempotency-Key on POST (IETF draft-ietf-httpapi-idempotency-key-header), kept in PostgreSQL.

The first request with a key claims a row (subject, key) in the service's own database, runs,
and stores its status, headers and body before the response is sent. Then:
- a repeat with the same body gets the stored response again, marked `Idempotent-Replayed: true`;
- the same key with another body, query or endpoint is a client error: 422;
- a repeat while the first is still running: 409, try again shortly.

A 5xx (or a crash in the app) removes the claim, so the client may retry. A claim left behind
by a process that died mid-request is taken over once it is older than `in_flight_timeout`.
Stored responses are kept for `retention` and then treated as absent. Stored before they are
sent, so a client that saw a response always gets the same one again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import rfc8785

from civicgrid_common.identity.dependencies import app_token_verifier, authenticate
from civicgrid_common.problems import IDEMPOTENCY_KEY_IN_FLIGHT, IDEMPOTENCY_KEY_INVALID, IDEMPOTENCY_KEY_REUSED, Problem
from civicgrid_common.web.asgi import ClientDisconnected, ASGIApp, Message, Receive, Scope, Send, header, read_body, replaying
from civicgrid_common.web.problems import problem_response

log = logging.getLogger("civicgrid.web.idempotency")

REPLAY_HEADER = b"idempotent-replayed"
MAX_KEY_LENGTH = 255
ANONYMOUS = "anonymous"

IDEMPOTENCY_SCHEMA = """
CREATE TABLE IF NOT EXISTS http_idempotency_keys (
    subject          text        NOT NULL,
    idempotency_key  text        NOT NULL,
    claim_id         uuid        NOT NULL,
    method           text        NOT NULL,
    path             text        NOT NULL,
    request_hash     text        NOT NULL,
    status_code      integer,                 -- NULL while the first request is in flight
    response_headers jsonb,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    PRIMARY KEY (subject, idempotency_key)
);
"""

# Claim the key unless a live row holds it; an abandoned in-flight claim or an expired
# response is taken over. A row comes back only if this request now owns the key.
_CLAIM = """
INSERT INTO http_idempotency_keys AS k (subject, idempotency_key, claim_id, method, path, request_hash)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (subject, idempotency_key) DO UPDATE
   SET claim_id = EXCLUDED.claim_id, method = EXCLUDED.method, path = EXCLUDED.path,
       request_hash = EXCLUDED.request_hash, status_code = NULL, response_headers = NULL,
       response_body = NULL, created_at = now(), completed_at = NULL
 WHERE (k.status_code IS NULL AND k.created_at < now() - $7::interval)
    OR k.created_at < now() - $8::interval
RETURNING k.claim_id
"""
_EXISTING = """
SELECT method, path, request_hash, status_code, response_headers, response_body
  FROM http_idempotency_keys WHERE subject = $1 AND idempotency_key = $2
"""
_COMPLETE = """
UPDATE http_idempotency_keys
   SET status_code = $4, response_headers = $5, response_body = $6, completed_at = now()
 WHERE subject = $1 AND idempotency_key = $2 AND claim_id = $3
"""
_RELEASE = "DELETE FROM http_idempotency_keys WHERE subject = $1 AND idempotency_key = $2 AND claim_id = $3"
_PURGE = "DELETE FROM http_idempotency_keys WHERE created_at < now() - $1::interval"


def parse_key(raw: str) -> str:
    """The key from the header: a Structured Field string ("...") or, leniently, a bare token."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value or len(value) > MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise Problem(IDEMPOTENCY_KEY_INVALID,
                      f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.")
    return value


def request_fingerprint(query_string: bytes, body: bytes) -> str:
    """What makes two requests "the same" besides method and path (stored apart). A JSON body
    counts by its content, canonicalised (RFC 8785): the same members in another order or with
    other white space are the same body; anything else counts byte for byte."""
    digest = hashlib.sha256(query_string)
    digest.update(b"\n")
    digest.update(_canonical(body))
    return digest.hexdigest()


def _canonical(body: bytes) -> bytes:
    try:
        return b"json:" + rfc8785.dumps(json.loads(body))
    except (ValueError, TypeError, RecursionError, rfc8785.CanonicalizationError):
        return b"raw:" + body


@dataclass
class _Captured:
    status: int = 0
    headers: list[tuple[bytes, bytes]] | None = None
    body: bytearray | None = None


def _should_store(status: int) -> bool:
    # Server errors and rate limiting are transient: the client must be free to retry them.
    return status < 500 and status != 429


class IdempotencyMiddleware:
    """Needs app.state.pool (asyncpg) and app.state.token_verifier; install with install_schema."""

    def __init__(self, app: ASGIApp, *, in_flight_timeout: timedelta = timedelta(minutes=2),
                 retention: timedelta = timedelta(hours=24)) -> None:
        self.app = app
        self.in_flight_timeout = in_flight_timeout
        self.retention = retention

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_key = header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if raw_key is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            key = parse_key(raw_key)
        except Problem as problem:
            await problem_response(problem)(scope, receive, send)
            return
        subject = await self._subject(scope)
        if subject is None:  # bad token: the route itself answers 401
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(receive)
        except ClientDisconnected:
            return  # no whole request, so nothing to run or to remember under the key
        pool: asyncpg.Pool | None = getattr(scope["app"].state, "pool", None)
        if pool is None:
            raise RuntimeError("Idempotency-Key needs app.state.pool (an asyncpg pool) to be set")
        await self._handle(pool, scope, replaying(body, receive), send, subject, key, body)

    async def _subject(self, scope: Scope) -> str | None:
        values = [v for k, v in scope.get("headers", ()) if k.lower() == b"authorization"]
        if len(values) > 1:
            return None  # the route refuses two Authorization headers
        authorization = header(scope, b"authorization")
        if authorization is None:
            return ANONYMOUS
        try:
            principal = await authenticate(app_token_verifier(scope["app"]), authorization)
        except Problem:
            return None
        return principal.subject

    async def _handle(self, pool: asyncpg.Pool, scope: Scope, receive: Receive, send: Send,
                      subject: str, key: str, body: bytes) -> None:
        fingerprint = request_fingerprint(scope.get("query_string", b""), body)
        claim_id = uuid.uuid4()
        # Bounded: a claim can vanish between our INSERT and SELECT (its request failed).
        for _ in range(3):
            owned = await pool.fetchval(_CLAIM, subject, key, claim_id, scope["method"], scope["path"],
                                        fingerprint, self.in_flight_timeout, self.retention)
            if owned is not None:
                await self._run_and_store(pool, scope, receive, send, (subject, key, claim_id))
                return
            row = await pool.fetchrow(_EXISTING, subject, key)
            if row is not None:
                await self._answer_repeat(row, scope, receive, send, fingerprint)
                return
        await problem_response(_in_flight())(scope, receive, send)

    async def _answer_repeat(self, row: asyncpg.Record, scope: Scope, receive: Receive, send: Send,
                             fingerprint: str) -> None:
        if (row["request_hash"], row["method"], row["path"]) != (fingerprint, scope["method"], scope["path"]):
            problem = Problem(IDEMPOTENCY_KEY_REUSED, "This Idempotency-Key was used for a different request.")
            await problem_response(problem)(scope, receive, send)
        elif row["status_code"] is None:
            await problem_response(_in_flight())(scope, receive, send)
        else:
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in row["response_headers"]]
            await send({"type": "http.response.start", "status": row["status_code"],
                        "headers": headers + [(REPLAY_HEADER, b"true")]})
            await send({"type": "http.response.body", "body": bytes(row["response_body"])})

    async def _run_and_store(self, pool: asyncpg.Pool, scope: Scope, receive: Receive, send: Send,
                             claim: tuple[str, str, uuid.UUID]) -> None:
        captured = _Captured()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                captured.headers = list(message.get("headers", []))
                captured.body = bytearray()
            elif message["type"] == "http.response.body" and captured.body is not None:
                captured.body.extend(message.get("body", b""))

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await _release(pool, claim)
            raise
        if captured.headers is None or captured.body is None:
            await _release(pool, claim)
            raise RuntimeError("the app finished without a response")
        if _should_store(captured.status) and not _no_store(captured.headers):
            stored = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in captured.headers]
            await pool.execute(_COMPLETE, *claim, captured.status, stored, bytes(captured.body))
        else:
            await _release(pool, claim)
        await send({"type": "http.response.start", "status": captured.status, "headers": captured.headers})
        await send({"type": "http.response.body", "body": bytes(captured.body)})


def _no_store(headers: list[tuple[bytes, bytes]]) -> bool:
    """A response marked `Cache-Control: no-store` (personal data) is never kept: its key is
    freed, so a retry runs the route again; such routes must be safe to repeat (e.g. register
    an applicant matches the existing one)."""
    return any(k.lower() == b"cache-control" and b"no-store" in v.lower() for k, v in headers)


def _in_flight() -> Problem:
    return Problem(IDEMPOTENCY_KEY_IN_FLIGHT,
                   "A request with this Idempotency-Key is still being processed; retry shortly.",
                   headers={"Retry-After": "1"})


async def _release(pool: asyncpg.Pool, claim: tuple[str, str, uuid.UUID]) -> None:
    try:
        await pool.execute(_RELEASE, *claim)
    except Exception:  # noqa: BLE001 - the stale-claim timeout frees it anyway
        log.exception("could not release idempotency claim; it frees itself after the in-flight timeout")


async def purge_expired(pool: asyncpg.Pool, retention: timedelta = timedelta(hours=24)) -> int:
    """Delete stored responses older than `retention`; returns how many went."""
    status = await pool.execute(_PURGE, retention)
    return int(status.split()[-1])
