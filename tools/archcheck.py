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
  are pure like events;
- deploy/ and tools/ (scripts, not services) import no service (`civicgrid_<name>` for every
  folder in services/), and put no services/ folder on sys.path: a deployment runs a
  service's code from that service's own image, never from the platform's.

A service's package is `services/<name>/civicgrid_<name>/` (or under `services/<name>/src/`).

import-linter sees deploy/ and tools/ as namespace packages (the project root goes on the
path), so the import rule is an import-linter contract like the others. A sys.path change is
not an import, so that half is an `ast` scan here, reported beside import-linter's contracts.

    .venv/bin/python tools/archcheck.py [PROJECT_ROOT]    # exit status 1 if a contract is broken
"""
from __future__ import annotations

import ast
import configparser
import io
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
BASE_CONFIG = REPO / ".importlinter"
LAYERS = ("entrypoints", "adapters", "application", "domain")  # highest first
IO_LIBRARIES = ("asyncpg", "psycopg", "aiokafka", "faust", "fastapi", "starlette", "httpx", "uvicorn",
                "opentelemetry")
# Folders of scripts that are platform code and must not reach into a service.
SCRIPT_FOLDERS = ("deploy", "tools")
SCRIPTS_IMPORT_NO_SERVICE = "deploy and tools import no service"
SCRIPTS_PATH_NO_SERVICE = "deploy and tools put no service folder on sys.path"


@dataclass(frozen=True)
class Service:
    name: str
    package_dir: Path  # the folder that holds the package `name` (import-linter finds it installed)

    def has(self, layer: str) -> bool:
        pkg = self.package_dir / self.name
        return (pkg / layer).is_dir() or (pkg / f"{layer}.py").is_file()


@dataclass(frozen=True)
class Result:
    ok: bool
    report: str
    config: str


def service_packages(project_root: Path) -> list[str]:
    """civicgrid_<folder> for every folder in services/, whether its package exists yet or not."""
    return [f"civicgrid_{folder.name}" for folder in sorted((project_root / "services").glob("*/"))
            if not folder.name.startswith((".", "_"))]


def script_folders(project_root: Path) -> list[str]:
    """The SCRIPT_FOLDERS of the project that hold Python files."""
    return [name for name in SCRIPT_FOLDERS if any((project_root / name).rglob("*.py"))]


def find_services(project_root: Path) -> list[Service]:
    services = []
    for folder in sorted((project_root / "services").glob("*/")):
        # Every service's package is civicgrid_<folder> (services/statistics holds
        # civicgrid_statistics: a plain `statistics` would shadow the standard library's).
        candidates = [(parent, f"civicgrid_{folder.name}") for parent in (folder, folder / "src")]
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
    scripts = script_folders(project_root)
    root = cfg["importlinter"]
    root["root_packages"] = _lines(*dict.fromkeys(root["root_packages"].split() + names + scripts))

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
    every_service = list(dict.fromkeys(names + service_packages(project_root)))
    if scripts and every_service:
        cfg["importlinter:contract:scripts-import-no-service"] = {
            "name": SCRIPTS_IMPORT_NO_SERVICE,
            "type": "forbidden",
            "source_modules": _lines(*scripts),
            "forbidden_modules": _lines(*every_service),
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


# ------------------------------------------------------------------ services/ on sys.path

# A path that has a `services` folder in it: "services", "services/intake", "/app/services".
_SERVICES_FOLDER = re.compile(r"(?:^|[/\\])services(?:[/\\]|$)")


@dataclass(frozen=True)
class PathFinding:
    file: str  # relative to the project root
    line: int
    code: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.code}"


class _SysPathScan(ast.NodeVisitor):
    """Where a module adds to sys.path (insert, append, extend, assignment, site.addsitedir) a
    value that names a services/ folder, following the module's own names to what they were
    assigned (`SERVICES = ROOT / "services"`, then `sys.path.append(str(SERVICES / "x"))`)."""

    def __init__(self, tree: ast.Module) -> None:
        self.assigned: dict[str, list[ast.expr]] = {}
        self.sys_names, self.path_names, self.addsitedir_names = {"sys"}, set(), set()
        self.hits: list[ast.AST] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                self.sys_names |= {a.asname for a in node.names if a.name == "sys" and a.asname}
            elif isinstance(node, ast.ImportFrom) and node.module in ("sys", "site"):
                wanted = "path" if node.module == "sys" else "addsitedir"
                names = self.path_names if node.module == "sys" else self.addsitedir_names
                names |= {a.asname or a.name for a in node.names if a.name == wanted}
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and node.value is not None:
                        self.assigned.setdefault(target.id, []).append(node.value)

    def _is_sys_path(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Subscript):
            node = node.value
        return (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                and node.value.id in self.sys_names) or (isinstance(node, ast.Name) and node.id in self.path_names)

    def _names_services(self, node: ast.AST, seen: set[str]) -> bool:
        for part in ast.walk(node):
            if isinstance(part, ast.Constant) and isinstance(part.value, str) and _SERVICES_FOLDER.search(part.value):
                return True
            if isinstance(part, ast.Name) and part.id in self.assigned and part.id not in seen:
                seen.add(part.id)
                if any(self._names_services(value, seen) for value in self.assigned[part.id]):
                    return True
        return False

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        adds = (isinstance(func, ast.Attribute) and func.attr in ("insert", "append", "extend")
                and self._is_sys_path(func.value))
        adds = adds or (isinstance(func, ast.Attribute) and func.attr == "addsitedir"
                        and isinstance(func.value, ast.Name) and func.value.id == "site")
        adds = adds or (isinstance(func, ast.Name) and func.id in self.addsitedir_names)
        if adds and any(self._names_services(arg, set()) for arg in node.args):
            self.hits.append(node)
        self.generic_visit(node)

    def _visit_assignment(self, node: ast.Assign | ast.AugAssign) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(self._is_sys_path(t) for t in targets) and self._names_services(node.value, set()):
            self.hits.append(node)
        self.generic_visit(node)

    visit_Assign = visit_AugAssign = _visit_assignment


def services_on_sys_path(project_root: Path) -> list[PathFinding]:
    """Every place a script under deploy/ or tools/ puts a services/ folder on sys.path."""
    findings = []
    for folder in SCRIPT_FOLDERS:
        for path in sorted((project_root / folder).rglob("*.py")):
            source = path.read_text("utf-8")
            tree = ast.parse(source, str(path))
            scan = _SysPathScan(tree)
            scan.visit(tree)
            rel = path.relative_to(project_root).as_posix()
            findings += [PathFinding(rel, hit.lineno, ast.get_source_segment(source, hit) or "") for hit in scan.hits]
    return findings


def _path_report(findings: list[PathFinding]) -> str:
    if not findings:
        return f"\n{SCRIPTS_PATH_NO_SERVICE} KEPT\n"
    lines = [f"\n{SCRIPTS_PATH_NO_SERVICE} BROKEN", ""] + [f"-   {f}" for f in findings]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the check


def check(project_root: Path = REPO, base_config: Path = BASE_CONFIG, *,
          source_paths: Sequence[Path] = ()) -> Result:
    """Run import-linter over the project in a fresh interpreter (no stale imported modules),
    and the sys.path scan of deploy/ and tools/.

    The packages are imported as installed (`make setup` installs libs/common and every
    service into .venv): the check puts no service folder on any path itself. A project that
    is not installed (the tests' generated ones) names where its packages are in
    `source_paths`; they come first, so they win over installed packages of the same name."""
    project_root = Path(project_root).resolve()
    config = build_config(project_root, base_config)
    paths = [str(p) for p in source_paths]
    if script_folders(project_root):
        paths.append(str(project_root))  # deploy/ and tools/ as namespace packages
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]))
    lint_imports = Path(sys.executable).parent / "lint-imports"
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False, encoding="utf-8") as f:
        f.write(config)
    try:
        proc = subprocess.run([str(lint_imports), "--config", f.name, "--no-cache", "--no-logo"],
                              cwd=project_root, env=env, capture_output=True, text=True, timeout=300)
    finally:
        os.unlink(f.name)
    on_path = services_on_sys_path(project_root)
    return Result(ok=proc.returncode == 0 and not on_path, report=proc.stdout + proc.stderr + _path_report(on_path),
                  config=config)


def main(argv: list[str]) -> int:
    result = check(Path(argv[0]) if argv else REPO)
    print(result.report)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
