"""approval's API tests: the real app (lifespan and all) on a fresh database of the local
stack's PostgreSQL, tokens signed by the local stack's key, called in-process over ASGI."""
from __future__ import annotations

import httpx
import pytest
from settable_clock import Clock

from civicgrid_approval.config import ApprovalSettings
from civicgrid_approval.entrypoints.main import build_app

from approval_builders import COMMUNITY, STREET, T0


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def approval_app(fresh_db, clock):
    # No relay and no consumers: these tests must not touch the local stack's shared topics.
    settings = ApprovalSettings(pg_database=fresh_db.pg_database, outbox_relay=False, consume=False,
                              timers=False)
    app = build_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def api(approval_app):
    transport = httpx.ASGITransport(app=approval_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://approval") as client:
        yield client


@pytest.fixture
def people(token):
    return {
        "community": token("community_reviewer", COMMUNITY, subject="cr-wang", name="王社区"),
        "street": token("street_reviewer", STREET, subject="sr-li", name="李街道"),
        "civil_system": token("department", "320104", department="civil_affairs", subject="civil-affairs-system"),
        "bureau": token("bureau_approver", "320104", department="civil_affairs", subject="ba-zhao", name="赵局"),
        "leader": token("leader", "320104", department="civil_affairs", subject="ld-chen", name="陈局长"),
        "auditor": token("auditor", "320104", subject="audit-1"),
    }
