"""intake's API tests: the real app (lifespan and all) on a fresh database of the local stack's
PostgreSQL, with tokens signed by the local stack's key, called in-process over ASGI."""
from __future__ import annotations

import httpx
import pytest

from civicgrid_common.identity.localkeys import ensure_local_keys, private_key_path
from civicgrid_common.identity.tokens import mint_token
from civicgrid_common.paths import local_state_dir

from intake.config import IntakeSettings
from intake.entrypoints.main import build_app


@pytest.fixture
def token():
    keys = local_state_dir() / "keys"
    ensure_local_keys(keys)
    pem = private_key_path(keys).read_bytes()

    def make(role: str, jurisdiction: str = "320104", **kw) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(pem, role, jurisdiction, **kw)}"}

    return make


@pytest.fixture
async def intake_app(fresh_db):
    """The intake app with its lifespan running (tests reach app.state, e.g. to set a clock)."""
    # No relay: these tests must not publish into the local stack's shared topics.
    settings = IntakeSettings(pg_database=fresh_db.pg_database, outbox_relay=False)
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def intake(intake_app):
    transport = httpx.ASGITransport(app=intake_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        yield client
