"""Helpers for the consumer and projection guarantee tests (no tests in here).

Events are built by hand as StoredEvents and produced with aiokafka in CloudEvents binary
mode, exactly as the outbox relay would, so these tests depend on nothing but the codec.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Iterable

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from civicgrid_common.cloudevents import CloudEvent, to_kafka_record
from civicgrid_common.events import StoredEvent, new_event_id

EVENT_TYPE = "civicgrid.test.thing.recorded.v1"

EFFECTS_DDL = """
CREATE TABLE IF NOT EXISTS effects (
    event_id text NOT NULL,   -- deliberately not unique: a repeated effect must be visible
    stream_id text NOT NULL,
    n integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def stored_event(stream_id: str, version: int, data: dict[str, Any], *, traceparent: str | None = None) -> StoredEvent:
    content = f"{stream_id}:{version}:{sorted(data.items())}".encode()
    return StoredEvent(
        id=new_event_id(), stream_id=stream_id, stream_type="thing", version=version, position=0,
        type=EVENT_TYPE, data=data, metadata={"traceparent": traceparent} if traceparent else {},
        recorded_at=datetime.now(timezone.utc), hash=hashlib.sha256(content).hexdigest(), prev_hash=None,
    )


def numbered_events(count: int, *, streams: int = 1, start: int = 0) -> list[StoredEvent]:
    """`count` events numbered n = start.., spread round-robin over `streams` aggregates."""
    return [
        stored_event(f"thing-{i % streams}", version=i // streams + 1, data={"n": i})
        for i in range(start, start + count)
    ]


async def produce(bootstrap: str, topic: str, events: Iterable[StoredEvent], *, partition: int | None = None,
                  source: str = "/civicgrid/tests") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for event in events:
            rec = to_kafka_record(event, topic=topic, source=source, schema_base_url="http://test/contracts")
            await producer.send_and_wait(topic, key=rec.key, value=rec.value, headers=list(rec.headers),
                                         partition=partition)
    finally:
        await producer.stop()


async def produce_raw(bootstrap: str, topic: str, *, key: bytes, value: bytes,
                      headers: list[tuple[str, bytes]], partition: int | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, key=key, value=value, headers=headers, partition=partition)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, *, expect: int, timeout: float = 30.0) -> list[Any]:
    """The first `expect` records of `topic` (all partitions), failing after `timeout`."""
    # Subscribed without a group: aiokafka assigns every partition and starts at the earliest.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < expect:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(records)} of {expect} records on {topic} after {timeout}s")
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def record_effect(conn: asyncpg.Connection, event: CloudEvent) -> None:
    """A handler whose effect is one row per application, so a repeat shows up as a count of 2."""
    await conn.execute("INSERT INTO effects (event_id, stream_id, n) VALUES ($1, $2, $3)",
                       event.id, event.subject, int(event.data["n"]))


async def effect_counts(pool: asyncpg.Pool) -> dict[int, int]:
    rows = await pool.fetch("SELECT n, count(*) AS c FROM effects GROUP BY n")
    return {r["n"]: r["c"] for r in rows}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
