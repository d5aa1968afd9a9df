"""Import boundaries of civicgrid, checked with import-linter.

The fixed contracts are in `.importlinter` at the repo root (civicgrid_common's pure modules
import no I/O). Services come and go, so their contracts are generated from the
`services/<name>/` folders that exist when the check runs:

- services are independent: no service imports another;
- each service is layered `entrypoints > adapters > application > domain`: a layer imports
  only layers below it (a missing layer is allowed);
- a service's `domain` imports no adapter, no entry point, no framework or I/O library,
  not even indirectly (through civicgrid_common, say);
- civicgrid_common imports no service;
- civicgrid_common.aggregate, eventstore.hashing and eventstore.upcasting, when they exist,
  are pure like events.

A service's package is `services/<name>/<name>/` (or `services/<name>/src/<name>/`).

    .venv/bin/python tools/archcheck.py [PROJECT_ROOT]    # exit status 1 if a contract is broken
"""
from __future__ import annotations

import configparser
import io
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE_CONFIG = REPO / ".importlinter"
LAYERS = ("entrypoints", "adapters", "application", "domain")  # highest first
IO_LIBRARIES = ("asyncpg", "psycopg", "aiokafka", "faust", "fastapi", "starlette", "httpx", "uvicorn",
                "opentelemetry")


@dataclass(frozen=True)
class Service:
    name: str
    package_dir: Path  # the folder that holds the package `name`, goes on sys.path

    def has(self, layer: str) -> bool:
        pkg = self.package_dir / self.name
        return (pkg / layer).is_dir() or (pkg / f"{layer}.py").is_file()


@dataclass(frozen=True)
class Result:
    ok: bool
    report: str
    config: str


def find_services(project_root: Path) -> list[Service]:
    services = []
    for folder in sorted((project_root / "services").glob("*/")):
        # The package is named like its folder, or civicgrid_<folder> where the plain name is a
        # standard-library module (services/statistics holds civicgrid_statistics).
        candidates = [(parent, package) for parent in (folder, folder / "src")
                      for package in (folder.name, f"civicgrid_{folder.name}")]
        for parent, package in candidates:
            if (parent / package / "__init__.py").is_file():
                services.append(Service(package, parent))
                break
    return services


# civicgrid_common modules that must stay free of I/O, checked when present.
PURE_WHEN_PRESENT = (
    "civicgrid_common.aggregate",
    "civicgrid_common.eventstore.hashing",
    "civicgrid_common.eventstore.upcasting",
)


def _module_exists(common_src: Path, module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (common_src / rel).with_suffix(".py").is_file() or (common_src / rel / "__init__.py").is_file()


def _lines(*items: str) -> str:
    return "\n" + "\n".join(items)


def build_config(project_root: Path, base_config: Path = BASE_CONFIG) -> str:
    """The base config plus the contracts of every service under project_root/services/."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(base_config, encoding="utf-8")
    services = find_services(project_root)
    names = [s.name for s in services]
    root = cfg["importlinter"]
    root["root_packages"] = _lines(*dict.fromkeys(root["root_packages"].split() + names))

    common_src = project_root / "libs" / "common" / "src" / "civicgrid_common"
    # Pure platform modules join the contract once they exist (throwaway test projects lack them).
    present = [m for m in PURE_WHEN_PRESENT if _module_exists(common_src, m)]
    if present:
        pure = cfg["importlinter:contract:common-pure-modules"]
        pure["source_modules"] = _lines(*pure["source_modules"].split(), *present)

    if names:
        cfg["importlinter:contract:common-imports-no-service"] = {
            "name": "civicgrid_common imports no service",
            "type": "forbidden",
            "source_modules": _lines("civicgrid_common"),
            "forbidden_modules": _lines(*names),
        }
    if len(names) > 1:
        cfg["importlinter:contract:services-independent"] = {
            "name": "no service imports another service",
            "type": "independence",
            "modules": _lines(*names),
        }
    for s in services:
        cfg[f"importlinter:contract:{s.name}-layers"] = {
            "name": f"{s.name}: entrypoints > adapters > application > domain",
            "type": "layers",
            "containers": _lines(s.name),
            "layers": _lines(*(f"({layer})" for layer in LAYERS)),
        }
        if s.has("domain"):
            forbidden = [f"{s.name}.{layer}" for layer in ("adapters", "entrypoints") if s.has(layer)]
            cfg[f"importlinter:contract:{s.name}-pure-domain"] = {
                "name": f"{s.name}.domain imports no adapter, entry point, framework or I/O library",
                "type": "forbidden",
                "source_modules": _lines(f"{s.name}.domain"),
                "forbidden_modules": _lines(*forbidden, *IO_LIBRARIES),
            }
    out = io.StringIO()
    cfg.write(out)
    return out.getvalue()


def check(project_root: Path = REPO, base_config: Path = BASE_CONFIG) -> Result:
    """Run import-linter over the project in a fresh interpreter (no stale imported modules)."""
    project_root = Path(project_root).resolve()
    config = build_config(project_root, base_config)
    paths = [str(s.package_dir) for s in find_services(project_root)]
    common_src = project_root / "libs" / "common" / "src"
    if common_src.is_dir():
        paths.append(str(common_src))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]))
    lint_imports = Path(sys.executable).parent / "lint-imports"
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False, encoding="utf-8") as f:
        f.write(config)
    try:
        proc = subprocess.run([str(lint_imports), "--config", f.name, "--no-cache", "--no-logo"],
                              cwd=project_root, env=env, capture_output=True, text=True, timeout=300)
    finally:
        os.unlink(f.name)
    return Result(ok=proc.returncode == 0, report=proc.stdout + proc.stderr, config=config)


def main(argv: list[str]) -> int:
    result = check(Path(argv[0]) if argv else REPO)
    print(result.report)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
