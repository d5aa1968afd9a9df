"""approval's event store (its own database) and its tables, as the application needs them."""
from __future__ import annotations

from typing import Any, Sequence

import asyncpg

from civicgrid_common.contracts import Contracts
from civicgrid_common.events import StoredEvent
from civicgrid_common.eventstore import EventStore
from civicgrid_common.settings import PlatformSettings

from approval.adapters import views
from approval.domain.approval import Approval


def event_store(pool: asyncpg.Pool, settings: PlatformSettings) -> EventStore:
    return EventStore(pool, Contracts(settings.contracts_dir), source=settings.source,
                      schema_base_url=settings.schema_base_url)


class Tables:
    """The read tables kept in the append's transaction (adapters/views.py)."""

    async def project(self, conn: asyncpg.Connection, a: Approval, stored: Sequence[StoredEvent]) -> None:
        await views.project(conn, a, stored)

    async def archive(self, conn: asyncpg.Connection, approval_id: str) -> tuple[str, dict[str, Any]] | None:
        return await views.archive(conn, approval_id)
