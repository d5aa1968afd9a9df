"""Edges of effectively-once found in review: duplicates the relay may publish, handlers that
swallow a database error, and an operator replaying a dead letter."""
from __future__ import annotations

import asyncio

import asyncpg
import pytest

from test_consumer_support import EFFECTS_DDL, effect_counts, eventually, numbered_events, produce, record_effect, unique
from test_projection_rebuild import ThingTotals

from civicgrid_common.consumer import EventConsumer
from civicgrid_common.projections import ProjectionRunner, rebuild

pytestmark = pytest.mark.integration


async def test_a_projection_applies_an_event_published_twice_only_once(settings, pool, new_topic):
    topic = await new_topic("dupes", partitions=1)
    events = numbered_events(5, streams=2)
    # What a relay killed before its checkpoint leaves in the log: the same events again.
    await produce(settings.kafka_bootstrap, topic, events + events[2:])
    runner = ProjectionRunner(settings, pool, ThingTotals(), [topic])
    task = asyncio.create_task(runner.run())

    async def totals() -> dict[str, tuple[int, int]]:
        try:
            rows = await pool.fetch("SELECT stream_id, events, sum_n FROM read_thing_totals.totals")
        except asyncpg.UndefinedTableError:
            return {}
        return {r["stream_id"]: (r["events"], r["sum_n"]) for r in rows}

    async def checkpoint_at_end() -> bool:
        try:
            return await pool.fetchval(
                "SELECT coalesce(sum(next_offset), 0) FROM civicgrid_projection_checkpoints") == 8
        except asyncpg.UndefinedTableError:  # the runner has not installed its tables yet
            return False

    try:
        await eventually(checkpoint_at_end, timeout=60, what="the runner to read all 8 records")
        report = await rebuild(settings, pool, ThingTotals(), [topic])
    finally:
        await runner.stop()
        await asyncio.gather(task, return_exceptions=True)
    assert await totals() == {"thing-0": (3, 0 + 2 + 4), "thing-1": (2, 1 + 3)}
    assert report.equal and report.events == 5


async def test_a_handler_that_swallows_a_database_error_is_retried_not_lost(settings, pool, new_topic):
    topic = await new_topic("swallow", partitions=1)
    await pool.execute(EFFECTS_DDL)
    await pool.execute("CREATE TABLE once (k text PRIMARY KEY); INSERT INTO once VALUES ('taken')")
    attempts = {"n": 0}

    async def careless(conn, event) -> None:
        attempts["n"] += 1
        await record_effect(conn, event)
        if attempts["n"] == 1:
            # the "insert and ignore a duplicate" idiom, done without a savepoint, as the last
            # statement: nothing after it would notice the aborted transaction
            try:
                await conn.execute("INSERT INTO once VALUES ('taken')")
            except asyncpg.UniqueViolationError:
                pass

    consumer = EventConsumer(settings, pool, topics=[topic], group_id=unique("swallow"), handler=careless,
                             backoff=(0.05, 0.1), poll_timeout=0.2,
                             dead_letter_topic=await new_topic("deadletter", partitions=1))
    task = asyncio.create_task(consumer.run())
    await produce(settings.kafka_bootstrap, topic, numbered_events(1))
    try:
        await eventually(lambda: _has_effect(pool), timeout=20, what="the effect")
    finally:
        await consumer.stop()
        await asyncio.gather(task, return_exceptions=True)
    assert attempts["n"] == 2  # the aborted first attempt was noticed and retried
    assert await effect_counts(pool) == {0: 1}


async def test_a_replayed_dead_letter_is_handled_once_its_cause_is_fixed(settings, pool, new_topic):
    topic = await new_topic("replay", partitions=1)
    await pool.execute(EFFECTS_DDL)
    broken = {"yes": True}

    async def handler(conn, event) -> None:
        if broken["yes"]:
            raise RuntimeError("the downstream register is down")
        await record_effect(conn, event)

    group = unique("replay")
    consumer = EventConsumer(settings, pool, topics=[topic], group_id=group, handler=handler,
                             max_attempts=2, backoff=(0.05, 0.1), poll_timeout=0.2,
                             dead_letter_topic=await new_topic("deadletter", partitions=1))
    task = asyncio.create_task(consumer.run())
    event = numbered_events(1)
    try:
        await produce(settings.kafka_bootstrap, topic, event)
        await eventually(lambda: _inbox_status(pool, group, "dead_lettered"), timeout=60, what="the dead letter")
        broken["yes"] = False
        await produce(settings.kafka_bootstrap, topic, event)  # the operator re-produces the record
        await eventually(lambda: _has_effect(pool), timeout=60, what="the replayed event's effect")
        await produce(settings.kafka_bootstrap, topic, event)  # and a plain redelivery stays a duplicate
        await asyncio.sleep(1.0)
    finally:
        await consumer.stop()
        await asyncio.gather(task, return_exceptions=True)
    assert await effect_counts(pool) == {0: 1}
    assert await _inbox_status(pool, group, "handled")


async def _has_effect(pool) -> bool:
    return bool(await effect_counts(pool))


async def _inbox_status(pool, group: str, status: str) -> bool:
    # The consumer creates its inbox when it starts: until then there is no table to look in.
    if not await pool.fetchval("SELECT to_regclass('civicgrid_inbox') IS NOT NULL"):
        return False
    return await pool.fetchval(
        "SELECT status FROM civicgrid_inbox WHERE consumer_group = $1", group) == status
