"""add_routes: a service's routes on the app's own table, documented and answered as
include_router would, matched once."""
from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute

from civicgrid_common.settings import PlatformSettings
from civicgrid_common.web.app import create_app
from civicgrid_common.web.routing import add_routes


def _router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["things"], responses={409: {"description": "the thing exists"}})

    @r.post("/things/{code}", status_code=201)
    async def make(code: str, n: int = 1) -> dict:
        return {"code": code, "n": n}

    @r.get("/things/{code}")
    async def read(code: str) -> dict:
        return {"code": code}

    return r


def _app(add) -> FastAPI:
    app = create_app(PlatformSettings(), title="t", version="1", idempotency=False)
    add(app, _router())
    return app


@pytest.fixture
def apps() -> tuple[FastAPI, FastAPI]:
    return _app(add_routes), _app(lambda app, r: app.include_router(r))


def test_the_routes_themselves_are_on_the_app(apps) -> None:
    flat, _ = apps
    mine = [r for r in flat.router.routes if isinstance(r, APIRoute) and r.path.startswith("/v1/")]
    assert [(r.path, sorted(r.methods)) for r in mine] == [("/v1/things/{code}", ["POST"]),
                                                           ("/v1/things/{code}", ["GET"])]


def test_the_document_is_the_one_include_router_makes(apps) -> None:
    flat, included = apps
    assert flat.openapi() == included.openapi()
    answers = flat.openapi()["paths"]["/v1/things/{code}"]["post"]["responses"]
    assert {"409", "422", "4XX", "5XX", "201"} <= set(answers)  # the router's, the app's problem+json, its own


async def test_requests_are_answered_as_before(apps) -> None:
    for app in apps:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            made = await http.post("/v1/things/a1?n=3")
            bad = await http.post("/v1/things/a1?n=three")
            missing = await http.get("/v2/things/a1")
        assert (made.status_code, made.json()) == (201, {"code": "a1", "n": 3})
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        assert bad.json()["errors"][0]["field"] == "n"
        assert missing.status_code == 404


def test_a_router_that_includes_routers_keeps_its_include() -> None:
    def signed_in() -> None:
        return None

    outer = APIRouter()
    outer.include_router(_router(), dependencies=[Depends(signed_in)])
    app = create_app(PlatformSettings(), title="t", version="1", idempotency=False)
    add_routes(app, outer)
    assert not any(isinstance(r, APIRoute) and r.path.startswith("/v1/") for r in app.router.routes)
    assert "/v1/things/{code}" in app.openapi()["paths"]


def test_an_app_with_dependencies_of_its_own_is_refused() -> None:
    app = FastAPI(dependencies=[Depends(lambda: None)])
    with pytest.raises(ValueError, match="dependencies"):
        add_routes(app, _router())
