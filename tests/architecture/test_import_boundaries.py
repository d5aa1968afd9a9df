"""Import boundaries (import-linter), on the real tree and on throwaway projects that break them.

The contracts for services are generated from the services/ that exist (tools/archcheck.py);
the throwaway projects prove that each rule can fail and names the offending import. deploy/
and tools/ are held to the same rule as civicgrid_common: they import no service, and put no
services/ folder on sys.path (archcheck's ast scan, reported beside import-linter's contracts).
"""
from __future__ import annotations

import importlib.util
import re
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
    # deploy/ and tools/ are in the check, against every service folder.
    assert re.search(r"deploy and tools import no service\s*KEPT", result.report), result.report
    assert re.search(r"deploy and tools put no service folder on sys.path\s*KEPT", result.report), result.report
    assert set(archcheck.service_packages(REPO)) <= set(result.config.split())


def test_the_sys_path_scan_names_only_services_folders(tmp_path: Path) -> None:
    """deploy/local on sys.path (gen_k8s.py, platform_tasks.py) and files named services.yaml
    are not services/ folders; anything under services/ is."""
    script = tmp_path / "deploy" / "x.py"
    script.parent.mkdir(parents=True)
    script.write_text("import sys\nsys.path.insert(0, 'deploy/local')\nsys.path.append('deploy/local/services.yaml')\n"
                      "sys.path += ['/app/services']\nfrom sys import path\npath.extend(['services/beta/src'])\n")
    found = archcheck.services_on_sys_path(tmp_path)
    assert [(f.file, f.line) for f in found] == [("deploy/x.py", 4), ("deploy/x.py", 6)]


# A clean throwaway project: two services with the four layers, and a civicgrid_common of its
# own (so that a violation inside "civicgrid_common" can be shown without touching the real one).
CLEAN: dict[str, str] = {
    "libs/common/src/civicgrid_common/__init__.py": "",
    "libs/common/src/civicgrid_common/events.py": "import uuid\n",
    "libs/common/src/civicgrid_common/db.py": "import asyncpg\n",
    "libs/common/src/civicgrid_common/calendar/__init__.py": "",
    "libs/common/src/civicgrid_common/calendar/working_days.py": "import datetime\n",
    "libs/common/src/civicgrid_common/calendar/contract.py": "OVERRIDE_SET = 'override_set'\n",
    **{f"services/{svc}/civicgrid_{svc}/{mod}": "" for svc in ("alpha", "beta") for mod in (
        "__init__.py", "domain/__init__.py", "application/__init__.py", "adapters/__init__.py",
        "entrypoints/__init__.py")},
    "services/alpha/civicgrid_alpha/domain/model.py": "from civicgrid_common import events\n",
    "services/alpha/civicgrid_alpha/application/handlers.py": "from civicgrid_alpha.domain import model\n",
    "services/alpha/civicgrid_alpha/adapters/store.py": "import asyncpg\nfrom civicgrid_alpha.application import handlers\n",
    "services/alpha/civicgrid_alpha/entrypoints/app.py": "import fastapi\nfrom civicgrid_alpha.adapters import store\n",
    "services/beta/civicgrid_beta/domain/model.py": "import decimal\n",
    # Scripts: platform code only (a sys.path change to deploy/local is fine, it is deploy code).
    "deploy/docker/tasks.py": ("import sys\nfrom pathlib import Path\nROOT = Path(__file__).parents[2]\n"
                               "sys.path.insert(0, str(ROOT / 'deploy' / 'local'))\n"
                               "from civicgrid_common import events\n"),
    "deploy/local/helpers.py": "import civicgrid_common.db\n",
    "tools/report.py": "from civicgrid_common.calendar import working_days\n",
    # A service folder whose package does not exist yet is still a service scripts must not import.
    "services/gamma/README.md": "soon\n",
}

# scenario -> (files changed in the clean project, contract that must break, import it must name)
VIOLATIONS: dict[str, tuple[dict[str, str], str, str]] = {
    "service imports another service": (
        {"services/beta/civicgrid_beta/application/handlers.py": "from civicgrid_alpha.domain import model\n"},
        "no service imports another service", "civicgrid_beta.application.handlers -> civicgrid_alpha.domain.model"),
    "domain imports a framework": (
        {"services/alpha/civicgrid_alpha/domain/model.py": "import fastapi\n"},
        "civicgrid_alpha.domain imports no adapter, entry point, framework or I/O library", "civicgrid_alpha.domain.model -> fastapi"),
    "domain reaches I/O through civicgrid_common": (
        {"services/alpha/civicgrid_alpha/domain/model.py": "from civicgrid_common import db\n"},
        "civicgrid_alpha.domain imports no adapter, entry point, framework or I/O library", "civicgrid_common.db -> asyncpg"),
    "domain imports an adapter": (
        {"services/alpha/civicgrid_alpha/domain/model.py": "from civicgrid_alpha.adapters import store\n"},
        "civicgrid_alpha: entrypoints > adapters > application > domain", "civicgrid_alpha.domain.model -> civicgrid_alpha.adapters.store"),
    "application imports an entry point": (
        {"services/alpha/civicgrid_alpha/application/handlers.py": "from civicgrid_alpha.entrypoints import app\n"},
        "civicgrid_alpha: entrypoints > adapters > application > domain", "civicgrid_alpha.application.handlers -> civicgrid_alpha.entrypoints.app"),
    "civicgrid_common imports a service": (
        {"libs/common/src/civicgrid_common/db.py": "import asyncpg\nimport civicgrid_beta.domain.model\n"},
        "civicgrid_common imports no service", "civicgrid_common.db -> civicgrid_beta.domain.model"),
    "a pure common module does I/O": (
        {"libs/common/src/civicgrid_common/events.py": "import aiokafka\n"},
        "civicgrid_common's pure modules import no framework or I/O library", "civicgrid_common.events -> aiokafka"),
    "deploy imports a service": (
        {"deploy/docker/tasks.py": "from civicgrid_alpha.adapters import store\n"},
        "deploy and tools import no service", "deploy.docker.tasks -> civicgrid_alpha.adapters.store"),
    "deploy imports a service inside a function": (
        {"deploy/local/helpers.py": "def keys():\n    from civicgrid_beta.domain import model\n    return model\n"},
        "deploy and tools import no service", "deploy.local.helpers -> civicgrid_beta.domain.model"),
    "tools imports a service": (
        {"tools/report.py": "import civicgrid_beta.domain.model\n"},
        "deploy and tools import no service", "tools.report -> civicgrid_beta.domain.model"),
    "tools imports a service whose package is not there yet": (
        {"tools/report.py": "import civicgrid_gamma\n"},
        "deploy and tools import no service", "tools.report -> civicgrid_gamma"),
    "deploy puts a service folder on sys.path": (
        {"deploy/docker/tasks.py": "import sys\nsys.path.append('services/alpha')\n"},
        "deploy and tools put no service folder on sys.path", "deploy/docker/tasks.py:2: sys.path.append('services/alpha')"),
    "deploy puts a service folder on sys.path through a name": (
        {"deploy/docker/tasks.py": ("import sys as system\nfrom pathlib import Path\nROOT = Path(__file__).parents[2]\n"
                                    "SERVICES = ROOT / 'services'\nsystem.path.insert(0, str(SERVICES / 'alpha'))\n")},
        "deploy and tools put no service folder on sys.path", "deploy/docker/tasks.py:5: system.path.insert(0, "),
    "tools adds a service folder as a site dir": (
        {"tools/report.py": "import os, site\nsite.addsitedir(os.path.join('/app', 'services', 'beta'))\n"},
        "deploy and tools put no service folder on sys.path", "tools/report.py:2: site.addsitedir("),
}


def sources(root: Path) -> list[Path]:
    """Where a generated project's packages are: it is not installed, so the check is told."""
    return [s.package_dir for s in archcheck.find_services(root)] + [root / "libs" / "common" / "src"]


def make_project(root: Path, changes: dict[str, str]) -> Path:
    for rel, text in {**CLEAN, **changes}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return root


def test_a_clean_throwaway_project_passes(tmp_path: Path) -> None:
    result = archcheck.check(make_project(tmp_path, {}), source_paths=sources(tmp_path))
    assert result.ok, result.report
    assert {s.name for s in archcheck.find_services(tmp_path)} == {"civicgrid_alpha", "civicgrid_beta"}
    # deploy/ and tools/ were checked, and kept both rules.
    assert re.search(r"deploy and tools import no service\s*KEPT", result.report), result.report
    assert re.search(r"deploy and tools put no service folder on sys.path\s*KEPT", result.report), result.report


@pytest.mark.parametrize("scenario", sorted(VIOLATIONS))
def test_each_boundary_violation_is_reported(tmp_path: Path, scenario: str) -> None:
    changes, contract, offending_import = VIOLATIONS[scenario]
    result = archcheck.check(make_project(tmp_path, changes), source_paths=sources(tmp_path))
    assert not result.ok
    # import-linter pads the name to a column; a long name meets BROKEN without a space
    assert re.search(re.escape(contract) + r"\s*BROKEN", result.report), result.report
    assert offending_import in result.report, result.report


def test_a_service_whose_package_is_prefixed_civicgrid_is_checked_under_that_name(tmp_path: Path) -> None:
    """services/statistics holds civicgrid_statistics (a package `statistics` would shadow the
    standard library's): its layers and pure domain are still enforced."""
    gamma = {f"services/statistics/civicgrid_statistics/{mod}": "" for mod in (
        "__init__.py", "domain/__init__.py", "application/__init__.py", "adapters/__init__.py",
        "entrypoints/__init__.py")}
    clean = archcheck.check(make_project(tmp_path / "clean", gamma), source_paths=sources(tmp_path / "clean"))
    assert clean.ok, clean.report
    assert "civicgrid_statistics" in {s.name for s in archcheck.find_services(tmp_path / "clean")}
    broken = archcheck.check(make_project(tmp_path / "broken", {
        **gamma, "services/statistics/civicgrid_statistics/domain/model.py": "import faust\n"}),
        source_paths=sources(tmp_path / "broken"))
    assert not broken.ok
    assert "civicgrid_statistics.domain.model -> faust" in broken.report
