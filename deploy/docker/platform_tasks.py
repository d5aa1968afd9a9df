"""One-shot jobs of docker-compose.yml, run in the tools image (deploy/docker/tools.Dockerfile).

They reuse the local stack's own code so Docker and `make up` cannot drift apart:
- `topics`: create the topics contracts/asyncapi.yaml declares, on CIVICGRID_KAFKA_BOOTSTRAP
  (localstack.declared_topics + localstack.ensure_topics; existing topics are left alone).
- `keys`: create the local signing key and JWKS in CIVICGRID_KEYS_DIR if they are missing
  (the same files `make up` and `civicgrid token` use in .local/keys), and, in
  CIVICGRID_SERVICE_KEYS_DIR (compose's service-keys volume, beside the database's volume),
  approval's seal master key and intake's personal-data keyring if they are missing, readable
  by the services' uid only. Existing key files are never replaced: new keys would leave every
  stored private seal key and personal value unreadable.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "local"))
# intake's sources (not installed: its keyring code needs only libs/common), as the tools image has them.
sys.path.append(str(ROOT / "services" / "intake"))

import localstack  # noqa: E402  (needs the path above)

# The broker answers its healthcheck a little before it accepts admin requests; retry for
# up to about a minute, then fail with the last error.
ATTEMPTS = 30
PAUSE_SECONDS = 2.0


def create_topics() -> int:
    bootstrap = os.environ.get("CIVICGRID_KAFKA_BOOTSTRAP", "kafka:9092")
    topics = localstack.declared_topics()
    last_error: Exception | None = None
    for _ in range(ATTEMPTS):
        try:
            created = asyncio.run(localstack.ensure_topics(bootstrap, topics))
        except Exception as exc:  # the broker is not ready yet: any client error, retried
            last_error = exc
            time.sleep(PAUSE_SECONDS)
            continue
        names = ", ".join(t["name"] for t in topics)
        print(f"topics on {bootstrap}: {names} (created now: {', '.join(created) or 'none'})")
        return 0
    print(f"could not create topics on {bootstrap}: {last_error!r}", file=sys.stderr)
    return 1


# The service key files in CIVICGRID_SERVICE_KEYS_DIR; docker-compose.yml names them in the
# services' CIVICGRID_SEAL_MASTER_KEY_FILE and CIVICGRID_PERSONAL_DATA_KEYRING.
SEAL_MASTER_KEY_FILE = "approval-seal-master.key"
PERSONAL_DATA_KEYRING_FILE = "personal-data-keyring.json"
# The uid/gid the service images run as (services/*/Dockerfile, deploy/k8s).
SERVICE_UID = 10001


def ensure_seal_master_key(path: Path) -> Path:
    """approval's seal master key if missing: 32 random bytes, base64url, the format
    approval.adapters.keystore.load_master_key reads (approval is not in the tools image)."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    return path


def ensure_service_keys(keys_dir: Path) -> list[Path]:
    """approval's and intake's key files in keys_dir, made only if missing."""
    from intake.adapters.personal_data import ensure_local_keyring  # intake's own format and writer

    keys_dir.mkdir(parents=True, exist_ok=True)
    made = [ensure_seal_master_key(keys_dir / SEAL_MASTER_KEY_FILE),
            ensure_local_keyring(keys_dir / PERSONAL_DATA_KEYRING_FILE)]
    if os.geteuid() == 0:  # the compose job: hand the files to the services' uid, owner-read only
        for path in made:
            os.chown(path, SERVICE_UID, SERVICE_UID)
            path.chmod(0o400)
    return made


def create_keys() -> int:
    from civicgrid_common.identity.localkeys import ensure_local_keys

    keys_dir = Path(os.environ.get("CIVICGRID_KEYS_DIR", "/keys"))
    print(f"JWKS: {ensure_local_keys(keys_dir)}")
    service_keys = Path(os.environ.get("CIVICGRID_SERVICE_KEYS_DIR", "/service-keys"))
    print(f"service keys: {', '.join(str(p) for p in ensure_service_keys(service_keys))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=["topics", "keys"])
    task = parser.parse_args(argv).task
    return create_topics() if task == "topics" else create_keys()


if __name__ == "__main__":
    sys.exit(main())
