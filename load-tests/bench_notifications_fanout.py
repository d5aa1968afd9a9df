"""notifications_fanout_ratio_vs_raw_consume: events turned into recorded sends per second by
notifications' consumer, over a bare consumer that only decodes the same events.

Work: N `civicgrid.grid.daily_report.missing.v1` CloudEvents (NOTIFICATIONS_BENCH_EVENTS,
default 10,000) for 1,000 grids on a fresh 3-partition topic. The demo district's rule book
tells each grid's workers in-app: one recorded send per event.
Ours: notifications as its bootstrap wires it (the rule book seeded; no relay, no sender) with
its one consumer on that topic: per event the consumer runtime's inbox claim and transaction,
the rule book brought up to date, the rules matched, the template rendered in the sandbox, the
ledger row and the inbox item with its NOTIFY. The consumer joins its group and handles 200
warm-up events first; then the N events are produced and the clock runs from the first send
until the ledger holds them all (producing is faster than either side consumes).
Peer: `raw_consume_rate` (harness.py): an assigned aiokafka consumer reading the whole topic from
the beginning and decoding every record into a CloudEvent, nothing else.
"""
from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import date, datetime, timedelta, timezone

from harness import Result, fresh_database, fresh_topic, raw_consume_rate, settings

EVENTS = int(os.environ.get("NOTIFICATIONS_BENCH_EVENTS", "10000"))
WARM_UP = 200
GRIDS = [f"320104001{c:03d}{g:03d}" for c in range(1, 41) for g in range(1, 26)]  # 1,000 grids
MISSING = "civicgrid.grid.daily_report.missing.v1"


async def produce(topic: str, start: int, count: int) -> None:
    from civicgrid_common.cloudevents import to_kafka_record
    from civicgrid_common.events import StoredEvent, new_event_id
    from civicgrid_common.kafka import make_producer

    producer = make_producer(settings())
    await producer.start()
    try:
        acks = []
        for i in range(start, start + count):
            grid, day = GRIDS[i % len(GRIDS)], date(2026, 3, 2) + timedelta(days=i // len(GRIDS))
            check = datetime(day.year, day.month, day.day, 9, 0, tzinfo=timezone.utc)
            ev = StoredEvent(
                id=new_event_id(), stream_id=f"daily-report:{grid}:{day.isoformat()}", stream_type="daily_report",
                version=1, position=i + 1, type=MISSING,
                data={"grid": grid, "date": day.isoformat(), "check_at": check.isoformat(),
                      "at": (check + timedelta(seconds=2)).isoformat()},
                metadata={}, recorded_at=datetime.now(timezone.utc), hash="", prev_hash=None)
            r = to_kafka_record(ev, topic=topic, source="/civicgrid/grid", schema_base_url="http://bench")
            acks.append(await producer.send(topic, value=r.value, key=r.key, headers=list(r.headers)))
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def _recorded(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM notification_deliveries")


async def _until(pool, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await _recorded(pool) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{await _recorded(pool)} of {count} sends recorded after {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def ours(topic: str, dead_letters: str) -> tuple[float, float]:
    """Sends recorded per second, and this process's CPU ms per send."""
    from civicgrid_common.consumer import EventConsumer

    from civicgrid_notifications.bootstrap import bootstrap
    from civicgrid_notifications.config import NotificationsSettings
    from civicgrid_notifications.entrypoints.consumers import events_handler

    async with fresh_database() as s:
        config = NotificationsSettings(pg_database=s.pg_database, outbox_relay=False, send=False, consume=False)
        wired = await bootstrap(config)
        # The service's consumer as its bootstrap makes it, on the bench's own topic (not grid's).
        consumer = EventConsumer(config, wired.pool, topics=[topic], group_id=f"bench-{uuid.uuid4().hex[:8]}",
                                 handler=events_handler(wired.state["notifications"]),
                                 dead_letter_topic=dead_letters)
        task = asyncio.create_task(consumer.run())
        try:
            await produce(topic, 0, WARM_UP)
            await _until(wired.pool, WARM_UP, 120)
            await produce(topic, WARM_UP, EVENTS)
            while await _recorded(wired.pool) == WARM_UP:  # the first of the N
                await asyncio.sleep(0.005)
            started, cpu = time.perf_counter(), time.process_time()
            await _until(wired.pool, WARM_UP + EVENTS, 600)
            seconds, cpu_ms = time.perf_counter() - started, (time.process_time() - cpu) * 1000
            items = await wired.pool.fetchval("SELECT count(*) FROM inbox_items")
            if items != WARM_UP + EVENTS:
                raise AssertionError(f"{items} inbox items for {WARM_UP + EVENTS} sends")
        finally:
            await consumer.stop()
            await asyncio.wait_for(task, 30)
            await wired.close()
    return EVENTS / seconds, cpu_ms / EVENTS


async def run() -> Result:
    async with fresh_topic() as topic, fresh_topic(partitions=1) as dead_letters:
        rate, cpu_ms = await ours(topic, dead_letters)
        peer = await raw_consume_rate(settings(), [topic], WARM_UP + EVENTS)
    print(f"  notifications_fanout: ours {rate:,.0f} sends/s ({cpu_ms:.2f} ms CPU each), "
          f"bare decoding consumer {peer:,.0f} events/s, ratio {rate / peer:.3f}", flush=True)
    return Result(
        name="notifications_fanout_ratio_vs_raw_consume",
        ours=rate,
        peer=peer,
        unit="events/s",
        ours_label=("notifications' consumer: inbox claim, rule book, rules matched, template rendered, "
                    "ledger row, its delivered step (event and outbox row) and inbox item in one transaction per event"),
        peer_label="bare AIOKafkaConsumer reading and decoding the same CloudEvents",
        work=(f"{EVENTS:,} daily_report.missing events over 1,000 grids, 3 partitions, one in-app send each, "
              f"after {WARM_UP} warm-up events; ours {cpu_ms:.2f} ms of this process's CPU per send"),
    )


if __name__ == "__main__":
    result = asyncio.run(run())
    print(f"{result.name}: {result.ratio:.3f}")
