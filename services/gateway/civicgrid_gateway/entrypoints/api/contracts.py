"""GET <mount>/<name>: the published contracts (adapters/contracts.py), cacheable and revalidated
by ETag; an unknown name is a 404 problem+json."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from civicgrid_common.problems import NOT_FOUND, Problem

from civicgrid_gateway.adapters.contracts import PublishedContracts

# Schemas change only with a deployment; a client may keep one five minutes without asking.
_CACHE = "public, max-age=300"


async def contract(request: Request) -> Response:
    published: PublishedContracts = request.app.state.contracts
    name = request.path_params.get("name", "")
    document = published.get(name)
    if document is None:
        raise Problem(NOT_FOUND, f"No contract is published at {published.mount}/{name}: the index at "
                                 f"{published.mount}/ lists every event's schema.")
    headers = {"ETag": document.etag, "Cache-Control": _CACHE}
    if document.etag in (tag.strip() for tag in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    return Response(document.body, media_type=document.media_type, headers=headers)
