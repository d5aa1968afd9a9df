"""notifications' tests: the API tests run the real app (lifespan and all) on a fresh database
of the local stack's PostgreSQL, tokens signed by the local stack's key, called in-process over
ASGI; events are handed to the consumer's handler in a transaction, as the consumer does."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from settable_clock import Clock

from civicgrid_common.cloudevents import CloudEvent

from civicgrid_notifications.config import NotificationsSettings
from civicgrid_notifications.entrypoints.main import build_app

T0 = datetime(2026, 3, 4, 2, 15, tzinfo=timezone.utc)  # a Wednesday, 10:15 China time


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def notifications_app(fresh_db, clock):
    # No relay, no consumer, no sender loop: the tests hand events in and send due deliveries
    # themselves; nothing touches the local stack's shared topics.
    settings = NotificationsSettings(pg_database=fresh_db.pg_database, outbox_relay=False, consume=False, send=False)
    app = build_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def api(notifications_app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=notifications_app),
                                 base_url="http://notifications") as client:
        yield client


def event(type_: str, data: dict[str, Any], *, subject: str = "s", id: str | None = None) -> CloudEvent:
    return CloudEvent(id=id or str(uuid.uuid4()), source="/civicgrid/tests", type=type_, subject=subject,
                      time=T0, dataschema=None, data=data)


@pytest.fixture
def hand_in(notifications_app):
    """Hand an event to notifications as its consumer does: in one transaction."""
    async def deliver(e: CloudEvent):
        service = notifications_app.state.notifications
        async with notifications_app.state.pool.acquire() as conn, conn.transaction():
            return await service.on_event(conn, e)

    return deliver
