"""intake's process: the FastAPI app on port 8001 and, beside it, the outbox relay and the
consumer of approval's outcomes.

    python -m intake.entrypoints.main        (what `make up` and the container run)
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI

from civicgrid_common.db import create_pool, ensure_database
from civicgrid_common.outbox.relay import OutboxRelay
from civicgrid_common.web.app import create_app, serve
from civicgrid_common.web.health import kafka_ready, postgres_ready

from intake.adapters.event_store import catalogue_repository, event_store
from intake.adapters.personal_data import PersonalDataSettings, load_keyring
from intake.application.catalogue import CatalogueService, demo_seed
from intake.config import IntakeSettings
from intake.domain.identity_numbers import load_area_codes
from intake.entrypoints.approval_outcomes import approval_outcomes_consumer
from intake.entrypoints.api.catalogue import catalogue_router


def build_app(settings: IntakeSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Fail fast, first: without its keyring intake must not touch the database.
        keyring = load_keyring(PersonalDataSettings(personal_data_keyring=settings.personal_data_keyring,
                                                    environment=settings.environment))
        await ensure_database(settings)
        await asyncio.to_thread(load_area_codes)  # reference data read before serving, off the loop
        pool = await create_pool(settings)
        store = event_store(pool, settings)
        await store.install()
        app.state.pool = pool
        app.state.store = store
        app.state.catalogue = CatalogueService(catalogue_repository(store), settings.district,
                                               store.contracts.departments)
        if settings.seed_catalogue:
            await app.state.catalogue.seed_if_empty(demo_seed())
        # Each area's application service on app.state (one line or block each, in this order):
        # [applicants]
        from intake.entrypoints.api.applicants import start_applicants
        app.state.applicants = await start_applicants(pool, store, keyring)
        # [cases]
        from intake.entrypoints.api.cases import start_cases
        app.state.cases = await start_cases(pool, store, app.state.catalogue, app.state.applicants)
        # [complaints]
        from intake.entrypoints.api.complaints import start_complaints
        app.state.complaints = await start_complaints(pool, store, store.contracts.departments)
        # One relay per database publishes (an advisory lock); other replicas' relays wait.
        relay = OutboxRelay(pool, settings, name="intake")
        # Approval's outcomes complete cases and ask for supplements (entrypoints/approval_outcomes.py).
        consumer = approval_outcomes_consumer(settings, pool, app.state.cases) if settings.approval_consumer else None
        app.state.approval_consumer = consumer
        try:
            async with relay.running(settings.outbox_relay):
                consumer_task = asyncio.create_task(consumer.run(), name="intake-approval-outcomes") if consumer else None
                try:
                    yield
                finally:
                    if consumer is not None and consumer_task is not None:
                        await consumer.stop()
                        await consumer_task
        finally:
            await pool.close()

    app = create_app(
        settings,
        title="civicgrid intake",
        version="0.1.0",
        description="The one-window acceptance centre (一口受理): affairs catalogue, applicants, cases, "
        "complaints and Open311.",
        lifespan=lifespan,
        ready_checks={"postgres": postgres_ready, "kafka": kafka_ready(settings)},
    )
    app.include_router(catalogue_router())
    # Each area's routers (one line each): [applicants routers] [cases routers] [complaints routers]
    from intake.entrypoints.api.applicants import applicants_router  # [applicants routers]
    app.include_router(applicants_router())
    from intake.entrypoints.api.cases import cases_router  # [cases routers]
    app.include_router(cases_router())
    from intake.entrypoints.api.complaints import complaints_open311_router, complaints_router  # [complaints routers]
    app.include_router(complaints_router())
    app.include_router(complaints_open311_router(app, settings))
    return app


def main() -> None:
    settings = IntakeSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
