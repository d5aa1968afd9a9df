"""The other side of tests/architecture/test_test_layers.py: outside the unit layer a test is an
integration test, marked so (`-m integration` selects it) and free to reach the stack."""
from __future__ import annotations

import socket

import pytest


def test_an_integration_test_is_marked_and_may_open_sockets(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("integration") is not None
    assert request.node.get_closest_marker("disable_socket") is None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        assert s.family == socket.AF_INET
