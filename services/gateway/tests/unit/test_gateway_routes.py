"""The gateway's route table and its small rules (pure)."""
from __future__ import annotations

import pytest

from civicgrid_gateway.domain.routes import Target, may_retry, request_id, resolve

SERVICES = frozenset({"intake", "approval", "grid", "notifications", "statistics"})


@pytest.mark.parametrize(("path", "target"), [
    ("/api/intake/v1/cases", Target("intake", "/v1/cases")),
    ("/api/grid/v1/grids/locate", Target("grid", "/v1/grids/locate")),
    ("/api/notifications/v1/inbox/stream", Target("notifications", "/v1/inbox/stream", stream=True)),
    ("/open311/v2/requests.json", Target("intake", "/open311/v2/requests.json", public=True)),
    ("/open311/v2", Target("intake", "/open311/v2", public=True)),
    ("/api/intake/", None),
    ("/api/intake", None),  # a service's root is no route of it
    ("/api/payroll/v1/x", None),  # no such service
    ("/api/", None), ("/v1/cases", None), ("/open311/v22/x", None), ("/open311/v2x", None),
])
def test_each_service_is_under_its_prefix_and_open311_at_its_public_path(path, target):
    assert resolve(path, SERVICES) == target


def test_only_bodiless_idempotent_requests_are_tried_again():
    assert may_retry("GET", False) and may_retry("delete", False) and may_retry("HEAD", False)
    assert not may_retry("GET", True)  # a streamed body cannot be sent twice
    assert not may_retry("POST", False) and not may_retry("PATCH", False)
    assert not may_retry("PUT", True)


def test_a_sane_request_id_is_kept_and_anything_else_replaced():
    assert request_id("abc-1.2:3_4") == "abc-1.2:3_4"
    for bad in (None, "", "a b", "x" * 129, "<script>", "id\r\nX-Evil: 1"):
        made = request_id(bad)
        assert made != bad and len(made) == 32 and made.isalnum()
    assert request_id(None) != request_id(None)
