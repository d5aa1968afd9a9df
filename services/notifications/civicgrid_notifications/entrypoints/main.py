"""notifications' process: the FastAPI app on port 8004; what it runs beside it (the outbox
relay, the consumer of the source topics, the webhook sender, the live inbox's listener) is
wired by bootstrap.py.

    python -m civicgrid_notifications.entrypoints.main        (what `make up` and the container run)
"""
from __future__ import annotations

from fastapi import FastAPI

from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.service import service_lifespan
from civicgrid_common.web.app import create_app, serve
from civicgrid_common.web.health import kafka_ready, postgres_ready
from civicgrid_common.web.routing import add_routes

from civicgrid_notifications.bootstrap import bootstrap
from civicgrid_notifications.config import NotificationsSettings
from civicgrid_notifications.entrypoints.api.routes import notifications_routers


def build_app(settings: NotificationsSettings, *, clock: Clock = utc_now) -> FastAPI:
    app = create_app(
        settings,
        title="civicgrid notifications",
        version="0.1.0",
        description="The right person told once, on the right channel: the district's rule book (which event tells "
        "whom, on which channel, with which template), the in-app inbox with its live stream, and department "
        "webhooks signed by the Standard Webhooks specification, each delivery recorded once and retried on a "
        "schedule.",
        lifespan=service_lifespan(lambda: bootstrap(settings, clock=clock)),
        ready_checks={"postgres": postgres_ready, "kafka": kafka_ready(settings)},
    )
    for router in notifications_routers():
        add_routes(app, router)
    return app


def main() -> None:
    settings = NotificationsSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
