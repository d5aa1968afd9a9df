"""Personal data at rest: identity numbers, phones and names encrypted per field.

- **Encryption**: AES-256-GCM (cryptography's AESGCM) with a fresh random 96-bit nonce per
  value. The associated data binds a ciphertext to its field and its applicant id, so a
  ciphertext copied into another row or another column fails to decrypt instead of quietly
  showing one person's number as another's.
- **Key rotation**: a keyring holds encryption keys by key id; new values use the newest
  (`current`) key, the key id travels in the stored token, and older keys stay in the ring so
  old values still decrypt. `needs_reencryption` / `reencrypt` move old values forward.
- **Lookup**: values cannot be searched once encrypted, so a blind index (HMAC-SHA256 of
  the identity number under its own key) is stored beside them; the window finds an
  applicant by computing the index of the number on the ID card.
- **Pseudonyms**: the ring also holds the key of the pseudonymous applicant id
  (domain/applicant.py), kept apart from the blind-index key so that the id in events is
  not the value that indexes the personal-data table.

The blind-index and pseudonym keys cannot rotate without re-indexing every row and
renaming every applicant stream; they are separate keys so the encryption keys can rotate
freely.

Where the keyring comes from: `CIVICGRID_PERSONAL_DATA_KEYRING`, the path of a JSON keyring
file (mounted from a secret in a deployment). Unset, the local stack's ring
`.local/keys/personal-data-keyring.json` is used and generated if missing, like the local
signing key (civicgrid_common/identity/localkeys.py), but only on the local stack
(CIVICGRID_ENVIRONMENT=local): anywhere else an unset path is an error at start-up, as
approval's seal master key is. A path that is set but missing is an error, never a reason
to make new keys: new keys would leave every stored value unreadable. Deployments make the
file once, before intake first starts, with intake's key command (entrypoints/keys.py), which
writes it with `ensure_local_keyring` like the local stack's.

Stored token: `pd1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`.
"""
from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from civicgrid_common.keyfiles import LOCAL_ENVIRONMENT, mounted_or_local, write_once
from civicgrid_common.paths import local_state_dir
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic_settings import BaseSettings, SettingsConfigDict

from civicgrid_intake.domain.applicant import IdentityKind

KEYRING_ENV_VAR = "CIVICGRID_PERSONAL_DATA_KEYRING"
LOCAL_KEYRING_FILE = "personal-data-keyring.json"
TOKEN_PREFIX = "pd1"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, the size GCM is specified for
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_AAD_CONTEXT = b"civicgrid.intake.personal-data.v1"
_BLIND_INDEX_CONTEXT = b"civicgrid.intake.blind-index.v1"


class PersonalField(str, enum.Enum):
    """The personal fields stored encrypted; each is bound into its ciphertexts."""

    IDENTITY_NUMBER = "identity_number"
    PHONE = "phone"
    NAME = "name"
    LEGAL_REPRESENTATIVE = "legal_representative"
    EMAIL = "email"
    WECHAT_OPENID = "wechat_openid"


class KeyringError(ValueError):
    """The keyring file or its contents are unusable."""


class UndecryptableValue(ValueError):
    """A stored value cannot be decrypted: altered, copied from elsewhere, or its key is gone.

    The message never contains the value itself.
    """


# ---------------------------------------------------------------------------- keyring


@dataclass(frozen=True)
class Keyring:
    encryption_keys: Mapping[str, bytes]  # key id -> 32-byte AES key
    current: str  # the key id new values are encrypted with
    blind_index_key: bytes
    pseudonym_key: bytes
    created: Mapping[str, str] = field(default_factory=dict)  # key id -> ISO time, for operators

    def __post_init__(self) -> None:
        if not self.encryption_keys:
            raise KeyringError("the keyring holds no encryption key")
        for key_id, key in self.encryption_keys.items():
            if not _KEY_ID.match(key_id):
                raise KeyringError(f"key id {key_id!r} must be 1-40 letters, digits, '_' or '-'")
            if len(key) != KEY_BYTES:
                raise KeyringError(f"key {key_id} must be {KEY_BYTES} bytes, not {len(key)}")
        if self.current not in self.encryption_keys:
            raise KeyringError(f"the current key {self.current!r} is not in the keyring")
        for name in ("blind_index_key", "pseudonym_key"):
            if len(getattr(self, name)) != KEY_BYTES:
                raise KeyringError(f"{name} must be {KEY_BYTES} bytes")
        if self.blind_index_key == self.pseudonym_key:
            raise KeyringError("the blind-index key and the pseudonym key must differ")

    @classmethod
    def generate(cls, key_id: str = "k1") -> "Keyring":
        return cls({key_id: AESGCM.generate_key(bit_length=256)}, key_id,
                   blind_index_key=os.urandom(KEY_BYTES), pseudonym_key=os.urandom(KEY_BYTES),
                   created={key_id: _now()})

    def rotated(self, new_key_id: str) -> "Keyring":
        """A ring with a new current key; every older key stays for decrypting old values."""
        if new_key_id in self.encryption_keys:
            raise KeyringError(f"key id {new_key_id!r} is already in the keyring")
        return Keyring({**self.encryption_keys, new_key_id: AESGCM.generate_key(bit_length=256)}, new_key_id,
                       self.blind_index_key, self.pseudonym_key, {**self.created, new_key_id: _now()})

    def to_json(self) -> str:
        return json.dumps({
            "current": self.current,
            "encryption_keys": [
                {"id": key_id, "key": _b64(key), "created": self.created.get(key_id)}
                for key_id, key in self.encryption_keys.items()
            ],
            "blind_index_key": _b64(self.blind_index_key),
            "pseudonym_key": _b64(self.pseudonym_key),
        }, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Keyring":
        try:
            doc = json.loads(text)
            keys = {item["id"]: _unb64(item["key"]) for item in doc["encryption_keys"]}
            created = {item["id"]: item["created"] for item in doc["encryption_keys"] if item.get("created")}
            return cls(keys, doc["current"], _unb64(doc["blind_index_key"]), _unb64(doc["pseudonym_key"]), created)
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            raise KeyringError(f"the keyring is not valid: {type(e).__name__}: {e}") from None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


class PersonalDataSettings(BaseSettings):
    """Where the keyring is: CIVICGRID_PERSONAL_DATA_KEYRING (a file path), or the local stack's."""

    model_config = SettingsConfigDict(env_prefix="CIVICGRID_", extra="ignore")

    personal_data_keyring: Path | None = None
    # PlatformSettings.environment: only the local stack ever makes a keyring up.
    environment: str = LOCAL_ENVIRONMENT


def local_keyring_path() -> Path:
    return local_state_dir() / "keys" / LOCAL_KEYRING_FILE


def ensure_local_keyring(path: Path) -> Path:
    """Make a keyring at path if it is missing (0600, written atomically, never replacing a file
    that exists); returns the path. The local stack's default ring and intake's key command
    (entrypoints/keys.py) are both made here."""
    if not path.exists():
        write_once(path, Keyring.generate().to_json())
    return path


def load_keyring(settings: PersonalDataSettings) -> Keyring:
    """The configured keyring; only the local default is ever generated."""
    path = mounted_or_local(settings.personal_data_keyring, environment=settings.environment,
                            setting=KEYRING_ENV_VAR, what="the personal-data keyring (JSON)",
                            command="civicgrid_intake.entrypoints.keys",
                            make_local=lambda: ensure_local_keyring(local_keyring_path()), error=KeyringError)
    return Keyring.from_json(path.read_text("utf-8"))


def save_keyring(keyring: Keyring, path: Path) -> None:
    """Write a (e.g. rotated) keyring atomically, readable by its owner only."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(keyring.to_json())
    tmp.replace(path)


# ---------------------------------------------------------------------------- the cipher


class PersonalDataCipher:
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._aead = {key_id: AESGCM(key) for key_id, key in keyring.encryption_keys.items()}

    def encrypt(self, field: PersonalField, applicant_id: str, plaintext: str) -> str:
        key_id = self._keyring.current
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[key_id].encrypt(nonce, plaintext.encode("utf-8"), _aad(field, applicant_id, key_id))
        return f"{TOKEN_PREFIX}.{key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, field: PersonalField, applicant_id: str, token: str) -> str:
        key_id, blob = _split(token)
        aead = self._aead.get(key_id)
        if aead is None:
            raise UndecryptableValue(f"{field.value} of {applicant_id}: key {key_id!r} is not in the keyring")
        try:
            plaintext = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(field, applicant_id, key_id))
        except InvalidTag:
            raise UndecryptableValue(
                f"{field.value} of {applicant_id}: authentication failed (altered, or stored for another "
                "applicant or field)") from None
        return plaintext.decode("utf-8")

    def needs_reencryption(self, token: str) -> bool:
        return _split(token)[0] != self._keyring.current

    def reencrypt(self, field: PersonalField, applicant_id: str, token: str) -> str:
        """The same value under the current key (for a rotation job)."""
        return self.encrypt(field, applicant_id, self.decrypt(field, applicant_id, token))

    def blind_index(self, identity_number: str, identity_kind: IdentityKind) -> str:
        """A stable, keyed digest of the number for finding its row (hex, 64 characters)."""
        message = b"\x00".join([_BLIND_INDEX_CONTEXT, identity_kind.value.encode(), identity_number.upper().encode()])
        return hmac.new(self._keyring.blind_index_key, message, hashlib.sha256).hexdigest()


def _aad(field: PersonalField, applicant_id: str, key_id: str) -> bytes:
    # NUL-separated: none of the parts can contain it, so no two different triples collide.
    return b"\x00".join([_AAD_CONTEXT, PersonalField(field).value.encode(), applicant_id.encode(), key_id.encode()])


def _split(token: Any) -> tuple[str, bytes]:
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not _KEY_ID.match(parts[1]):
        raise UndecryptableValue(f"not a stored personal-data value (expected {TOKEN_PREFIX}.<key id>.<data>)")
    try:
        blob = base64.urlsafe_b64decode(parts[2].encode("ascii"))
    except (binascii.Error, ValueError):
        raise UndecryptableValue("the stored value's data is not base64url") from None
    if len(blob) < NONCE_BYTES + 16:
        raise UndecryptableValue("the stored value is too short to hold a nonce and a tag")
    return parts[1], blob
