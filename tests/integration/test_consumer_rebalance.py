"""Consumers recover across rebalances: members join and leave one group while events flow,
and every event's effect happens exactly once."""
from __future__ import annotations

import asyncio

import pytest

from test_consumer_support import EFFECTS_DDL, effect_counts, eventually, numbered_events, produce, record_effect, unique

from civicgrid_common.consumer import EventConsumer

pytestmark = pytest.mark.integration


async def test_members_joining_and_leaving_the_group_lose_and_repeat_nothing(settings, pool, new_topic):
    topic = await new_topic("rebalance", partitions=3)
    await pool.execute(EFFECTS_DDL)
    group = unique("rebalance")
    bs = settings.kafka_bootstrap
    dead_letters = await new_topic("deadletter", partitions=1)

    def member() -> EventConsumer:
        return EventConsumer(settings, pool, topics=[topic], group_id=group, handler=record_effect,
                             poll_timeout=0.2, max_records=5, dead_letter_topic=dead_letters)

    first = member()
    tasks = [asyncio.create_task(first.run())]
    await first.wait_until_assigned(60)
    await produce(bs, topic, numbered_events(20, streams=6))

    # A second member joins: the group rebalances while the first is mid-stream.
    second = member()
    tasks.append(asyncio.create_task(second.run()))
    await second.wait_until_assigned(60)
    await produce(bs, topic, numbered_events(20, streams=6, start=20))

    # The first leaves: its partitions move to the second, which must carry on from the
    # offsets committed for them.
    await first.stop()
    await produce(bs, topic, numbered_events(20, streams=6, start=40))
    try:
        await eventually(lambda: _all_seen(pool, 60), timeout=90, what="all 60 effects")
    finally:
        await second.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
    counts = await effect_counts(pool)
    assert counts == {n: 1 for n in range(60)}


async def _all_seen(pool, expected: int) -> bool:
    return len(await effect_counts(pool)) >= expected
