"""`civicgrid rebuild statistics --verify`: a fresh version replayed from the beginning of the
topics equals the live one (every fact, every figure) and takes over while a worker keeps
running; a live version that lost a fact is not equal, stays, and the command exits 1."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import asyncpg

from civicgrid_statistics.entrypoints.rebuild import rebuild_fact_store

from statistics_stack import end_offsets, publish, wait_for_facts
from event_stream import generate


def civicgrid_rebuild(settings) -> subprocess.CompletedProcess:
    env = dict(os.environ, CIVICGRID_PG_DATABASE=settings.pg_database, CIVICGRID_TOPICS=json.dumps(settings.topics))
    cli = os.path.join(os.path.dirname(sys.executable), "civicgrid")
    return subprocess.run([cli, "rebuild", "statistics", "--verify"], env=env, capture_output=True, text=True,
                          timeout=300)


async def active_version(settings) -> int:
    conn = await asyncpg.connect(settings.dsn())
    try:
        return await conn.fetchval("SELECT active_version FROM civicgrid_projections WHERE projection = 'statistics'")
    finally:
        await conn.close()


async def test_rebuild_equals_the_live_version_and_swaps_while_a_worker_runs(stats_settings, topics, workers, stats,
                                                                             token):
    stream = generate(cases=150, complaints=100, seed=31)
    records = stream.records(topics, duplicate_share=0.1)
    half = len(records) // 2
    await publish(stats_settings, records[:half])
    (worker,) = workers(1)
    worker.start()
    await wait_for_facts(stats_settings, await end_offsets(stats_settings, list(topics.values())), [worker])
    before = (await stats.get("/v1/kpis/cases", params={"group_by": "affair"}, headers=token())).json()

    done = civicgrid_rebuild(stats_settings)  # the worker keeps running meanwhile
    assert done.returncode == 0, done.stdout + done.stderr
    assert "equals version 1" in done.stdout
    assert await active_version(stats_settings) == 2
    after = (await stats.get("/v1/kpis/cases", params={"group_by": "affair"}, headers=token())).json()
    assert after == before

    # The worker goes on writing into the version the readers now see.
    await publish(stats_settings, records[half:])
    await wait_for_facts(stats_settings, await end_offsets(stats_settings, list(topics.values())), [worker])
    worker.stop()
    totals = (await stats.get("/v1/kpis/cases", headers=token())).json()["totals"]
    assert totals["registered"] == stream.expected()["cases"]["all"]["registered"]


async def test_a_live_version_that_lost_a_fact_is_not_swapped(loaded, stats_settings):
    conn = await asyncpg.connect(stats_settings.dsn())
    try:
        await conn.execute("DELETE FROM proj_statistics_v1.facts WHERE event_id = "
                           "(SELECT min(event_id) FROM proj_statistics_v1.facts WHERE kind = 'intake.case.accepted')")
    finally:
        await conn.close()
    report = await rebuild_fact_store(stats_settings)
    assert not report.equal and not report.swapped
    assert report.live_checksum != report.rebuilt_checksum
    assert await active_version(stats_settings) == 1

    done = civicgrid_rebuild(stats_settings)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "differs from live version 1" in done.stdout
    assert await active_version(stats_settings) == 1


def test_rebuild_of_an_unknown_read_model_is_a_usage_error() -> None:
    cli = os.path.join(os.path.dirname(sys.executable), "civicgrid")
    done = subprocess.run([cli, "rebuild", "no_such_model", "--verify"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no read model named 'no_such_model'" in done.stderr and "statistics" in done.stderr
