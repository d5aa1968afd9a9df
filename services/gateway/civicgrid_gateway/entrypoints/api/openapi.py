"""GET /api/openapi.json: every service's routes as the gateway serves them, in one document
(adapters/openapi.py). Public, as each service's own /openapi.json is."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from civicgrid_gateway.adapters.openapi import AggregatedOpenApi


async def api_document(request: Request) -> JSONResponse:
    aggregated: AggregatedOpenApi = request.app.state.openapi
    return JSONResponse(await aggregated.document(), headers={"Cache-Control": "public, max-age=60"})
