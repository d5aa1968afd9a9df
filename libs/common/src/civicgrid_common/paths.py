"""Where the project's files are, for a checkout (editable install) and for a container.

A container sets CIVICGRID_HOME (the image copies contracts/ there); a checkout is found
by walking up from this file to the folder that holds both contracts/ and libs/.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def project_root() -> Path:
    env = os.environ.get("CIVICGRID_HOME")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "contracts").is_dir() and (parent / "libs").is_dir():
            return parent
    return Path.cwd()


def contracts_dir() -> Path:
    return Path(os.environ.get("CIVICGRID_CONTRACTS_DIR", project_root() / "contracts"))


def local_state_dir() -> Path:
    """Runtime state of the local stack (data, logs, pids, keys); git-ignored."""
    return Path(os.environ.get("CIVICGRID_LOCAL_DIR", project_root() / ".local"))
