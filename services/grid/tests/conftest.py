"""grid's tests: the unit layer's builders are importable by name from both layers; the API
tests run the real app (lifespan and all) on a fresh database of the local stack's PostgreSQL,
tokens signed by the local stack's key, called in-process over ASGI."""
from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

for layer in ("unit", "integration"):
    sys.path.insert(0, str(Path(__file__).parent / layer))

from settable_clock import Clock  # noqa: E402

from civicgrid_grid.config import GridSettings  # noqa: E402
from civicgrid_grid.entrypoints.main import build_app  # noqa: E402

from grid_builders import T0  # noqa: E402


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def grid_app(fresh_db, clock):
    # No relay and no consumers: these tests must not touch the local stack's shared topics;
    # timers are fired by the tests (app.state.timers.fire_due()).
    settings = GridSettings(pg_database=fresh_db.pg_database, outbox_relay=False, consume=False, timers=False)
    app = build_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def api(grid_app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=grid_app), base_url="http://grid") as client:
        yield client
