"""Guarantee: a rebuilt projection equals the live one and is swapped in without a gap for readers;
a divergent rebuild is reported unequal and not swapped."""
from __future__ import annotations

import asyncio
from collections import defaultdict

import asyncpg
import pytest
from prometheus_client import REGISTRY

from test_consumer_support import eventually, numbered_events, produce

from civicgrid_common.cloudevents import CloudEvent
from civicgrid_common.projections import ProjectionRunner, ident, rebuild, table_digest

pytestmark = pytest.mark.integration


class ThingTotals:
    """Per aggregate: how many events and the sum of their n."""

    name = "thing_totals"

    async def create(self, conn: asyncpg.Connection, schema: str) -> None:
        await conn.execute(f"CREATE TABLE {ident(schema)}.totals (stream_id text PRIMARY KEY, "
                           "events integer NOT NULL, sum_n bigint NOT NULL)")

    async def apply(self, conn: asyncpg.Connection, schema: str, event: CloudEvent) -> None:
        await conn.execute(
            f"INSERT INTO {ident(schema)}.totals AS t (stream_id, events, sum_n) VALUES ($1, 1, $2) "
            "ON CONFLICT (stream_id) DO UPDATE SET events = t.events + 1, sum_n = t.sum_n + EXCLUDED.sum_n",
            event.subject, self.amount(event))

    def amount(self, event: CloudEvent) -> int:
        return int(event.data["n"])

    async def checksum(self, conn: asyncpg.Connection, schema: str) -> str:
        return await table_digest(conn, schema, "totals", ["stream_id"])


class MiscountingThingTotals(ThingTotals):
    """A buggy new version of the same projection: it counts one event twice."""

    def amount(self, event: CloudEvent) -> int:
        return int(event.data["n"]) * (2 if event.data["n"] == 7 else 1)


def expected_totals(count: int, streams: int) -> dict[str, tuple[int, int]]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for event in numbered_events(count, streams=streams):
        totals[event.stream_id][0] += 1
        totals[event.stream_id][1] += event.data["n"]
    return {k: (v[0], v[1]) for k, v in totals.items()}


async def read_view(pool) -> dict[str, tuple[int, int]]:
    rows = await pool.fetch("SELECT stream_id, events, sum_n FROM read_thing_totals.totals")
    return {r["stream_id"]: (r["events"], r["sum_n"]) for r in rows}


async def test_rebuild_equals_live_swaps_without_a_gap_and_a_divergent_one_is_refused(settings, pool, new_topic):
    topic = await new_topic("projection", partitions=3)
    bs = settings.kafka_bootstrap
    await produce(bs, topic, numbered_events(30, streams=5))

    runner = ProjectionRunner(settings, pool, ThingTotals(), [topic], max_records=7)
    live = asyncio.create_task(runner.run())
    reader_errors: list[BaseException] = []
    empty_reads = 0
    reads = 0
    reading = True

    async def reader() -> None:
        nonlocal empty_reads, reads
        async with pool.acquire() as conn:
            while reading:
                try:
                    n = await conn.fetchval("SELECT count(*) FROM read_thing_totals.totals")
                    empty_reads += n == 0
                    reads += 1
                except Exception as exc:  # noqa: BLE001 - any failure is what we look for
                    reader_errors.append(exc)
                await asyncio.sleep(0)

    async def keep_producing() -> None:
        # The log keeps growing during the rebuild, so the live runner keeps moving.
        for start in range(30, 60, 5):
            await produce(bs, topic, numbered_events(5, streams=5, start=start))
            await asyncio.sleep(0.2)

    try:
        await eventually(lambda: _sum_events_is(pool, 30), timeout=60, what="the live projection of 30 events")
        reading_task = asyncio.create_task(reader())
        producing = asyncio.create_task(keep_producing())

        report = await asyncio.wait_for(rebuild(settings, pool, ThingTotals(), [topic]), 120)
        assert report.equal and report.swapped, report.describe()
        assert (report.live_version, report.new_version) == (1, 2)
        assert report.live_checksum == report.rebuilt_checksum
        # Offsets start at 0 and every record is an event: the replay applied exactly up to the
        # live checkpoints, no more, no less.
        assert report.events == sum(report.checkpoints.values())
        assert await pool.fetchval(
            "SELECT active_version FROM civicgrid_projections WHERE projection = 'thing_totals'") == 2

        await producing
        # The live runner carries on, now in version 2, and takes in what was produced meanwhile.
        await eventually(lambda: _sum_events_is(pool, 60), timeout=60, what="all 60 events through the views")
        assert runner.version == 2
        assert await read_view(pool) == expected_totals(60, 5)
        positions = {
            s.labels["partition"]: s.value
            for metric in REGISTRY.collect() if metric.name == "civicgrid_projection_position"
            for s in metric.samples if s.labels["topic"] == topic and s.labels["version"] == "2"
        }
        assert sum(positions.values()) == 60

        # A divergent version is reported and left aside; readers keep seeing version 2.
        bad = await asyncio.wait_for(rebuild(settings, pool, MiscountingThingTotals(), [topic]), 120)
        assert not bad.equal and not bad.swapped
        assert bad.new_version == 3 and bad.live_checksum != bad.rebuilt_checksum
        assert await pool.fetchval(
            "SELECT active_version FROM civicgrid_projections WHERE projection = 'thing_totals'") == 2
        assert await pool.fetchval(
            "SELECT state FROM civicgrid_projection_versions WHERE projection = 'thing_totals' AND version = 3"
        ) == "rejected"
        assert await read_view(pool) == expected_totals(60, 5)
    finally:
        reading = False
        await runner.stop()
        await live
    await reading_task

    assert reads > 0
    assert reader_errors == []
    assert empty_reads == 0


async def _sum_events_is(pool, n: int) -> bool:
    try:
        return await pool.fetchval("SELECT coalesce(sum(events), 0) FROM read_thing_totals.totals") == n
    except asyncpg.UndefinedTableError:
        return False


async def test_a_restarted_runner_resumes_from_its_checkpoints_without_reapplying(settings, pool, new_topic):
    topic = await new_topic("projection-restart", partitions=2)
    await produce(settings.kafka_bootstrap, topic, numbered_events(10, streams=3))
    for life, total in ((1, 10), (2, 16)):
        if life == 2:
            await produce(settings.kafka_bootstrap, topic, numbered_events(6, streams=3, start=10))
        runner = ProjectionRunner(settings, pool, ThingTotals(), [topic], max_records=3)
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: _sum_events_is(pool, total), timeout=60, what=f"{total} events")
            await asyncio.sleep(1.0)  # room for a wrong re-application to show up
        finally:
            await runner.stop()
            await task
    assert await read_view(pool) == expected_totals(16, 3)
    checkpoints = await pool.fetch("SELECT kafka_partition, next_offset FROM civicgrid_projection_checkpoints "
                                   "WHERE projection = 'thing_totals' AND version = 1")
    assert sum(r["next_offset"] for r in checkpoints) == 16
