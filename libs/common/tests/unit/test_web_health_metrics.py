"""/healthz, /readyz with registered checks, and /metrics from prometheus_client's registry."""
from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import Gauge
from prometheus_client.parser import text_string_to_metric_families

from civicgrid_common.settings import PlatformSettings
from civicgrid_common.web import health
from civicgrid_common.web.app import create_app


async def ok(_: FastAPI) -> None:
    return None


async def broken(_: FastAPI) -> None:
    raise ConnectionRefusedError("connect to 127.0.0.1:1 refused")


async def hangs(_: FastAPI) -> None:
    await asyncio.Event().wait()


def requests_counted(text: str, route: str, status: str = "200", method: str = "GET") -> float:
    """How many requests of `route` the scraped /metrics text counts (the semantic conventions'
    http.server.request.duration histogram; 0 if none)."""
    return sum(sample.value
               for family in text_string_to_metric_families(text)
               if family.name == "http_server_request_duration_seconds"
               for sample in family.samples
               if sample.name.endswith("_count") and sample.labels.get("http_route") == route
               and sample.labels.get("http_response_status_code") == status
               and sample.labels.get("http_request_method") == method)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")


async def test_healthz_answers_while_dependencies_are_down() -> None:
    app = create_app(PlatformSettings(), title="h", version="0", idempotency=False,
                     ready_checks={"postgres": broken})
    async with client_for(app) as client:
        r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_readyz_is_200_when_every_check_passes() -> None:
    app = create_app(PlatformSettings(), title="h", version="0", idempotency=False,
                     ready_checks={"postgres": ok, "kafka": ok})
    async with client_for(app) as client:
        r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"postgres": "ok", "kafka": "ok"}}


async def test_readyz_is_503_problem_naming_the_failed_checks(monkeypatch) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.2)  # the hanging check's bound
    app = create_app(PlatformSettings(), title="h", version="0", idempotency=False,
                     ready_checks={"postgres": broken, "kafka": hangs, "cache": ok})
    async with client_for(app) as client:
        r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert set(body["failed"]) == {"postgres", "kafka"}
    assert "ConnectionRefusedError" in body["failed"]["postgres"]
    assert "no answer within" in body["failed"]["kafka"]


async def test_every_app_in_a_process_is_measured() -> None:
    # Tests (and a gateway mounting sub-apps) build several apps on one default registry.
    for path in ("/first", "/second"):
        app = create_app(PlatformSettings(), title="m", version="0", idempotency=False)
        app.add_api_route(path, lambda: {})
        async with client_for(app) as client:
            await client.get(path)
            await client.get(path)
            text = (await client.get("/metrics")).text
        assert requests_counted(text, path) == 2


async def test_metrics_expose_request_latency_and_gauges_defined_elsewhere() -> None:
    # A gauge another module defines on prometheus_client's default registry.
    name = f"civicgrid_test_outbox_lag_{uuid.uuid4().hex[:8]}"
    Gauge(name, "events in the outbox not yet on Kafka").set(7)
    app = create_app(PlatformSettings(), title="m", version="0", idempotency=False)

    @app.get("/ping")
    async def ping() -> dict:
        return {}

    @app.get("/cases/{case_id}")
    async def case(case_id: str) -> dict:
        return {}

    async with client_for(app) as client:
        before = requests_counted((await client.get("/metrics")).text, "/ping")
        assert (await client.get("/ping")).status_code == 200
        for case_id in ("C-1", "C-2", "C-3"):
            await client.get(f"/cases/{case_id}")
        assert (await client.get("/missing")).status_code == 404
        await client.get("/healthz")
        text = (await client.get("/metrics")).text
    assert f"{name} 7.0" in text
    assert requests_counted(text, "/ping") == before + 1
    # by route template, not by path: the label set stays bounded whatever the callers send
    assert requests_counted(text, "/cases/{case_id}") == 3
    assert "C-1" not in text and "/missing" not in text
    assert 'http_server_request_duration_seconds_bucket{' in text
    # the operations endpoints are not measured (a scrape would count itself)
    assert requests_counted(text, "/healthz") == 0 and requests_counted(text, "/metrics") == 0


async def test_operations_endpoints_stay_out_of_the_api_document() -> None:
    app = create_app(PlatformSettings(), title="m", version="0", idempotency=False)
    async with client_for(app) as client:
        doc = (await client.get("/openapi.json")).json()
    assert "/metrics" not in doc["paths"]


def test_idempotency_without_a_lifespan_to_open_the_pool_is_refused_at_build_time() -> None:
    with pytest.raises(ValueError, match="idempotency needs a lifespan"):
        create_app(PlatformSettings(), title="m", version="0")
