"""The two layers of the tests: every test of a service or of the platform is filed under
`tests/unit` (no database, no broker, no network) or `tests/integration` (the real stack), and
the unit layer is held to it: conftest.py refuses it every network socket, so a test that needs
the stack and was filed as a unit test fails (this file is itself in the unit layer)."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pytest_socket import SocketBlockedError

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("unit", "integration")


def _test_folders() -> list[Path]:
    return [ROOT / "libs/common/tests", *sorted(p.parent / "tests" for p in ROOT.glob("services/*/pyproject.toml"))]


def test_every_service_and_the_platform_have_both_layers() -> None:
    missing = [f"{folder.relative_to(ROOT)}/{layer}" for folder in _test_folders() for layer in LAYERS
               if not any((folder / layer).glob("test_*.py"))]
    assert not missing, f"no tests in: {missing}"


def test_every_test_module_is_filed_in_a_layer() -> None:
    stray = [str(p.relative_to(ROOT)) for folder in _test_folders() for p in folder.rglob("test_*.py")
             if p.relative_to(folder).parts[0] not in LAYERS]
    assert not stray, f"file these under tests/unit or tests/integration: {stray}"


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_a_unit_test_may_open_no_network_socket(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("disable_socket") is not None
    assert request.node.get_closest_marker("integration") is None
    with pytest.raises(SocketBlockedError):
        socket.create_connection(("127.0.0.1", 55432), timeout=1)  # the stack's PostgreSQL
    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
