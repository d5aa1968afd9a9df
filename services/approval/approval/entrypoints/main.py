"""approval's process: the FastAPI app on port 8002 and, beside it, the outbox relay, the
consumers of intake's cases and of the department systems' opinions, and the deadline timers.

    python -m approval.entrypoints.main        (what `make up` and the container run)
"""
from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI

from civicgrid_common.calendar.overrides import install_calendar_schema, load_calendar
from civicgrid_common.consumer import EventConsumer
from civicgrid_common.db import create_pool, ensure_database
from civicgrid_common.outbox.relay import OutboxRelay
from civicgrid_common.timers import TimerWorker, install_timers
from civicgrid_common.web.app import create_app, serve
from civicgrid_common.web.health import kafka_ready, postgres_ready

from approval.adapters.deadlines import OWNER, TimerDeadlines, timer_handler
from approval.adapters.event_store import Tables, event_store
from approval.adapters.keystore import SealKeyStore, load_master_key
from approval.adapters.views import install_views
from approval.application.service import ApprovalService, utc_now
from approval.config import ApprovalSettings
from approval.domain.seed import seed_definitions
from approval.entrypoints.api.approvals import approvals_router
from approval.entrypoints.api.calendar import calendar_router
from approval.entrypoints.consumers import department_opinions_handler, intake_cases_handler


def build_app(settings: ApprovalSettings, *, clock=utc_now) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        master_key = load_master_key(settings.seal_master_key_file, settings.environment)  # fail fast, first
        await ensure_database(settings)
        pool = await create_pool(settings)
        store = event_store(pool, settings)
        await store.install()
        await install_views(pool)
        await install_calendar_schema(pool)
        keys = SealKeyStore(pool, master_key)
        await keys.install()
        app.state.pool = pool
        app.state.store = store
        app.state.seal_keys = keys
        app.state.settings = settings
        await install_timers(pool)
        app.state.clock = clock
        service = ApprovalService(pool, store, keys, Tables(), calendar=lambda: load_calendar(pool),
                                  clock=lambda: app.state.clock(),
                                  deadlines=TimerDeadlines(settings.warning_share),
                                  command_attempts=settings.command_attempts)
        app.state.approvals = service
        tasks: list[asyncio.Task] = []
        stoppers = []
        # Deadlines: warnings and overdue marks from durable timers (exactly once, across restarts).
        app.state.timers = TimerWorker(pool, owner=OWNER, handler=timer_handler(service),
                                       clock=lambda: app.state.clock(), poll_interval=settings.timer_poll_seconds)
        if settings.timers:
            tasks.append(asyncio.create_task(app.state.timers.run(), name="approval-timers"))
            stoppers.append(app.state.timers.stop)
        if settings.seed_workflows:
            await service.seed_if_empty(seed_definitions())
        if settings.consume:
            for name, topics, handler in (
                ("intake-cases", [settings.intake_cases_topic], intake_cases_handler(service)),
                ("department-opinions", settings.department_opinion_topics,
                 department_opinions_handler(service, store.contracts)),
            ):
                consumer = EventConsumer(settings, pool, topics=topics, group_id=f"{settings.consumer_group}.{name}",
                                         handler=handler, dead_letter_topic=settings.dead_letter_topic)
                app.state.__setattr__(f"consumer_{name.replace('-', '_')}", consumer)
                tasks.append(asyncio.create_task(consumer.run(), name=f"approval-{name}"))
                stoppers.append(consumer.stop)
        relay = OutboxRelay(pool, settings, name="approval")
        if settings.outbox_relay:
            tasks.append(asyncio.create_task(relay.run(), name="approval-outbox-relay"))
        try:
            yield
        finally:
            relay.stop()
            for stop in stoppers:
                with contextlib.suppress(Exception):
                    await stop()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(task, timeout=10)
            await pool.close()

    app = create_app(
        settings,
        title="civicgrid approval",
        version="0.1.0",
        description="Multi-level approvals behind the one window (内部协办): workflow definitions, tasks and "
        "inboxes, sealed decisions and their verification, deadlines, department systems' opinions, the archive, "
        "and the access system (准入).",
        lifespan=lifespan,
        ready_checks={"postgres": postgres_ready, "kafka": kafka_ready(settings)},
    )
    app.include_router(approvals_router())
    app.include_router(calendar_router())
    return app


def main() -> None:
    settings = ApprovalSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
