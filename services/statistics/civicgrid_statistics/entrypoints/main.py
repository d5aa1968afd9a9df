"""statistics' process: the KPI API on port 8005; what it runs beside it (the outbox relay of
its alerts and, on the local stack, one faust worker as a child process) is wired by bootstrap.py.

    python -m civicgrid_statistics.entrypoints.main
"""
from __future__ import annotations

from fastapi import FastAPI

from civicgrid_common.calendar.api import district_calendar_router
from civicgrid_common.service import service_lifespan
from civicgrid_common.web.app import create_app, serve
from civicgrid_common.web.health import kafka_ready, postgres_ready
from civicgrid_common.web.routing import add_routes

from civicgrid_statistics.bootstrap import bootstrap
from civicgrid_statistics.config import StatisticsSettings
from civicgrid_statistics.entrypoints.api.kpis import kpis_router


def build_app(settings: StatisticsSettings) -> FastAPI:
    app = create_app(
        settings,
        title="civicgrid statistics",
        version="0.1.0",
        description="The KPIs leaders steer by (cases, complaints, satisfaction, workload, grids), computed from "
        "facts that faust-streaming workers keep idempotently from the event log.",
        lifespan=service_lifespan(lambda: bootstrap(settings)),
        ready_checks={"postgres": postgres_ready, "kafka": kafka_ready(settings)},
    )
    for router in (kpis_router(), district_calendar_router()):
        add_routes(app, router)
    return app


def main() -> None:
    settings = StatisticsSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
