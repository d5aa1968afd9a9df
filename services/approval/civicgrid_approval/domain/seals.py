"""Seals (电子签章): Ed25519 signatures over the canonical decision, chained.

A seal signs the RFC 8785 (JCS) canonical JSON of

    {"approval_id", "step", "branch", "action", "outcome", "time", "signer", "key_id", "previous"}

where `previous` is the signature of the approval's previous seal (null for the first), so
the seals of one approval form a chain: a seal copied onto another approval, another step or
another place in the chain no longer matches what it would have to sign. Pure: the private
key is handed in by the caller (the key store lives in adapters/).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DECISION_FIELDS = ("approval_id", "step", "branch", "action", "outcome", "time", "signer", "key_id", "previous")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_decision(decision: Mapping[str, Any]) -> bytes:
    missing = [f for f in DECISION_FIELDS if f not in decision]
    if missing or len(decision) != len(DECISION_FIELDS):
        raise ValueError(f"a decision has exactly the fields {DECISION_FIELDS}; missing {missing}")
    return rfc8785.dumps(dict(decision))


class Signer(Protocol):
    """Who seals: the token subject (or department) and the key it seals with."""

    @property
    def signer(self) -> str: ...

    @property
    def key_id(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class Ed25519Signer:
    signer: str
    key_id: str
    private_key: Ed25519PrivateKey

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def seal(signer: Signer, *, approval_id: str, step: str, branch: str | None, action: str, outcome: str,
         time: str, previous: str | None) -> dict[str, Any]:
    """The seal as stored on the event: the decision it signs and the signature."""
    decision = {
        "approval_id": approval_id, "step": step, "branch": branch, "action": action, "outcome": outcome,
        "time": time, "signer": signer.signer, "key_id": signer.key_id, "previous": previous,
    }
    signature = b64url(signer.sign(canonical_decision(decision)))
    return {"key_id": signer.key_id, "signature": signature, "decision": decision}


def signature_valid(public_key: Ed25519PublicKey, decision: Mapping[str, Any], signature: str) -> bool:
    try:
        public_key.verify(b64url_decode(signature), canonical_decision(decision))
        return True
    except (InvalidSignature, ValueError):
        return False


def public_jwk(key_id: str, public_key: Ed25519PublicKey, *, owner: str) -> dict[str, str]:
    """RFC 8037: an OKP key with crv Ed25519, x = the raw public key in base64url."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": key_id, "use": "sig", "alg": "EdDSA",
            "owner": owner}


def public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("not an Ed25519 OKP key")
    return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
