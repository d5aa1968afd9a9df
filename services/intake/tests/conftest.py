"""intake's API tests: the real app (lifespan and all) on a fresh database of the local stack's
PostgreSQL, with tokens signed by the local stack's key, called in-process over ASGI."""
from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from civicgrid_intake.config import IntakeSettings
from civicgrid_intake.entrypoints.main import build_app

# The integration tests build on the unit tests' histories (test_case_lifecycle's registered
# case, test_complaint's received complaint): both layers' modules are importable by name.
for layer in ("unit", "integration"):
    sys.path.insert(0, str(Path(__file__).parent / layer))


@pytest.fixture
async def intake_app(fresh_db):
    """The intake app with its lifespan running (tests reach app.state, e.g. to set a clock)."""
    # No relay, no consumer: these tests must not publish into the local stack's shared topics
    # nor join its consumer groups (test_approval_outcomes.py starts its own on its own topic).
    settings = IntakeSettings(pg_database=fresh_db.pg_database, outbox_relay=False, approval_consumer=False)
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def intake(intake_app):
    transport = httpx.ASGITransport(app=intake_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        yield client
