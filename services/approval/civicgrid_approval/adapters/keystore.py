"""The seal key store: one Ed25519 key per approver (token subject) and per department system.

Private keys are kept encrypted at rest with AES-256-GCM under the store's master key (the
associated data binds each ciphertext to its key id, so a ciphertext copied to another row
does not decrypt). The master key comes from `CIVICGRID_SEAL_MASTER_KEY_FILE` (a file holding
32 random bytes, base64url; mounted from a secret in a deployment); unset, the local stack's
`.local/keys/approval-seal-master.key` is used and made if missing, but only on the local
stack (CIVICGRID_ENVIRONMENT=local): anywhere else an unset path is an error at start-up, as
a fresh key would leave every stored private key unreadable (and a read-only root filesystem
cannot hold it). A file that is named but missing is an error for the same reason.
`ensure_master_key` is the one writer of the file, for the local stack and for approval's key
command (entrypoints/keys.py), which deployments run before approval first starts.

Public keys are never deleted: GET /v1/seals/keys publishes all of them (JWK, RFC 8037), so a
seal made years ago still verifies.
"""
from __future__ import annotations

import secrets
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from civicgrid_common.db import install_schema
from civicgrid_common.keyfiles import AES_KEY_BYTES, LOCAL_ENVIRONMENT, ensure_aes_key_file, load_aes_key
from civicgrid_common.paths import local_state_dir
from civicgrid_common.unit_of_work import UnitOfWork

from civicgrid_approval.domain.seals import Ed25519Signer, public_jwk

LOCAL_MASTER_KEY_FILE = "approval-seal-master.key"
_AAD = b"civicgrid.approval.seal-key.v1:"

SEAL_KEYS_DDL = """
CREATE TABLE IF NOT EXISTS seal_keys (
    key_id       text        PRIMARY KEY,
    owner        text        NOT NULL,
    owner_kind   text        NOT NULL CHECK (owner_kind IN ('person', 'department')),
    public_key   bytea       NOT NULL,
    private_key  bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    active       boolean     NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX IF NOT EXISTS seal_keys_active_owner ON seal_keys (owner_kind, owner) WHERE active;
"""


class MasterKeyError(ValueError):
    """The master key file is missing or not 32 bytes."""


MASTER_KEY_ENV = "CIVICGRID_SEAL_MASTER_KEY_FILE"
MASTER_KEY_BYTES = AES_KEY_BYTES


def local_master_key_path() -> Path:
    return local_state_dir() / "keys" / LOCAL_MASTER_KEY_FILE


def ensure_master_key(path: Path) -> Path:
    """Make the master key file if it is missing (keyfiles.ensure_aes_key_file). Returns the path."""
    return ensure_aes_key_file(path)


def load_master_key(path: Path | None, environment: str = LOCAL_ENVIRONMENT) -> bytes:
    return load_aes_key(path, environment=environment, setting=MASTER_KEY_ENV, what="the seal master key",
                        command="civicgrid_approval.entrypoints.keys", local=local_master_key_path,
                        error=MasterKeyError)


class SealKeyStore:
    def __init__(self, pool: asyncpg.Pool, master_key: bytes) -> None:
        self.pool = pool
        self._aead = AESGCM(master_key)

    async def install(self) -> None:
        await install_schema(self.pool, [SEAL_KEYS_DDL])

    def _seal_private(self, key_id: str, key: Ed25519PrivateKey) -> bytes:
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, raw, _AAD + key_id.encode())

    def _open_private(self, key_id: str, blob: bytes) -> Ed25519PrivateKey:
        raw = self._aead.decrypt(blob[:12], blob[12:], _AAD + key_id.encode())
        return Ed25519PrivateKey.from_private_bytes(raw)

    async def signer_for(self, uow: UnitOfWork, owner: str, *, kind: str = "person") -> Ed25519Signer:
        """The owner's active key, made on first use (in the unit's transaction)."""
        return await self._signer(uow.conn, owner, kind)

    async def _signer(self, conn: asyncpg.Connection, owner: str, kind: str) -> Ed25519Signer:
        row = await conn.fetchrow(
            "SELECT key_id, private_key FROM seal_keys WHERE owner_kind = $1 AND owner = $2 AND active", kind, owner)
        if row is None:
            key = Ed25519PrivateKey.generate()
            key_id = f"{'dept' if kind == 'department' else 'seal'}-{secrets.token_hex(8)}"
            public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            inserted = await conn.fetchrow(
                """INSERT INTO seal_keys (key_id, owner, owner_kind, public_key, private_key)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (owner_kind, owner) WHERE active DO NOTHING RETURNING key_id""",
                key_id, owner, kind, public, self._seal_private(key_id, key))
            if inserted is None:  # another transaction made it first
                return await self._signer(conn, owner, kind)
            return Ed25519Signer(signer=owner, key_id=key_id, private_key=key)
        return Ed25519Signer(signer=owner, key_id=row["key_id"],
                             private_key=self._open_private(row["key_id"], row["private_key"]))

    async def public_keys(self) -> dict[str, tuple[str, Ed25519PublicKey]]:
        """key id -> (owner, public key), every key ever made."""
        rows = await self.pool.fetch("SELECT key_id, owner, public_key FROM seal_keys ORDER BY created_at, key_id")
        return {r["key_id"]: (r["owner"], Ed25519PublicKey.from_public_bytes(bytes(r["public_key"]))) for r in rows}

    async def jwks(self) -> dict[str, list[dict[str, str]]]:
        keys = await self.public_keys()
        return {"keys": [public_jwk(kid, pub, owner=owner) for kid, (owner, pub) in keys.items()]}
