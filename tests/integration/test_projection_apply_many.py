"""A projection that applies whole batches (apply_many) ends exactly where one applying event
by event does, live and rebuilt."""
from __future__ import annotations

import asyncio

import asyncpg
import pytest

from test_consumer_support import eventually, numbered_events, produce
from test_projection_rebuild import ThingTotals, expected_totals

from civicgrid_common.cloudevents import CloudEvent
from civicgrid_common.projections import ProjectionRunner, ident, rebuild

pytestmark = pytest.mark.integration


class BatchedThingTotals(ThingTotals):
    name = "thing_totals_batched"

    def __init__(self) -> None:
        self.batches: list[int] = []

    async def apply(self, conn, schema, event):  # the runner must not fall back to this
        raise AssertionError("apply_many should have been used")

    async def apply_many(self, conn: asyncpg.Connection, schema: str, events: list[CloudEvent]) -> None:
        self.batches.append(len(events))
        await conn.executemany(
            f"INSERT INTO {ident(schema)}.totals AS t (stream_id, events, sum_n) VALUES ($1, 1, $2) "
            "ON CONFLICT (stream_id) DO UPDATE SET events = t.events + 1, sum_n = t.sum_n + EXCLUDED.sum_n",
            [(e.subject, self.amount(e)) for e in events],
        )


async def test_batched_projection_equals_the_event_by_event_count(settings, pool, new_topic):
    topic = await new_topic("projection-many", partitions=3)
    await produce(settings.kafka_bootstrap, topic, numbered_events(30, streams=5))
    projection = BatchedThingTotals()
    runner = ProjectionRunner(settings, pool, projection, [topic], max_records=7)
    live = asyncio.create_task(runner.run())

    async def view() -> dict[str, tuple[int, int]]:
        rows = await pool.fetch("SELECT stream_id, events, sum_n FROM read_thing_totals_batched.totals")
        return {r["stream_id"]: (r["events"], r["sum_n"]) for r in rows}

    async def complete() -> bool:
        try:
            return await view() == expected_totals(30, streams=5)
        except asyncpg.UndefinedTableError:
            return False

    try:
        await eventually(complete, timeout=60, what="the batched projection to count all 30 events")
        report = await rebuild(settings, pool, BatchedThingTotals(), [topic])
    finally:
        await runner.stop()
        await asyncio.gather(live, return_exceptions=True)
    assert sum(projection.batches) == 30 and max(projection.batches) > 1
    assert report.equal and report.swapped and report.events == 30, report.describe()
    assert await view() == expected_totals(30, streams=5)
