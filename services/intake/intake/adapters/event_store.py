"""intake's event store: its own PostgreSQL database, the contracts, and its repositories."""
from __future__ import annotations

import asyncpg

from civicgrid_common.contracts import Contracts
from civicgrid_common.eventstore import EventStore, Repository
from civicgrid_common.settings import PlatformSettings

from intake.domain.catalogue import Catalogue


def event_store(pool: asyncpg.Pool, settings: PlatformSettings) -> EventStore:
    return EventStore(
        pool,
        Contracts(settings.contracts_dir),
        source=settings.source,
        schema_base_url=settings.schema_base_url,
    )


def catalogue_repository(store: EventStore) -> Repository[Catalogue]:
    # Every change carries whole entries: a snapshot every 50 versions keeps loading short.
    return Repository(store, Catalogue, snapshot_every=50)
