"""Departments' webhook endpoints: where each department system takes its webhooks, and the
secrets they are signed with (Standard Webhooks `whsec_…`, newest first; during a rotation the
previous one stays for a grace period, so a receiver that has not switched yet still verifies).

An endpoint is configuration, set by the district's admin, not history: it lives in a table
(who set it and when is kept), and its secrets never enter an event, a log or an answer other
than the one that created them.
"""
from __future__ import annotations

import base64
import json
import secrets as _secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

ENDPOINTS_DDL = """
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    department text PRIMARY KEY,
    url text NOT NULL,
    allow_private boolean NOT NULL DEFAULT false,
    secrets jsonb NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    disabled_reason text,
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL
);
"""


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(_secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Endpoint:
    department: str
    url: str
    allow_private: bool
    enabled: bool
    disabled_reason: str | None
    updated_by: str
    updated_at: datetime
    secrets: tuple[str, ...]  # the active ones, newest first

    @classmethod
    def from_row(cls, row: asyncpg.Record, *, now: datetime) -> "Endpoint":
        stored = row["secrets"]
        stored = json.loads(stored) if isinstance(stored, str) else stored
        active = tuple(s["secret"] for s in stored
                       if s.get("expires_at") is None or datetime.fromisoformat(s["expires_at"]) > now)
        return cls(department=row["department"], url=row["url"], allow_private=row["allow_private"],
                   enabled=row["enabled"], disabled_reason=row["disabled_reason"], updated_by=row["updated_by"],
                   updated_at=row["updated_at"], secrets=active)


class Endpoints:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get(self, department: str, *, now: datetime) -> Endpoint | None:
        row = await self.pool.fetchrow("SELECT * FROM webhook_endpoints WHERE department = $1", department)
        return Endpoint.from_row(row, now=now) if row else None

    async def put(self, department: str, url: str, *, allow_private: bool, by: str, now: datetime) -> tuple[Endpoint, str | None]:
        """Set a department's endpoint; a new secret (returned once) when it had none."""
        secret = new_secret()
        row = await self.pool.fetchrow(
            """
            INSERT INTO webhook_endpoints (department, url, allow_private, secrets, updated_by, updated_at)
            VALUES ($1, $2, $3, jsonb_build_array(jsonb_build_object('secret', $4::text)), $5, $6)
            ON CONFLICT (department) DO UPDATE
            SET url = EXCLUDED.url, allow_private = EXCLUDED.allow_private, enabled = true, disabled_reason = NULL,
                updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
            RETURNING *, (xmax = 0) AS created
            """,
            department, url, allow_private, secret, by, now)
        return Endpoint.from_row(row, now=now), secret if row["created"] else None

    async def rotate(self, department: str, *, grace: timedelta, by: str, now: datetime) -> str | None:
        """A new secret, newest first; the others expire after `grace`. None without an endpoint."""
        secret = new_secret()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT secrets FROM webhook_endpoints WHERE department = $1 FOR UPDATE",
                                      department)
            if row is None:
                return None
            stored = row["secrets"]
            stored = json.loads(stored) if isinstance(stored, str) else stored
            until = (now + grace).isoformat()
            kept = [{**s, "expires_at": min(s.get("expires_at") or until, until)} for s in stored
                    if s.get("expires_at") is None or datetime.fromisoformat(s["expires_at"]) > now]
            await conn.execute(
                "UPDATE webhook_endpoints SET secrets = $2::jsonb, updated_by = $3, updated_at = $4 "
                "WHERE department = $1",
                department, json.dumps([{"secret": secret}, *kept]), by, now)
        return secret

    async def disable(self, department: str, reason: str, *, now: datetime) -> None:
        await self.pool.execute(
            "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = $3 "
            "WHERE department = $1", department, reason, now)
