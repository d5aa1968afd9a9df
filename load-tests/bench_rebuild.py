"""rebuild_ratio_vs_raw_consume: a projection rebuild's rate over a bare aiokafka consumer
that only decodes the same events.

Work: N CloudEvents of about 1 KB on a 3-partition topic (produced before timing).
Ours: `rebuild` of a projection from the beginning into a fresh version (apply each event
and advance the checkpoint in PostgreSQL, then compare checksums and swap).
Peer: a consumer assigned to the same partitions reading from the beginning to the end
offsets and decoding every record into a CloudEvent (headers and JSON), nothing else.
"""
from __future__ import annotations

import asyncio


from harness import Result, Timer, fresh_database, fresh_topic, memo_of_about, raw_consume_rate, settings


class LedgerBalances:
    """A typical read model: one row per aggregate, upserted per event (count and total)."""

    name = "bench_ledger"

    async def create(self, conn, schema: str) -> None:
        from civicgrid_common.projections import ident

        await conn.execute(
            f"CREATE TABLE {ident(schema)}.balances (ledger text PRIMARY KEY, credits int NOT NULL, total bigint NOT NULL)"
        )

    async def apply(self, conn, schema: str, event) -> None:
        from civicgrid_common.projections import ident

        await conn.execute(
            f"""INSERT INTO {ident(schema)}.balances AS b VALUES ($1, 1, $2)
                ON CONFLICT (ledger) DO UPDATE SET credits = b.credits + 1, total = b.total + EXCLUDED.total""",
            event.subject,
            event.data["amount"],
        )

    async def apply_many(self, conn, schema: str, events) -> None:
        # The whole batch as one pipelined executemany: the way a busy read model should apply.
        from civicgrid_common.projections import ident

        await conn.executemany(
            f"""INSERT INTO {ident(schema)}.balances AS b VALUES ($1, 1, $2)
                ON CONFLICT (ledger) DO UPDATE SET credits = b.credits + 1, total = b.total + EXCLUDED.total""",
            [(e.subject, e.data["amount"]) for e in events],
        )

    async def checksum(self, conn, schema: str) -> str:
        from civicgrid_common.projections import table_digest

        return await table_digest(conn, schema, "balances", ["ledger"])


async def produce_events(topic: str, events: int, streams: int, memo: str) -> None:
    from datetime import datetime, timezone

    from civicgrid_common.cloudevents import to_kafka_record
    from civicgrid_common.events import StoredEvent, new_event_id
    from civicgrid_common.kafka import make_producer

    producer = make_producer(settings())
    await producer.start()
    try:
        acks = []
        for i in range(events):
            ev = StoredEvent(
                id=new_event_id(), stream_id=f"ledger-{i % streams}", stream_type="ledger",
                version=i // streams + 1, position=i + 1, type="civicgrid.test.ledger.credited.v1",
                data={"amount": i % 97 + 1, "memo": memo}, metadata={},
                recorded_at=datetime.now(timezone.utc), hash="", prev_hash=None,
            )
            r = to_kafka_record(ev, topic=topic, source="/civicgrid/bench", schema_base_url="http://bench")
            acks.append(await producer.send(topic, value=r.value, key=r.key, headers=list(r.headers)))
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def live_projection_caught_up(s, topic: str, events: int) -> None:
    """Run the live projection until it has applied every event (not timed)."""
    from civicgrid_common.db import create_pool
    from civicgrid_common.projections import ProjectionRunner
    from civicgrid_common.projections import store as pstore

    from civicgrid_common.projections.runner import install

    pool = await create_pool(s)
    await install(pool, LedgerBalances())  # the registry tables exist before we poll them
    runner = ProjectionRunner(s, pool, LedgerBalances(), topics=[topic])
    task = asyncio.create_task(runner.run())
    try:
        while True:
            if task.done():
                task.result()
            async with pool.acquire() as conn:
                version = await pstore.active_version(conn, LedgerBalances.name)
                done = sum((await pstore.read_checkpoints(conn, LedgerBalances.name, version)).values()) if version else 0
            if done >= events:
                break
            await asyncio.sleep(0.2)
    finally:
        await runner.stop()
        await pool.close()


async def rebuild_rate(s, topic: str, events: int) -> float:
    from civicgrid_common.db import create_pool
    from civicgrid_common.projections import rebuild

    pool = await create_pool(s)
    try:
        with Timer() as t:
            report = await rebuild(s, pool, LedgerBalances(), topics=[topic])
        if not (report.equal and report.swapped and report.events == events):
            raise RuntimeError(f"rebuild did not verify: {report.describe()}")
    finally:
        await pool.close()
    return events / t.seconds


async def run(events: int = 20_000, streams: int = 200) -> Result:
    memo = memo_of_about(980)
    async with fresh_database() as s, fresh_topic() as topic:
        await produce_events(topic, events, streams, memo)
        await live_projection_caught_up(s, topic, events)
        ours = await rebuild_rate(s, topic, events)
        peer = await raw_consume_rate(settings(), [topic], events)
    return Result(
        name="rebuild_ratio_vs_raw_consume",
        ours=ours,
        peer=peer,
        unit="events/s",
        ours_label="projections.rebuild: replay into a fresh version (apply_many: one pipelined upsert batch + checkpoint per fetch), verify checksums, swap",
        peer_label="bare AIOKafkaConsumer reading and decoding the same CloudEvents",
        work=f"{events} events of about 1 KB over {streams} aggregates, 3 partitions",
    )
