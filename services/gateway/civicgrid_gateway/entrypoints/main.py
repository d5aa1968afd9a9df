"""gateway's process: one HTTP origin on port 8000 for front ends. Every service's API under
/api/<service>/, Open311 under /open311/v2/ (see entrypoints/api/proxy.py); the upstreams are
wired by bootstrap.py.

    python -m civicgrid_gateway.entrypoints.main        (what `make up` and the container run)
"""
from __future__ import annotations

import logging

from fastapi import FastAPI

from civicgrid_common.service import service_lifespan
from civicgrid_common.web.app import create_app, serve

from civicgrid_gateway.bootstrap import bootstrap
from civicgrid_gateway.config import GatewaySettings
from civicgrid_gateway.entrypoints.api.proxy import METHODS, proxy
from civicgrid_gateway.entrypoints.request_ids import RequestIdMiddleware


def build_app(settings: GatewaySettings, **upstream_options) -> FastAPI:
    app = create_app(
        settings,
        title="civicgrid gateway",
        version="0.1.0",
        description="One origin for front ends: every service's API under /api/<service>/ (intake, approval, grid, "
        "notifications, statistics) and Open311 GeoReport v2 under /open311/v2/, the token checked on the way, "
        "a circuit per service, request ids passed on and returned.",
        lifespan=service_lifespan(lambda: bootstrap(settings, **upstream_options)),
        # Ready when it serves: an upstream that is down is its own routes' 503, not the gateway's.
        ready_checks={},
        idempotency=False,
        check_bodies=False,  # streamed to the service, which checks them
    )
    app.router.add_route("/api/{rest:path}", proxy, methods=METHODS, include_in_schema=False)
    app.router.add_route("/open311/v2/{rest:path}", proxy, methods=METHODS, include_in_schema=False)
    app.add_middleware(RequestIdMiddleware)
    return app


def main() -> None:
    # The process's logging, so here and not in bootstrap (tests build many apps in one process):
    # httpx logs every proxied request at INFO with its query string; the access log already
    # says what came in, and a query may hold what no log should.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = GatewaySettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
