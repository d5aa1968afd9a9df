"""statistics_rebuild_ratio_vs_raw_consume: rebuilding statistics' fact store from the log
(`civicgrid rebuild statistics`) over a bare aiokafka consumer that only decodes the events.

Work: N generated, contract-valid intake and approval events (cases, complaints, approval
moves; 1,000,000 by default, STATISTICS_BENCH_EVENTS=N for a quick run) on statistics' three
topics, produced before timing; a live version caught up before timing.
Ours: statistics' rebuild — replay every topic from the beginning into a fresh version (one
fact per event, ON CONFLICT (event_id) DO NOTHING, checkpoints per batch), checksum over every
fact and every figure of both versions, swap.
Peer: a consumer assigned to the same partitions, reading to the end offsets and decoding
every record into a CloudEvent, nothing else.
"""
from __future__ import annotations

import asyncio
import os
import sys
import uuid
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

from civicgrid_common.db import create_pool
from civicgrid_common.kafka import make_producer
from civicgrid_common.projections import ProjectionRunner
from civicgrid_common.projections import store as pstore

from civicgrid_statistics.adapters.fact_store import StatisticsProjection, open_store
from civicgrid_statistics.config import StatisticsSettings
from civicgrid_statistics.entrypoints.rebuild import rebuild_fact_store

from harness import Result, Timer, fresh_database, fresh_topic, raw_consume_rate, settings

# The tests' generator of valid events lives with the shared test fixtures, not in a service.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fixtures"))
from event_stream import CHINA, generate  # noqa: E402

CHUNK_CASES, CHUNK_COMPLAINTS = 1500, 1000  # about 15,000 events a chunk
FULL = 1_000_000


def bench_events() -> int:
    """How many events a run generates: STATISTICS_BENCH_EVENTS, else a million."""
    return int(os.environ.get("STATISTICS_BENCH_EVENTS", str(FULL)))


async def produce(topics: dict[str, str], events: int) -> int:
    """Produce generated events chunk by chunk until `events` are on the topics; how many."""
    from datetime import datetime

    producer = make_producer(settings())
    await producer.start()
    sent, chunk = 0, 0
    try:
        while sent < events:
            start = datetime(2026, 1, 5, 9, 0, tzinfo=CHINA) + timedelta(days=3 * chunk)
            stream = generate(CHUNK_CASES, CHUNK_COMPLAINTS, seed=chunk, start=start)
            records = stream.records(topics)[: events - sent]
            acks = [await producer.send(r.topic, value=r.value, key=r.key, headers=list(r.headers)) for r in records]
            await asyncio.gather(*acks)
            sent += len(records)
            chunk += 1
    finally:
        await producer.stop()
    return sent


async def live_caught_up(s: StatisticsSettings, events: int) -> None:
    """The live version, filled by the projection runner up to the end (not timed)."""
    pool = await create_pool(s)
    await open_store(pool)
    runner = ProjectionRunner(s, pool, StatisticsProjection(), topics=s.topics, max_records=5000)
    task = asyncio.create_task(runner.run())
    try:
        while True:
            if task.done():
                task.result()
            async with pool.acquire() as conn:
                done = sum((await pstore.read_checkpoints(conn, "statistics", 1)).values())
            if done >= events:
                return
            await asyncio.sleep(0.5)
    finally:
        await runner.stop(timeout=120)
        await pool.close()


async def run(events: int | None = None) -> Result:
    events = events or bench_events()
    async with AsyncExitStack() as stack:
        db = await stack.enter_async_context(fresh_database())
        topics = {k: await stack.enter_async_context(fresh_topic(3)) for k in ("cases", "complaints", "approvals")}
        s = StatisticsSettings(pg_database=db.pg_database, topics=list(topics.values()), run_worker=False,
                               outbox_relay=False, kafka_client_id=f"bench-{uuid.uuid4().hex[:6]}")
        produced = await produce(topics, events)
        await live_caught_up(s, produced)
        with Timer() as t:
            report = await rebuild_fact_store(s)
        if not (report.equal and report.swapped and report.events == produced):
            raise RuntimeError(f"rebuild did not verify: {report.describe()} ({report.events} of {produced} events)")
        ours = produced / t.seconds
        peer = await raw_consume_rate(s, s.topics, produced)
    return Result(
        name="statistics_rebuild_ratio_vs_raw_consume",
        ours=ours,
        peer=peer,
        unit="events/s",
        ours_label="civicgrid rebuild statistics: replay 3 topics into a fresh fact store (a fact per event, "
                   "ON CONFLICT (event_id) DO NOTHING), checksum every fact and figure of both versions, swap",
        peer_label="bare AIOKafkaConsumer reading and decoding the same CloudEvents",
        work=f"{produced} generated intake/approval events (cases, complaints, approval moves), 3 topics x 3 partitions",
    )
