"""relay_ratio_vs_raw_producer: the outbox relay's throughput over a bare idempotent
aiokafka producer sending the same records to the same broker.

Work: N events of about 1 KB over K aggregates, already committed to the outbox (not timed).
Ours: the relay drains the outbox to Kafka (reads in commit-safe order, sends with the
idempotent acks=all producer, waits for the acks, advances its checkpoint in PostgreSQL).
Peer: the same records (same key, value, headers) sent by a bare producer configured the
same way (idempotent, acks=all), waiting for every ack.
"""
from __future__ import annotations

import asyncio

from civicgrid_common.cloudevents import KafkaRecord
from civicgrid_common.kafka import make_producer

from harness import Result, Timer, fresh_topic, settings


async def raw_producer_rate(records: list[KafkaRecord], topic: str) -> float:
    producer = make_producer(settings())
    await producer.start()
    try:
        with Timer() as t:
            futures = [
                await producer.send(topic, value=r.value, key=r.key, headers=list(r.headers)) for r in records
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(records) / t.seconds


async def fill_outbox(s, topic: str, events: int, streams: int, memo: str) -> None:
    """Append `events` events over `streams` aggregates (not timed)."""
    from civicgrid_common.contracts import Contracts
    from civicgrid_common.db import create_pool
    from civicgrid_common.eventstore import EventStore
    from civicgrid_common.events import NewEvent

    from harness import FIXTURE_CONTRACTS

    pool = await create_pool(s)
    try:
        store = EventStore(
            pool, Contracts(FIXTURE_CONTRACTS), source=s.source, schema_base_url=s.schema_base_url,
            topic_for=lambda _t: topic,
        )
        await store.install()
        per_stream = events // streams

        async def one_stream(i: int) -> None:
            for v in range(0, per_stream, 10):  # ten events per command keeps filling quick
                batch = [
                    NewEvent("civicgrid.test.ledger.credited.v1", {"amount": v + j + 1, "memo": memo})
                    for j in range(min(10, per_stream - v))
                ]
                await store.append(f"ledger-{i}", "ledger", v, batch)

        await asyncio.gather(*(one_stream(i) for i in range(streams)))
    finally:
        await pool.close()


async def relay_rate(s) -> tuple[float, list[KafkaRecord]]:
    """Run the relay until the whole outbox is acknowledged; return events/s and the records."""
    from civicgrid_common.db import create_pool
    from civicgrid_common.outbox.records import headers_from_json
    from civicgrid_common.outbox.relay import OutboxRelay

    pool = await create_pool(s)
    try:
        rows = await pool.fetch(
            "SELECT tx, position, topic, key, value, headers::text AS headers FROM outbox ORDER BY tx, position"
        )
        last = (int(rows[-1]["tx"]), rows[-1]["position"])
        records = [KafkaRecord(r["topic"], r["key"], r["value"], tuple(headers_from_json(r["headers"]))) for r in rows]
        relay = OutboxRelay(pool, s, batch_size=500, poll_interval=0.01, name="bench", retention=None)
        with Timer() as t:
            task = asyncio.create_task(relay.run())
            while relay.checkpoint < last:
                if task.done():
                    task.result()  # surfaces the relay's error
                await asyncio.sleep(0.005)
        relay.stop()
        await task
    finally:
        await pool.close()
    return len(records) / t.seconds, records


async def run(events: int = 20_000, streams: int = 200) -> Result:
    from harness import fresh_database, memo_of_about

    memo = memo_of_about(980)
    async with fresh_database() as s, fresh_topic() as ours_topic, fresh_topic() as peer_topic:
        await fill_outbox(s, ours_topic, events, streams, memo)
        ours, records = await relay_rate(s)
        peer = await raw_producer_rate(records, peer_topic)
    return Result(
        name="relay_ratio_vs_raw_producer",
        ours=ours,
        peer=peer,
        unit="events/s",
        ours_label="OutboxRelay draining the outbox (commit-safe reads, acks=all, checkpoint in PostgreSQL)",
        peer_label="bare AIOKafkaProducer (idempotent, acks=all) sending the same records",
        work=f"{len(records)} events of about 1 KB over {streams} aggregates, 3 partitions",
    )
