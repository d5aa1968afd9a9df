"""One-shot platform jobs of docker-compose.yml, run in the tools image (deploy/docker/tools.Dockerfile).

They reuse the local stack's own code so Docker and `make up` cannot drift apart:
- `topics`: create the topics contracts/asyncapi.yaml declares, on CIVICGRID_KAFKA_BOOTSTRAP
  (localstack.declared_topics + localstack.ensure_topics; existing topics are left alone).
- `keys`: create the local signing key and JWKS in CIVICGRID_KEYS_DIR if they are missing
  (civicgrid_common.identity.localkeys: the same files `make up` and `civicgrid token` use in
  .local/keys).

Platform work only: a service's own key material (approval's seal master key, intake's
personal-data keyring) is made by that service's key command from its own image
(docker-compose.yml's `<service>-keys` jobs), and tools/archcheck.py fails if anything under
deploy/ imports a service.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _load_localstack() -> ModuleType:
    """deploy/local/localstack.py (the topic parser `make up` uses), loaded from its file,
    without putting any folder on sys.path."""
    if "localstack" in sys.modules:
        return sys.modules["localstack"]
    spec = importlib.util.spec_from_file_location("localstack", ROOT / "deploy" / "local" / "localstack.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and the like look their module up by name
    spec.loader.exec_module(module)
    return module


localstack = _load_localstack()

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


def create_keys() -> int:
    from civicgrid_common.identity.localkeys import ensure_local_keys

    keys_dir = Path(os.environ.get("CIVICGRID_KEYS_DIR", "/keys"))
    print(f"JWKS: {ensure_local_keys(keys_dir)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=["topics", "keys"])
    task = parser.parse_args(argv).task
    return create_topics() if task == "topics" else create_keys()


if __name__ == "__main__":
    sys.exit(main())
