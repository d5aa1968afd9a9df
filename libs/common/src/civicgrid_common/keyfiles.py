"""Key files a service owns: made once by the service's own code, never replaced.

A service whose stored data is encrypted under keys of its own (approval's seal master key,
intake's personal-data keyring) has a key command, `python -m civicgrid_<service>.entrypoints.keys`,
made with `key_command` below around the service's own writer of the format. Deployments run
it before the service starts, from the service's own image (docker-compose.yml: a one-shot
`<service>-keys` job; deploy/k8s: the `<service>-keys` Job), so a key file is written by the
code that reads it and nowhere else.

    init [--file PATH] [--owner UID]

- creates the file if it is missing; an existing file is left as it is, whatever it holds:
  new keys would leave everything stored under the old ones unreadable;
- `--file` defaults to the path the service's settings name, else the local stack's;
- `--owner UID`, when running as root: hands the file to that uid and gid, readable by them
  only (0400). Compose's job runs as root to write the shared volume; the services run as 10001;
- prints the path, never the key.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

OWNER_READ_ONLY = 0o400
LOCAL_ENVIRONMENT = "local"  # CIVICGRID_ENVIRONMENT of the local stack: the one place a key is made


class KeyFileError(RuntimeError):
    """A key file could not be made or handed over."""


def mounted_or_local(configured: Path | None, *, environment: str, setting: str, what: str, command: str,
                     make_local: Callable[[], Path], error: type[Exception]) -> Path:
    """The key file a service reads: the one its settings name, which must exist (a mounted
    Secret); without a setting, on the local stack alone, the local one, made if missing.
    Anywhere else a service never makes up a key: data stored under it would be lost with the
    replica that made it."""
    if configured is None and environment != LOCAL_ENVIRONMENT:
        raise error(f"{setting} is not set: outside the local stack (CIVICGRID_ENVIRONMENT={environment}) "
                    f"{what} is a file mounted from a Secret, made once by the service's key command "
                    f"(python -m {command} init: Kubernetes' Job and docker compose's keys job run it); "
                    "the service does not make one up")
    if configured is None:
        return make_local()
    if not configured.is_file():
        raise error(f"{setting} names {configured}, which does not exist: mount its Secret")
    return configured


AES_KEY_BYTES = 32  # AES-256


def ensure_aes_key_file(path: Path) -> Path:
    """Make an AES-256 key file if it is missing: 32 random bytes, base64url, on one line, mode
    0600, created exclusively (an existing file is never replaced). Returns the path."""
    if not path.exists():
        write_once(path, base64.urlsafe_b64encode(secrets.token_bytes(AES_KEY_BYTES)).decode())
    return path


def read_aes_key_file(path: Path, *, what: str, error: type[Exception]) -> bytes:
    """The 32 bytes of a key file `ensure_aes_key_file` wrote; `error` if it holds anything else."""
    try:
        key = base64.urlsafe_b64decode(path.read_text().strip() + "==")
    except (binascii.Error, ValueError) as exc:
        raise error(f"{what} at {path} is not base64url: {exc}") from None
    if len(key) != AES_KEY_BYTES:
        raise error(f"{what} must be {AES_KEY_BYTES} bytes")
    return key


def load_aes_key(configured: Path | None, *, environment: str, setting: str, what: str, command: str,
                 local: Callable[[], Path], error: type[Exception]) -> bytes:
    """The 32 bytes of a service's AES-256 key file: the one its settings name (mounted_or_local),
    else on the local stack `local()`, made if missing."""
    path = mounted_or_local(configured, environment=environment, setting=setting,
                            what=f"{what} (32 random bytes, base64url)", command=command,
                            make_local=lambda: ensure_aes_key_file(local()), error=error)
    return read_aes_key_file(path, what=what, error=error)


def write_once(path: Path, content: str) -> bool:
    """Create `path` holding `content`, mode 0600, unless it exists. True if it was made now.

    The content goes to a private temporary file beside it, which is then hard-linked into
    place: a reader never sees half a key, and of two writers racing, the second finds the
    first's file instead of replacing it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # O_EXCL, 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def hand_over(path: Path, owner: int) -> None:
    """Give `path` to uid and gid `owner`, readable by them only.

    Only root can change a file's owner; anyone else succeeds only if the file is already
    `owner`'s (a file the service cannot read is an error now, not at the service's start).
    """
    if os.geteuid() == 0:
        os.chown(path, owner, owner)
        path.chmod(OWNER_READ_ONLY)
        return
    actual = path.stat().st_uid
    if actual != owner:
        raise KeyFileError(f"{path} belongs to uid {actual}: only root can hand it to uid {owner}")


def key_command(what: str, *, command: str, setting: str, default_file: Callable[[], Path],
                create: Callable[[Path], Path]) -> Callable[[Sequence[str] | None], int]:
    """The `main` of a service's key command.

    what: the key file in words ("approval's seal master key"), for help and output.
    command: how it is run (`python -m civicgrid_<service>.entrypoints.keys`).
    setting: the environment variable the service reads the file's path from.
    default_file: that setting's path if set, else the local stack's default.
    create: the service's writer: makes the file at the path if it is missing, returns the path.
    """

    def main(argv: Sequence[str] | None = None) -> int:
        parser = argparse.ArgumentParser(
            prog=command, description=f"Make {what} if it is missing; an existing file is never replaced.")
        commands = parser.add_subparsers(dest="command", required=True, title="commands", metavar="init")
        init = commands.add_parser("init", help=f"make {what} if it is missing and print its path")
        init.add_argument("--file", type=Path, metavar="PATH",
                          help=f"where it is (default: {setting}, else the local stack's file)")
        init.add_argument("--owner", type=int, metavar="UID",
                          help="give the file to this uid and gid, mode 0400 (needs root, unless it is theirs already)")
        args = parser.parse_args(argv)
        path: Path = args.file or default_file()
        existed = path.exists()
        try:
            create(path)
            if args.owner is not None:
                hand_over(path, args.owner)
        except (OSError, KeyFileError) as exc:
            print(f"{command}: {what} at {path}: {exc}", file=sys.stderr)
            return 1
        print(f"{what}: {path} ({'already there, left as it is' if existed else 'made now'})")
        return 0

    return main
