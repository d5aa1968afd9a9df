"""approval's process: the FastAPI app on port 8002; what it runs beside it (the outbox relay,
the consumers of intake's cases and of the department systems' opinions, the deadline timers)
is wired by bootstrap.py.

    python -m civicgrid_approval.entrypoints.main        (what `make up` and the container run)
"""
from __future__ import annotations

from fastapi import FastAPI

from civicgrid_common.calendar.api import district_calendar_router
from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.service import service_lifespan
from civicgrid_common.web.app import create_app, serve
from civicgrid_common.web.health import kafka_ready, postgres_ready
from civicgrid_common.web.routing import add_routes

from civicgrid_approval.bootstrap import bootstrap
from civicgrid_approval.config import ApprovalSettings
from civicgrid_approval.entrypoints.api.approvals import approvals_router


def build_app(settings: ApprovalSettings, *, clock: Clock = utc_now) -> FastAPI:
    app = create_app(
        settings,
        title="civicgrid approval",
        version="0.1.0",
        description="Multi-level approvals behind the one window (内部协办): workflow definitions, tasks and "
        "inboxes, sealed decisions and their verification, deadlines, department systems' opinions, the archive, "
        "and the access system (准入).",
        lifespan=service_lifespan(lambda: bootstrap(settings, clock=clock)),
        ready_checks={"postgres": postgres_ready, "kafka": kafka_ready(settings)},
    )
    for router in (approvals_router(), district_calendar_router()):
        add_routes(app, router)
    return app


def main() -> None:
    settings = ApprovalSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
