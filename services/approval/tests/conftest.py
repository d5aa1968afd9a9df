"""approval's API tests: the real app (lifespan and all) on a fresh database of the local
stack's PostgreSQL, tokens signed by the local stack's key, called in-process over ASGI."""
from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from civicgrid_common.identity.tokens import mint_local_token

from approval.config import ApprovalSettings
from approval.entrypoints.main import build_app

from approval_builders import T0


@pytest.fixture
def token():
    def make(role: str, jurisdiction: str = "320104", **kw) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **kw)}"}

    return make


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def approval_app(fresh_db, clock):
    # No relay and no consumers: these tests must not touch the local stack's shared topics.
    settings = ApprovalSettings(pg_database=fresh_db.pg_database, outbox_relay=False, consume=False)
    app = build_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def api(approval_app):
    transport = httpx.ASGITransport(app=approval_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://approval") as client:
        yield client
