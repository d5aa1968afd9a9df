"""/healthz (the process answers) and /readyz (its dependencies answer, too).

A readiness check is an async callable taking the app; it raises when its dependency is not
usable. /readyz runs them all concurrently, each bounded by a timeout, and answers 503
problem+json naming the ones that failed, so an orchestrator stops routing to the pod.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Mapping

from aiokafka import AIOKafkaClient
from fastapi import APIRouter, FastAPI, Request

from civicgrid_common.problems import NOT_READY, Problem
from civicgrid_common.settings import PlatformSettings

ReadyCheck = Callable[[FastAPI], Awaitable[None]]
CHECK_TIMEOUT_SECONDS = 5.0


async def postgres_ready(app: FastAPI) -> None:
    """The service's pool (app.state.pool) runs a query."""
    pool = getattr(app.state, "pool", None)
    if pool is None:
        raise RuntimeError("no database pool yet")
    await pool.fetchval("SELECT 1")


def kafka_ready(settings: PlatformSettings) -> ReadyCheck:
    """The broker answers a metadata request."""

    async def check(_: FastAPI) -> None:
        client = AIOKafkaClient(bootstrap_servers=settings.kafka_bootstrap,
                                client_id=f"{settings.client_id}-readyz", request_timeout_ms=4000)
        try:
            await client.bootstrap()  # fetches cluster metadata, raises if no broker answers
        finally:
            await client.close()

    return check


async def _run(check: ReadyCheck, app: FastAPI) -> str | None:
    try:
        await asyncio.wait_for(check(app), CHECK_TIMEOUT_SECONDS)
    except asyncio.TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g}s"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def health_router(checks: Mapping[str, ReadyCheck]) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Every dependency answers (503 problem naming the failing ones)")
    async def readyz(request: Request) -> dict[str, Any]:
        names = list(checks)
        results = await asyncio.gather(*(_run(checks[n], request.app) for n in names))
        failed = {n: r for n, r in zip(names, results) if r is not None}
        if failed:
            raise Problem(NOT_READY, "Failing checks: " + ", ".join(sorted(failed)) + ".",
                          failed=failed, headers={"Retry-After": "5"})
        return {"status": "ready", "checks": {n: "ok" for n in names}}

    return router
