"""Import boundaries (import-linter), on the real tree and on throwaway projects that break them.

The contracts for services are generated from the services/ that exist (tools/archcheck.py);
the throwaway projects prove that each rule can fail and names the offending import.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("archcheck", REPO / "tools" / "archcheck.py")
assert _spec and _spec.loader
archcheck = importlib.util.module_from_spec(_spec)
sys.modules["archcheck"] = archcheck
_spec.loader.exec_module(archcheck)


def test_the_repository_keeps_its_import_boundaries() -> None:
    result = archcheck.check(REPO)
    assert result.ok, result.report
    assert " BROKEN" not in result.report and " KEPT" in result.report
    for service in archcheck.find_services(REPO):
        assert f"[importlinter:contract:{service.name}-layers]" in result.config


# A clean throwaway project: two services with the four layers, and a civicgrid_common of its
# own (so that a violation inside "civicgrid_common" can be shown without touching the real one).
CLEAN: dict[str, str] = {
    "libs/common/src/civicgrid_common/__init__.py": "",
    "libs/common/src/civicgrid_common/events.py": "import uuid\n",
    "libs/common/src/civicgrid_common/db.py": "import asyncpg\n",
    "libs/common/src/civicgrid_common/calendar/__init__.py": "",
    "libs/common/src/civicgrid_common/calendar/working_days.py": "import datetime\n",
    **{f"services/{svc}/{svc}/{mod}": "" for svc in ("alpha", "beta") for mod in (
        "__init__.py", "domain/__init__.py", "application/__init__.py", "adapters/__init__.py",
        "entrypoints/__init__.py")},
    "services/alpha/alpha/domain/model.py": "from civicgrid_common import events\n",
    "services/alpha/alpha/application/handlers.py": "from alpha.domain import model\n",
    "services/alpha/alpha/adapters/store.py": "import asyncpg\nfrom alpha.application import handlers\n",
    "services/alpha/alpha/entrypoints/app.py": "import fastapi\nfrom alpha.adapters import store\n",
    "services/beta/beta/domain/model.py": "import decimal\n",
}

# scenario -> (files changed in the clean project, contract that must break, import it must name)
VIOLATIONS: dict[str, tuple[dict[str, str], str, str]] = {
    "service imports another service": (
        {"services/beta/beta/application/handlers.py": "from alpha.domain import model\n"},
        "no service imports another service", "beta.application.handlers -> alpha.domain.model"),
    "domain imports a framework": (
        {"services/alpha/alpha/domain/model.py": "import fastapi\n"},
        "alpha.domain imports no adapter, entry point, framework or I/O library", "alpha.domain.model -> fastapi"),
    "domain reaches I/O through civicgrid_common": (
        {"services/alpha/alpha/domain/model.py": "from civicgrid_common import db\n"},
        "alpha.domain imports no adapter, entry point, framework or I/O library", "civicgrid_common.db -> asyncpg"),
    "domain imports an adapter": (
        {"services/alpha/alpha/domain/model.py": "from alpha.adapters import store\n"},
        "alpha: entrypoints > adapters > application > domain", "alpha.domain.model -> alpha.adapters.store"),
    "application imports an entry point": (
        {"services/alpha/alpha/application/handlers.py": "from alpha.entrypoints import app\n"},
        "alpha: entrypoints > adapters > application > domain", "alpha.application.handlers -> alpha.entrypoints.app"),
    "civicgrid_common imports a service": (
        {"libs/common/src/civicgrid_common/db.py": "import asyncpg\nimport beta.domain.model\n"},
        "civicgrid_common imports no service", "civicgrid_common.db -> beta.domain.model"),
    "a pure common module does I/O": (
        {"libs/common/src/civicgrid_common/events.py": "import aiokafka\n"},
        "civicgrid_common's pure modules import no framework or I/O library", "civicgrid_common.events -> aiokafka"),
}


def make_project(root: Path, changes: dict[str, str]) -> Path:
    for rel, text in {**CLEAN, **changes}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return root


def test_a_clean_throwaway_project_passes(tmp_path: Path) -> None:
    result = archcheck.check(make_project(tmp_path, {}))
    assert result.ok, result.report
    assert {s.name for s in archcheck.find_services(tmp_path)} == {"alpha", "beta"}


@pytest.mark.parametrize("scenario", sorted(VIOLATIONS))
def test_each_boundary_violation_is_reported(tmp_path: Path, scenario: str) -> None:
    changes, contract, offending_import = VIOLATIONS[scenario]
    result = archcheck.check(make_project(tmp_path, changes))
    assert not result.ok
    assert f"{contract} BROKEN" in result.report, result.report
    assert offending_import in result.report, result.report


def test_a_service_whose_package_is_prefixed_civicgrid_is_checked_under_that_name(tmp_path: Path) -> None:
    """services/statistics holds civicgrid_statistics (a package `statistics` would shadow the
    standard library's): its layers and pure domain are still enforced."""
    gamma = {f"services/statistics/civicgrid_statistics/{mod}": "" for mod in (
        "__init__.py", "domain/__init__.py", "application/__init__.py", "adapters/__init__.py",
        "entrypoints/__init__.py")}
    clean = archcheck.check(make_project(tmp_path / "clean", gamma))
    assert clean.ok, clean.report
    assert "civicgrid_statistics" in {s.name for s in archcheck.find_services(tmp_path / "clean")}
    broken = archcheck.check(make_project(tmp_path / "broken", {
        **gamma, "services/statistics/civicgrid_statistics/domain/model.py": "import faust\n"}))
    assert not broken.ok
    assert "civicgrid_statistics.domain.model -> faust" in broken.report
