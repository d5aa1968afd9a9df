"""statistics' tests: the real PostgreSQL and Kafka of the local stack, fresh databases and
topics, faust workers as real subprocesses, the API in-process over ASGI."""
from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from civicgrid_common.identity.tokens import mint_local_token

from civicgrid_statistics.config import StatisticsSettings
from civicgrid_statistics.entrypoints.main import build_app

sys.path.insert(0, str(Path(__file__).parent))

from statistics_stack import Worker, load_facts  # noqa: E402


@pytest.fixture
def token():
    def make(role: str = "leader", jurisdiction: str = "320104", **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **kw)}"}

    return make


@pytest.fixture
async def topics(new_topic) -> dict[str, str]:
    return {"cases": await new_topic("stats-cases", 3), "complaints": await new_topic("stats-complaints", 3),
            "approvals": await new_topic("stats-approvals", 2)}


@pytest.fixture
async def stats_settings(fresh_db, topics, tmp_path, new_topic) -> StatisticsSettings:
    return StatisticsSettings(pg_database=fresh_db.pg_database, topics=list(topics.values()),
                              alerts_topic=await new_topic("stats-alerts", 1),
                              faust_app_id=f"stats-test-{uuid.uuid4().hex[:8]}", faust_datadir=tmp_path / "faust",
                              run_worker=False, outbox_relay=False, consume_calendar=False)


@pytest.fixture
def workers(stats_settings, tmp_path):
    made: list[Worker] = []

    def make(n: int = 1) -> list[Worker]:
        new = [Worker(stats_settings, tmp_path / f"worker-{len(made) + i}.log") for i in range(n)]
        made.extend(new)
        return new

    yield make
    for w in made:
        w.kill()


@pytest.fixture
async def stats_app(stats_settings):
    app = build_app(stats_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def stats(stats_app):
    transport = httpx.ASGITransport(app=stats_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://statistics") as client:
        yield client


@pytest.fixture
async def loaded(stats_settings, topics, workers, stats):
    """A generated stream (10% published twice) turned into facts by one faust worker, stopped."""
    from event_stream import generate

    stream = generate(cases=120, complaints=80, seed=11)
    await load_facts(stats_settings, stream, topics, workers)
    return stream
