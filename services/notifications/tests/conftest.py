"""notifications' tests: the API tests run the real app (lifespan and all) on a fresh database
of the local stack's PostgreSQL, tokens signed by the local stack's key, called in-process over
ASGI; events are handed to the consumer's handler in a transaction, as the consumer does."""
from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import httpx
import pytest
import uvicorn

sys.path.insert(0, str(Path(__file__).parent))

from settable_clock import Clock  # noqa: E402

from civicgrid_common.cloudevents import CloudEvent  # noqa: E402

from civicgrid_notifications.config import NotificationsSettings  # noqa: E402
from civicgrid_notifications.entrypoints.main import build_app  # noqa: E402

from notification_events import T0  # noqa: E402


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def notifications_app(fresh_db, clock):
    # No relay, no consumer, no sender loop: the tests hand events in and send due deliveries
    # themselves; nothing touches the local stack's shared topics.
    settings = NotificationsSettings(pg_database=fresh_db.pg_database, outbox_relay=False, consume=False, send=False,
                                    timers=False)
    app = build_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def api(notifications_app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=notifications_app),
                                 base_url="http://notifications") as client:
        yield client


@pytest.fixture
def hand_in(notifications_app):
    """Hand an event to notifications as its consumer does: in one transaction."""
    async def deliver(e: CloudEvent):
        service = notifications_app.state.notifications
        async with notifications_app.state.pool.acquire() as conn, conn.transaction():
            return await service.on_event(conn, e)

    return deliver


@pytest.fixture
async def served(notifications_app):
    """The app over a real HTTP server on loopback (uvicorn), its live inbox listening; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(notifications_app, lifespan="off", log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.02)
    await asyncio.wait_for(notifications_app.state.broadcaster.listening.wait(), 10)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await serving
