"""The fact store's batch insert and its digest, computed in PostgreSQL: a batch is written once
per event id, and the digest changes with any column of any fact, even one no figure reads."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from civicgrid_common.projections import store as projection_store

from civicgrid_statistics.adapters.fact_store import StatisticsProjection, facts_digest, insert_facts, open_store
from civicgrid_statistics.domain.facts import Fact

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _fact(i: int, **data) -> Fact:
    return Fact(event_id=f"e{i:04d}", kind="intake.case.registered", subject=f"case-{i}",
                recorded_at=T0 + timedelta(minutes=i), occurred_at=T0 + timedelta(minutes=i),
                data={"jurisdiction": "320104001", "affair_code": "A01", **data})


async def test_a_batch_keeps_one_fact_per_event_id_and_the_digest_sees_every_column(pool):
    version = await open_store(pool)
    schema = projection_store.version_schema(StatisticsProjection.name, version)
    async with pool.acquire() as conn:
        empty = await facts_digest(conn, schema)
        assert empty.startswith("0:")

        first = [_fact(i) for i in range(5)]
        # A repeated event id within the batch keeps its first copy, as a row-at-a-time insert did.
        await insert_facts(conn, schema, first + [_fact(2, channel="window")])
        rows = await conn.fetch(f"SELECT event_id, data FROM {schema}.facts ORDER BY event_id")
        assert [r["event_id"] for r in rows] == [f.event_id for f in first]
        assert all("channel" not in r["data"] for r in rows)
        digest = await facts_digest(conn, schema)
        assert digest.startswith("5:") and digest != empty

        # Written again (a replay): nothing changes.
        await insert_facts(conn, schema, first)
        assert await facts_digest(conn, schema) == digest

        # A field no figure reads, a time, a subject: each changes the digest; undone, it is equal again.
        for change, undo in (
            ("data = data || '{\"x\": 1}'", "data = data - 'x'"),
            ("recorded_at = recorded_at + interval '1 second'", "recorded_at = recorded_at - interval '1 second'"),
            ("subject = 'case-x'", "subject = 'case-3'"),
        ):
            await conn.execute(f"UPDATE {schema}.facts SET {change} WHERE event_id = 'e0003'")
            assert await facts_digest(conn, schema) != digest, change
            await conn.execute(f"UPDATE {schema}.facts SET {undo} WHERE event_id = 'e0003'")
            assert await facts_digest(conn, schema) == digest, undo
