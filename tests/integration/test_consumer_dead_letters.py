"""Guarantee: poison events go to the dead-letter topic with their error, and the partition flows on."""
from __future__ import annotations

import asyncio

import pytest

from test_consumer_support import (
    EFFECTS_DDL, effect_counts, eventually, numbered_events, produce, produce_raw, read_topic,
    record_effect, stored_event, unique,
)

from civicgrid_common.cloudevents import to_kafka_record
from civicgrid_common.consumer import EventConsumer, read_dlq_headers
from civicgrid_common.db import install_schema

pytestmark = pytest.mark.integration


async def test_malformed_and_always_failing_events_are_dead_lettered_and_later_events_handled(
    settings, pool, new_topic
):
    topic = await new_topic("consumer-poison", partitions=1)
    dlq = await new_topic("deadletter", partitions=1)
    group = unique("poison")
    await install_schema(pool, [EFFECTS_DDL])
    attempts_on_bad: list[int] = []

    async def handler(conn, event):
        if event.data.get("explode"):
            attempts_on_bad.append(1)
            await record_effect(conn, event)  # an effect that must be rolled back each time
            raise RuntimeError("grid 320104001001099 does not exist")
        await record_effect(conn, event)

    bs = settings.kafka_bootstrap
    await produce(bs, topic, numbered_events(1, start=0), partition=0)                      # offset 0
    await produce_raw(bs, topic, key=b"junk", value=b"\xff not json", partition=0,
                      headers=[("origin", b"legacy-system")])                                # offset 1
    failing = stored_event("thing-9", 1, {"n": 99, "explode": True})
    await produce(bs, topic, [failing], partition=0)                                         # offset 2
    await produce(bs, topic, numbered_events(2, start=1), partition=0)                      # offsets 3, 4

    consumer = EventConsumer(settings, pool, topics=[topic], group_id=group, handler=handler,
                             max_attempts=3, backoff=(0.05, 0.2), dead_letter_topic=dlq)
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _counts_are(pool, {0: 1, 1: 1, 2: 1}), timeout=60,
                         what="the events after the poison ones")
        dead = await read_topic(bs, dlq, expect=2)
    finally:
        await consumer.stop()
        await task

    assert len(attempts_on_bad) == 3
    assert await effect_counts(pool) == {0: 1, 1: 1, 2: 1}  # nothing of the failing event survived

    malformed, failed = sorted(dead, key=lambda r: int(read_dlq_headers(r.headers)["original-offset"]))
    assert (malformed.key, malformed.value) == (b"junk", b"\xff not json")
    assert ("origin", b"legacy-system") in malformed.headers
    info = read_dlq_headers(malformed.headers)
    assert info["original-topic"] == topic
    assert (info["original-partition"], info["original-offset"]) == ("0", "1")
    assert info["consumer-group"] == group
    assert info["error-type"] == "civicgrid_common.cloudevents.MalformedEvent"
    assert "ce_specversion" in info["error-message"]
    assert info["attempts"] == "0" and info["failed-at"].endswith("Z")

    original = to_kafka_record(failing, topic=topic, source="/civicgrid/tests", schema_base_url="http://test/contracts")
    assert (failed.key, failed.value) == (original.key, original.value)
    assert all(h in failed.headers for h in original.headers)
    info = read_dlq_headers(failed.headers)
    assert info["original-offset"] == "2"
    assert info["error-type"] == "builtins.RuntimeError"
    assert info["error-message"] == "grid 320104001001099 does not exist"
    assert info["attempts"] == "3"

    rows = await pool.fetch("SELECT event_id, status, kafka_offset FROM civicgrid_inbox WHERE consumer_group = $1 "
                            "ORDER BY kafka_offset", group)
    assert [(r["kafka_offset"], r["status"]) for r in rows] == [
        (0, "handled"), (1, "dead_lettered"), (2, "dead_lettered"), (3, "handled"), (4, "handled")]
    assert rows[1]["event_id"] == f"kafka:{topic}:0:1"
    assert rows[2]["event_id"] == str(failing.id)


async def test_handling_continues_the_producers_trace(settings, pool, new_topic):
    topic = await new_topic("consumer-trace", partitions=1)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    seen: list[str] = []

    async def handler(conn, event):
        from opentelemetry import trace
        seen.append(format(trace.get_current_span().get_span_context().trace_id, "032x"))

    await produce(settings.kafka_bootstrap, topic,
                  [stored_event("thing-1", 1, {"n": 0}, traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")])
    consumer = EventConsumer(settings, pool, topics=[topic], group_id=unique("trace"), handler=handler,
                             dead_letter_topic=topic)
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _truthy(seen), timeout=30, what="the event to be handled")
    finally:
        await consumer.stop()
        await task
    assert seen == [trace_id]


async def test_an_event_redelivered_to_another_member_is_not_applied_again(settings, pool, new_topic):
    """The inbox alone stops a repeat: the group's offsets are rewound to 0 between two lives."""
    topic = await new_topic("consumer-redeliver", partitions=1)
    group = unique("redeliver")
    await install_schema(pool, [EFFECTS_DDL])
    await produce(settings.kafka_bootstrap, topic, numbered_events(3))
    for life in range(2):
        # The second life starts from offset 0 again, as after a lost commit or an offset
        # reset by an operator: every event is a redelivery.
        consumer = EventConsumer(settings, pool, topics=[topic], group_id=group, handler=record_effect,
                                 dead_letter_topic=topic)
        task = asyncio.create_task(consumer.run())
        try:
            await eventually(lambda: _counts_are(pool, {0: 1, 1: 1, 2: 1}), timeout=30, what="three effects")
            if life == 1:
                await eventually(lambda: _duplicates_are(group, topic, 3), timeout=30,
                                 what="the three redeliveries to be recognised")
        finally:
            await consumer.stop()
            await task
        if life == 0:
            await _reset_group_offsets(settings, topic, group)
    assert await effect_counts(pool) == {0: 1, 1: 1, 2: 1}


async def _reset_group_offsets(settings, topic: str, group: str) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    c = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        await c.commit({tp: OffsetAndMetadata(0, "")})
    finally:
        await c.stop()


async def _counts_are(pool, expected) -> bool:
    return await effect_counts(pool) == expected


async def _duplicates_are(group: str, topic: str, expected: int) -> bool:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value("civicgrid_consumer_events_total",
                                      {"group": group, "topic": topic, "outcome": "duplicate"})
    return (value or 0) == expected


async def _truthy(items) -> bool:
    return bool(items)


async def test_a_poison_event_the_handler_names_is_dead_lettered_at_once_with_nothing_of_its_effect(
    settings, pool, new_topic
):
    """PoisonEvent: no retry can help (a contract violation, a sender without the right), so the
    record goes to the dead-letter topic on the first attempt and the partition moves on."""
    from civicgrid_common.consumer import PoisonEvent

    topic = await new_topic("consumer-poison-now", partitions=1)
    dlq = await new_topic("deadletter", partitions=1)
    group = unique("poison-now")
    await install_schema(pool, [EFFECTS_DDL])
    attempts_on_poison: list[int] = []

    async def handler(conn, event):
        await record_effect(conn, event)  # rolled back with the poison event's transaction
        if event.data.get("forged"):
            attempts_on_poison.append(1)
            raise PoisonEvent("the source is not the department the task went to")

    bs = settings.kafka_bootstrap
    poison = stored_event("thing-7", 1, {"n": 77, "forged": True})
    await produce(bs, topic, [poison], partition=0)                                  # offset 0
    await produce(bs, topic, numbered_events(2, start=0), partition=0)               # offsets 1, 2

    # A large retry budget with slow backoff: were PoisonEvent retried, the test would see it.
    consumer = EventConsumer(settings, pool, topics=[topic], group_id=group, handler=handler,
                             max_attempts=5, backoff=(5.0, 5.0), dead_letter_topic=dlq)
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _counts_are(pool, {0: 1, 1: 1}), timeout=60, what="the events after the poison")
        [dead] = await read_topic(bs, dlq, expect=1)
    finally:
        await consumer.stop()
        await task

    assert attempts_on_poison == [1]
    assert 77 not in await effect_counts(pool)
    headers = read_dlq_headers(dead.headers)
    assert headers["original-offset"] == "0"
    assert headers["error-type"].endswith(".PoisonEvent")
    assert "not the department" in headers["error-message"]
    assert headers["attempts"] == "1"
