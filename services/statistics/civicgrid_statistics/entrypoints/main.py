"""statistics' process: the KPI API on port 8005 and, beside it (run_worker), one faust worker
as a child process that turns the domain topics' events into facts.

    python -m civicgrid_statistics.entrypoints.main
"""
from __future__ import annotations

import subprocess
import sys
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI

from civicgrid_common.db import create_pool, ensure_database
from civicgrid_common.outbox.relay import OutboxRelay
from civicgrid_common.web.app import create_app, serve
from civicgrid_common.web.health import kafka_ready, postgres_ready

from civicgrid_statistics.adapters.event_store import open_alerts
from civicgrid_statistics.adapters.fact_store import open_store
from civicgrid_statistics.adapters.kpi_reader import PgKpiReader
from civicgrid_statistics.application.kpis import KpiService
from civicgrid_statistics.config import StatisticsSettings
from civicgrid_statistics.entrypoints.api.kpis import kpis_router


def build_app(settings: StatisticsSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_database(settings)
        pool = await create_pool(settings)
        await open_store(pool)
        app.state.pool = pool
        await open_alerts(pool, settings)  # the event store and outbox the workers append alerts to
        app.state.kpis = KpiService(PgKpiReader(pool))
        # One relay per database publishes the alerts (an advisory lock); other replicas' wait.
        relay = OutboxRelay(pool, settings, name="statistics")
        try:
            async with relay.running(settings.outbox_relay):
                worker = (subprocess.Popen([sys.executable, "-m", "civicgrid_statistics.entrypoints.worker", "worker"])
                          if settings.run_worker else None)
                try:
                    yield
                finally:
                    if worker is not None:
                        worker.terminate()
                        try:
                            worker.wait(timeout=20)
                        except subprocess.TimeoutExpired:
                            worker.kill()
        finally:
            await pool.close()

    app = create_app(
        settings,
        title="civicgrid statistics",
        version="0.1.0",
        description="The KPIs leaders steer by (cases, complaints, satisfaction, workload), computed from "
        "facts that faust-streaming workers keep idempotently from the event log.",
        lifespan=lifespan,
        ready_checks={"postgres": postgres_ready, "kafka": kafka_ready(settings)},
    )
    app.include_router(kpis_router())
    return app


def main() -> None:
    settings = StatisticsSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
