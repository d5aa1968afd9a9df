"""eventstore_append_ratio_vs_eventsourcing: our appends over the `eventsourcing` library's
PostgreSQL application recorder, same server, same work.

Work: W concurrent writers, each its own stream, each command appends ONE event of about
1 KB with an expected version (optimistic concurrency). Ours also validates the event
against its JSON Schema, chains its hash and writes its outbox row in the same transaction;
the peer stores the event and its notification id (its global order) only.
"""
from __future__ import annotations

import asyncio
import threading
import uuid

from civicgrid_common.contracts import Contracts
from civicgrid_common.db import create_pool
from civicgrid_common.events import NewEvent

from harness import FIXTURE_CONTRACTS, Result, Timer, fresh_database, memo_of_about

EVENT_TYPE = "civicgrid.test.ledger.credited.v1"


async def ours(writers: int, per_writer: int, memo: str) -> float:
    from civicgrid_common.eventstore import EventStore

    async with fresh_database() as s:
        s = s.model_copy(update={"pg_pool_max": writers})
        pool = await create_pool(s)
        store = EventStore(
            pool,
            Contracts(FIXTURE_CONTRACTS),
            source=s.source,
            schema_base_url=s.schema_base_url,
            topic_for=lambda _t: "bench.ledger",
        )
        await store.install()

        async def writer() -> None:
            stream = f"ledger-{uuid.uuid4()}"
            for version in range(per_writer):
                await store.append(stream, "ledger", version, [NewEvent(EVENT_TYPE, {"amount": version + 1, "memo": memo})])

        with Timer() as t:
            await asyncio.gather(*(writer() for _ in range(writers)))
        await pool.close()
    return writers * per_writer / t.seconds


async def peer(writers: int, per_writer: int, memo: str) -> float:
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    async with fresh_database() as s:
        datastore = PostgresDatastore(
            dbname=s.database, host=s.pg_host, port=s.pg_port, user=s.pg_user, password=s.pg_password,
            pool_size=writers, max_overflow=0,
        )
        recorder = PostgresApplicationRecorder(datastore)
        recorder.create_table()
        # The same JSON document the event carries, as the library stores it (bytes).
        import json

        def writer() -> None:
            originator = uuid.uuid4()
            for version in range(per_writer):
                state = json.dumps({"amount": version + 1, "memo": memo}, ensure_ascii=False).encode()
                recorder.insert_events([StoredEvent(originator, version + 1, EVENT_TYPE, state)])

        threads = [threading.Thread(target=writer) for _ in range(writers)]
        with Timer() as t:
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        datastore.close()
    return writers * per_writer / t.seconds


async def run(writers: int = 8, per_writer: int = 250) -> Result:
    memo = memo_of_about(980)  # the whole JSON document is then about 1 KB
    # warm-up both once on a small load, then measure
    await ours(2, 10, memo)
    await peer(2, 10, memo)
    o = await ours(writers, per_writer, memo)
    p = await peer(writers, per_writer, memo)
    return Result(
        name="eventstore_append_ratio_vs_eventsourcing",
        ours=o,
        peer=p,
        unit="events/s",
        ours_label="civicgrid EventStore.append (schema check, hash chain, outbox row)",
        peer_label="eventsourcing PostgresApplicationRecorder.insert_events",
        work=f"{writers} concurrent writers x {per_writer} commands, one ~1 KB event each with expected version",
    )
