"""gateway's process: one HTTP origin on port 8000 for front ends. Every service's API under
/api/<service>/, Open311 under /open311/v2/ (see entrypoints/api/proxy.py); the upstreams are
wired by bootstrap.py.

    python -m civicgrid_gateway.entrypoints.main        (what `make up` and the container run)
"""
from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.responses import Response
from starlette.middleware.cors import CORSMiddleware

from civicgrid_common.service import service_lifespan
from civicgrid_common.web.app import create_app, serve

from civicgrid_gateway.adapters.contracts import mount_path
from civicgrid_gateway.bootstrap import bootstrap
from civicgrid_gateway.config import GatewaySettings
from civicgrid_gateway.entrypoints.api.contracts import contract
from civicgrid_gateway.entrypoints.api.openapi import api_document
from civicgrid_gateway.entrypoints.api.proxy import METHODS, proxy
from civicgrid_gateway.entrypoints.api.sign_in import SessionOut, callback, login, logout, session_info
from civicgrid_gateway.entrypoints.api.views import CaseFile, case_view
from civicgrid_gateway.entrypoints.console import Console
from civicgrid_gateway.entrypoints.edge import AccessLog, AddressRateLimit
from civicgrid_gateway.entrypoints.request_ids import RequestIdMiddleware


def build_app(settings: GatewaySettings, **upstream_options) -> FastAPI:
    app = create_app(
        settings,
        title="civicgrid gateway",
        version="0.1.0",
        description="One origin for front ends: every service's API under /api/<service>/ (intake, approval, grid, "
        "notifications, statistics) and Open311 GeoReport v2 under /open311/v2/, the token checked on the way, "
        "a circuit per service, request ids passed on and returned; the event contracts under /contracts/ "
        "(every CloudEvent's dataschema resolves there); every service's routes in one document at /api/openapi.json; views that join several services "
        "(a case with its approvals and seals) under /api/views/.",
        lifespan=service_lifespan(lambda: bootstrap(settings, lambda: app.openapi(), **upstream_options)),
        # Ready when it serves: an upstream that is down is its own routes' 503, not the gateway's.
        ready_checks={},
        idempotency=False,
        check_bodies=False,  # streamed to the service, which checks them
    )
    # Before the proxy's /api/ route, which would look for a service called "openapi.json".
    app.router.add_route("/api/openapi.json", api_document, methods=["GET"], include_in_schema=False)
    app.add_api_route("/api/views/cases/{case_id}", case_view, methods=["GET"], response_model=CaseFile,
                      tags=["views"], operation_id="case_file", summary="A case with its approvals, their seals and their verification",
                      description="Joined from intake and approval, each asked with the caller's token; what one "
                                  "of them did not give is listed in `missing`, and the case is still shown.")
    # Sign-in for the console (entrypoints/api/sign_in.py), outside the proxied /api/ prefix.
    app.add_api_route("/auth/login", login, methods=["GET"], tags=["sign-in"], operation_id="sign_in",
                      summary="Start signing in: a redirect to the identity provider's login page",
                      response_class=Response, responses={302: {"description": "to the identity provider"}},
                      status_code=302)
    app.add_api_route("/auth/callback", callback, methods=["GET"], tags=["sign-in"], operation_id="sign_in_callback",
                      summary="The identity provider's return: the session cookie set, back to `next`",
                      response_class=Response, responses={303: {"description": "to where sign-in began"}},
                      status_code=303)
    app.add_api_route("/auth/session", session_info, methods=["GET"], tags=["sign-in"], operation_id="session",
                      summary="Who is signed in in this browser, and the CSRF token for changes",
                      response_model=SessionOut)
    app.add_api_route("/auth/logout", logout, methods=["POST"], tags=["sign-in"], operation_id="sign_out",
                      summary="Sign out (X-CSRF-Token required): the session ended at the identity provider too",
                      response_class=Response, status_code=204)
    app.router.add_route("/api/{rest:path}", proxy, methods=METHODS, include_in_schema=False)
    app.router.add_route("/open311/v2/{rest:path}", proxy, methods=METHODS, include_in_schema=False)
    # Every event's dataschema resolves here (CIVICGRID_SCHEMA_BASE_URL's path, /contracts by default).
    contracts = mount_path(settings.schema_base_url)
    app.router.add_route(contracts, contract, methods=["GET"], include_in_schema=False)
    app.router.add_route(contracts + "/{name:path}", contract, methods=["GET"], include_in_schema=False)
    # Last: what no route above took is the console's (entrypoints/console.py).
    app.mount("/", Console(settings.console_dir), name="console")
    # Added inner first: access log(request id(CORS(address limit(app)))): every answer is logged
    # with its id, and a 429 carries CORS headers so that a browser's script can read it.
    app.add_middleware(AddressRateLimit)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=True,
                           allow_methods=METHODS, allow_headers=["authorization", "content-type", "idempotency-key",
                                                                 "if-match", "if-none-match", "x-request-id", "x-csrf-token",
                                                                 "traceparent", "tracestate"],
                           expose_headers=["etag", "location", "retry-after", "x-request-id"], max_age=600)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(AccessLog)
    return app


def main() -> None:
    # The process's logging, so here and not in bootstrap (tests build many apps in one process):
    # httpx logs every proxied request at INFO with its query string; the access log already
    # says what came in, and a query may hold what no log should.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = GatewaySettings()
    # The gateway writes its own access log (entrypoints/edge.py): uvicorn's would add the query.
    serve(build_app(settings), settings, access_log=False)


if __name__ == "__main__":
    main()
