"""The local stack's signing key: an RSA key pair and the JWKS that services verify against.

Generated once per machine into .local/keys (git-ignored); never committed. In a real
deployment the JWKS comes from the identity provider (CIVICGRID_JWKS=https://.../jwks).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_ID = "civicgrid-local-1"


def private_key_path(keys_dir: Path) -> Path:
    return keys_dir / "signing-key.pem"


def jwks_path(keys_dir: Path) -> Path:
    return keys_dir / "jwks.json"


def ensure_local_keys(keys_dir: Path) -> Path:
    """Create the key pair and JWKS if missing; return the JWKS path. Idempotent."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    pem_path = private_key_path(keys_dir)
    if not pem_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = pem_path.with_suffix(".tmp")
        tmp.write_bytes(pem)
        os.chmod(tmp, 0o600)
        tmp.replace(pem_path)
    out = jwks_path(keys_dir)
    if not out.exists():
        key = serialization.load_pem_private_key(pem_path.read_bytes(), password=None)
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": KEY_ID, "use": "sig", "alg": "RS256"})
        out.write_text(json.dumps({"keys": [jwk]}, indent=2))
    return out
