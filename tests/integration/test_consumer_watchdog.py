"""The stall watchdog notices a consumer that receives nothing while records wait, and recreates it."""
from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from test_consumer_support import EFFECTS_DDL, effect_counts, eventually, numbered_events, produce, record_effect, unique

from civicgrid_common.consumer import EventConsumer
from civicgrid_common.db import install_schema

pytestmark = pytest.mark.integration


async def test_a_consumer_that_silently_stops_fetching_is_recreated_and_catches_up(settings, pool, new_topic):
    topic = await new_topic("consumer-stall", partitions=2)
    group = unique("stall")
    await install_schema(pool, [EFFECTS_DDL])
    await produce(settings.kafka_bootstrap, topic, numbered_events(4, streams=4))

    consumer = EventConsumer(settings, pool, topics=[topic], group_id=group, handler=record_effect,
                             dead_letter_topic=topic, stall_after=3.0, watchdog_interval=0.5)
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _count_is(pool, 4), timeout=30, what="the first four events")
        # Wedge the live aiokafka consumer the way a silent stall looks from outside: it stays
        # in the group, holds its partitions, heartbeats, and fetches nothing. (Pausing is how
        # we induce it on demand; aiokafka#1154/#847 reach the same state through rebalances.)
        wedged = consumer._consumer
        wedged.pause(*wedged.assignment())
        await produce(settings.kafka_bootstrap, topic, numbered_events(4, streams=4, start=4))
        await eventually(lambda: _count_is(pool, 8), timeout=60, what="the events produced during the stall")
        assert consumer._consumer is not wedged
    finally:
        await consumer.stop()
        await task

    assert consumer.recoveries >= 1
    assert REGISTRY.get_sample_value("civicgrid_consumer_recoveries_total",
                                     {"group": group, "reason": "lag_without_progress"}) >= 1
    assert await effect_counts(pool) == {n: 1 for n in range(8)}


async def _count_is(pool, n: int) -> bool:
    return sum((await effect_counts(pool)).values()) >= n


async def test_the_watchdog_reads_who_holds_which_partitions_from_the_broker(settings, pool, new_topic):
    """The 'partitions nobody holds' check parses the broker's DescribeGroups answer."""
    from aiokafka.admin import AIOKafkaAdminClient

    from civicgrid_common.consumer.watchdog import partitions_held

    topic = await new_topic("consumer-held", partitions=3)
    group = unique("held")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    consumer = EventConsumer(settings, pool, topics=[topic], group_id=group, handler=record_effect,
                             dead_letter_topic=topic)
    task = asyncio.create_task(consumer.run())
    try:
        await consumer.wait_until_assigned(30)
        assert await partitions_held(admin, group, [topic]) == 3
        assert await partitions_held(admin, group, ["some.other.topic"]) == 0
    finally:
        await consumer.stop()
        await task
    try:
        # After a clean stop the member has left: nobody holds anything.
        assert await partitions_held(admin, group, [topic]) == 0
    finally:
        await admin.close()
