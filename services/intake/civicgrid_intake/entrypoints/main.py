"""intake's process: the FastAPI app on port 8001; what it runs beside it (the outbox relay,
the consumer of approval's outcomes) is wired by bootstrap.py.

    python -m civicgrid_intake.entrypoints.main        (what `make up` and the container run)
"""
from __future__ import annotations

from fastapi import FastAPI

from civicgrid_common.calendar.api import district_calendar_router
from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.service import service_lifespan
from civicgrid_common.web.app import create_app, serve
from civicgrid_common.web.health import kafka_ready, postgres_ready
from civicgrid_common.web.routing import add_routes

from civicgrid_intake.bootstrap import bootstrap
from civicgrid_intake.config import IntakeSettings
from civicgrid_intake.entrypoints.api.applicants import applicants_router
from civicgrid_intake.entrypoints.api.cases import cases_router
from civicgrid_intake.entrypoints.api.catalogue import catalogue_router
from civicgrid_intake.entrypoints.api.complaints import complaints_open311_router, complaints_router


def build_app(settings: IntakeSettings, *, clock: Clock = utc_now) -> FastAPI:
    app = create_app(
        settings,
        title="civicgrid intake",
        version="0.1.0",
        description="The one-window acceptance centre (一口受理): affairs catalogue, applicants, cases, "
        "complaints and Open311.",
        lifespan=service_lifespan(lambda: bootstrap(settings, clock=clock)),
        ready_checks={"postgres": postgres_ready, "kafka": kafka_ready(settings)},
    )
    for router in (catalogue_router(), applicants_router(), cases_router(), district_calendar_router(owner=True),
                   complaints_router(), complaints_open311_router(app, settings)):
        add_routes(app, router)
    return app


def main() -> None:
    settings = IntakeSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
