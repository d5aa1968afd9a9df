"""grid's process: the FastAPI app on port 8003; what it runs beside it (the outbox relay, the
consumers of intake's complaints, approval's access decisions and the departments' results,
the timers of incidents' limits and of the daily missing-report check) is wired by bootstrap.py.

    python -m civicgrid_grid.entrypoints.main        (what `make up` and the container run)
"""
from __future__ import annotations

from fastapi import FastAPI

from civicgrid_common.calendar.api import district_calendar_router
from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.service import service_lifespan
from civicgrid_common.web.app import create_app, serve
from civicgrid_common.web.health import kafka_ready, postgres_ready
from civicgrid_common.web.routing import add_routes

from civicgrid_grid.bootstrap import bootstrap
from civicgrid_grid.config import GridSettings
from civicgrid_grid.entrypoints.api.routes import grid_router


def build_app(settings: GridSettings, *, clock: Clock = utc_now) -> FastAPI:
    app = create_app(
        settings,
        title="civicgrid grid",
        version="0.1.0",
        description="The responsibility grids (网格化管理): the registry of grids, buildings and components, grid "
        "workers' patrols and daily reports, incidents through the closed loop, disputes and the monthly stability "
        "sweep, and the access system (准入) enforced on work departments push into communities.",
        lifespan=service_lifespan(lambda: bootstrap(settings, clock=clock)),
        ready_checks={"postgres": postgres_ready, "kafka": kafka_ready(settings)},
    )
    for router in (grid_router(), district_calendar_router()):
        add_routes(app, router)
    return app


def main() -> None:
    settings = GridSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
