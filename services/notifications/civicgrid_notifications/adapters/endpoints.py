"""Departments' webhook endpoints: where each department system takes its webhooks, and the
secrets they are signed with (Standard Webhooks `whsec_…`, newest first; during a rotation the
previous one stays for a grace period, so a receiver that has not switched yet still verifies).

An endpoint is configuration, set by the district's admin, not history: it lives in a table
(who set it and when is kept), and its secrets never enter an event, a log or an answer other
than the one that created them.

Secrets at rest: sealed with AES-256-GCM (cryptography's AESGCM, a fresh 96-bit nonce each)
under notifications' own key file, `CIVICGRID_WEBHOOK_SECRETS_KEY_FILE` (32 random bytes,
base64url; a Secret mounted in a deployment, made once by the key command
`python -m civicgrid_notifications.entrypoints.keys init`; the local stack's
.local/keys/notifications-webhook-secrets.key is made if missing). The associated data binds
each ciphertext to its department, so a sealed secret copied into another department's row
does not open. Whoever reads the database, a dump or a backup alone cannot sign a webhook a
department would believe. A secret stored in clear by an earlier version is sealed when the
service starts (`Endpoints.install`).
"""
from __future__ import annotations

import base64
import binascii
import json
import secrets as _secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from civicgrid_common.db import install_schema
from civicgrid_common.keyfiles import load_aes_key
from civicgrid_common.paths import local_state_dir

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


KEY_FILE_ENV = "CIVICGRID_WEBHOOK_SECRETS_KEY_FILE"
LOCAL_KEY_FILE = "notifications-webhook-secrets.key"
SEALED_PREFIX = "ws1."  # the format of a sealed secret: ws1.<base64url(nonce ‖ ciphertext ‖ tag)>
_AAD = b"civicgrid.notifications.webhook-secret.v1:"
_NONCE_BYTES = 12


class SecretsKeyError(ValueError):
    """The webhook secrets' key file is missing or unusable."""


class UnreadableSecret(RuntimeError):
    """A stored webhook secret does not open: altered, copied from another department's row, or
    sealed under another key. The endpoint cannot sign until its admin rotates its secret."""


def local_key_path() -> Path:
    return local_state_dir() / "keys" / LOCAL_KEY_FILE


def load_secrets_key(path: Path | None, environment: str) -> bytes:
    return load_aes_key(path, environment=environment, setting=KEY_FILE_ENV, what="the webhook secrets' key",
                        command="civicgrid_notifications.entrypoints.keys", local=local_key_path,
                        error=SecretsKeyError)


class SecretBox:
    """Seals and opens departments' webhook secrets under the service's key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, department: str, secret: str) -> str:
        nonce = _secrets.token_bytes(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, secret.encode(), _AAD + department.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, department: str, sealed: str) -> str:
        if not sealed.startswith(SEALED_PREFIX):
            raise UnreadableSecret(f"the webhook secret of {department!r} is not a sealed secret")
        try:
            blob = base64.urlsafe_b64decode(sealed[len(SEALED_PREFIX):] + "==")
            return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _AAD + department.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise UnreadableSecret(f"the webhook secret of {department!r} does not open under this service's key "
                                   "(altered, copied from another row, or sealed under another key); "
                                   "rotate it") from None


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
    secrets: tuple[str, ...]  # the active ones that open, newest first
    unreadable: int = 0  # active ones that do not open (UnreadableSecret): nothing is signed until rotated

    @classmethod
    def from_row(cls, row: asyncpg.Record, *, now: datetime, box: SecretBox) -> "Endpoint":
        opened, unreadable = [], 0
        for stored in _stored(row["secrets"]):
            if _active(stored, now):
                try:
                    opened.append(box.open(row["department"], stored.get("sealed", "")))
                except UnreadableSecret:
                    unreadable += 1
        return cls(department=row["department"], url=row["url"], allow_private=row["allow_private"],
                   enabled=row["enabled"], disabled_reason=row["disabled_reason"], updated_by=row["updated_by"],
                   updated_at=row["updated_at"], secrets=tuple(opened), unreadable=unreadable)


def _stored(value: str | list) -> list[dict]:
    # The pool's codec gives jsonb as Python; a str is a list an earlier version stored as JSON text.
    return json.loads(value) if isinstance(value, str) else value


def _active(stored: dict, now: datetime) -> bool:
    return stored.get("expires_at") is None or datetime.fromisoformat(stored["expires_at"]) > now


class Endpoints:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox) -> None:
        self.pool = pool
        self.box = box

    async def install(self) -> None:
        """The table, and any secret an earlier version stored in clear sealed now (once). Those
        versions also stored a rotated list as a JSON string inside the jsonb; it becomes a list."""
        await install_schema(self.pool, [ENDPOINTS_DDL])
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch("SELECT department, secrets FROM webhook_endpoints "
                                    "WHERE jsonb_typeof(secrets) <> 'array' OR jsonb_path_exists(secrets, '$[*].secret') "
                                    "FOR UPDATE")
            for row in rows:
                sealed = [{**{k: v for k, v in s.items() if k != "secret"},
                           "sealed": self.box.seal(row["department"], s["secret"])} if "secret" in s else s
                          for s in _stored(row["secrets"])]
                await conn.execute("UPDATE webhook_endpoints SET secrets = $2::jsonb WHERE department = $1",
                                   row["department"], sealed)

    async def get(self, department: str, *, now: datetime) -> Endpoint | None:
        row = await self.pool.fetchrow("SELECT * FROM webhook_endpoints WHERE department = $1", department)
        return Endpoint.from_row(row, now=now, box=self.box) if row else None

    async def put(self, department: str, url: str, *, allow_private: bool, by: str, now: datetime) -> tuple[Endpoint, str | None]:
        """Set a department's endpoint; a new secret (returned once) when it had none."""
        secret = new_secret()
        row = await self.pool.fetchrow(
            """
            INSERT INTO webhook_endpoints (department, url, allow_private, secrets, updated_by, updated_at)
            VALUES ($1, $2, $3, jsonb_build_array(jsonb_build_object('sealed', $4::text)), $5, $6)
            ON CONFLICT (department) DO UPDATE
            SET url = EXCLUDED.url, allow_private = EXCLUDED.allow_private, enabled = true, disabled_reason = NULL,
                updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
            RETURNING *, (xmax = 0) AS created
            """,
            department, url, allow_private, self.box.seal(department, secret), by, now)
        return Endpoint.from_row(row, now=now, box=self.box), secret if row["created"] else None

    async def rotate(self, department: str, *, grace: timedelta, by: str, now: datetime) -> str | None:
        """A new secret, newest first; the others expire after `grace`, and those that do not open
        are dropped (rotating is how an admin recovers from them). None without an endpoint."""
        secret = new_secret()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT secrets FROM webhook_endpoints WHERE department = $1 FOR UPDATE",
                                      department)
            if row is None:
                return None
            until = (now + grace).isoformat()
            kept = [{**s, "expires_at": min(s.get("expires_at") or until, until)} for s in _stored(row["secrets"])
                    if _active(s, now) and self._opens(department, s)]
            await conn.execute(
                "UPDATE webhook_endpoints SET secrets = $2::jsonb, updated_by = $3, updated_at = $4 "
                "WHERE department = $1",
                department, [{"sealed": self.box.seal(department, secret)}, *kept], by, now)
        return secret

    def _opens(self, department: str, stored: dict) -> bool:
        try:
            self.box.open(department, stored.get("sealed", ""))
            return True
        except UnreadableSecret:
            return False

    async def disable(self, department: str, reason: str, *, now: datetime) -> None:
        await self.pool.execute(
            "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = $3 "
            "WHERE department = $1", department, reason, now)
