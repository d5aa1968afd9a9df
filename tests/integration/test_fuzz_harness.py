"""The fuzz harness can fail: against a deliberately broken app (on a fresh database of the local
stack, with an events and an outbox table) each of its checks reports what it is there for."""
from __future__ import annotations

import asyncpg
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from civicgrid_common.settings import PlatformSettings

from fuzz_harness import FuzzTarget, run_case


def _broken_app(pg_database: str) -> FastAPI:
    dsn = PlatformSettings(service_name="tests").dsn(pg_database)

    async def lifespan(app: FastAPI):
        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE TABLE IF NOT EXISTS events (id serial); CREATE TABLE IF NOT EXISTS outbox (id serial)")
        app.state.conn = conn
        yield
        await conn.close()

    app = FastAPI(lifespan=lifespan)

    @app.exception_handler(RuntimeError)
    async def server_error(request, exc) -> JSONResponse:  # what an app's error handler answers
        return JSONResponse({"title": "Internal Server Error"}, status_code=500)

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("a bug")

    @app.post("/refuse", status_code=201)
    async def refuse() -> JSONResponse:
        await app.state.conn.execute("INSERT INTO events DEFAULT VALUES")  # a change, then a 4xx
        return JSONResponse({"error": "no"}, status_code=400)

    return app


@pytest.fixture(scope="module")
def broken():
    with FuzzTarget("broken", _broken_app).start() as target:
        yield target


def _failure_of(target: FuzzTarget, path: str, method: str) -> str:
    case = target.schema[path][method].Case()
    with pytest.raises(AssertionError) as failed:
        run_case(target, case, "admin@district")
    return str(failed.value)


def test_a_500_fails(broken):
    assert "ServerError" in _failure_of(broken, "/boom", "GET")


def test_a_4xx_that_changes_state_and_is_not_problem_json_fails(broken):
    message = _failure_of(broken, "/refuse", "POST")
    assert "StateChangedOn4xx" in message
    assert "ProblemJsonMissing" in message
