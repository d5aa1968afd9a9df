"""The fact store in PostgreSQL: one row per event id, in versioned schemas proj_statistics_vN
behind the views of read_statistics (civicgrid_common.projections).

Why figures cannot drift: a fact is written with INSERT ... ON CONFLICT (event_id) DO NOTHING,
and every figure is SQL over the facts. A redelivered, replayed or twice-published event adds
nothing; a worker killed before its PostgreSQL commit leaves nothing; a worker killed after it
leaves a fact that the redelivery finds already there. Nothing is kept in faust's tables.

The live faust workers and a rebuild share the projection's bookkeeping: each worker writes,
in the same transaction as the facts, the next offset of each partition (never moving back),
holding the projection's advisory lock *shared*; a rebuild takes it exclusively to hold every
worker at a transaction boundary while it finishes exactly at those offsets and swaps.
"""
from __future__ import annotations

import json
from typing import Iterable, Mapping, Sequence

import asyncpg
from aiokafka import TopicPartition

from civicgrid_common.cloudevents import CloudEvent
from civicgrid_common.projections import ident, rows_digest
from civicgrid_common.projections import store as projection_store
from civicgrid_common.projections.runner import ensure_active_version, install
from civicgrid_common.unit_of_work import UnitOfWork

from civicgrid_statistics.domain.facts import Fact, fact_of

NAME = "statistics"

_INSERT = """
    INSERT INTO {schema}.facts (event_id, kind, subject, recorded_at, occurred_at, data)
    VALUES ($1, $2, $3, $4, $5, $6::text::jsonb)  -- text: whatever jsonb codec the pool has
    ON CONFLICT (event_id) DO NOTHING
"""


def fact_from_event(event: CloudEvent) -> Fact | None:
    return fact_of(event.id, event.type, event.subject, event.time, event.data)


def _row(fact: Fact) -> tuple:
    return (fact.event_id, fact.kind, fact.subject, fact.recorded_at, fact.occurred_at,
            json.dumps(dict(fact.data), ensure_ascii=False, sort_keys=True))


# A whole batch in one statement (one round trip, one plan) rather than a row at a time:
# the same rows, the same ON CONFLICT (event_id) DO NOTHING. A batch repeating an event id
# keeps its first copy, as a row-at-a-time insert would.
_INSERT_MANY = """
    INSERT INTO {schema}.facts (event_id, kind, subject, recorded_at, occurred_at, data)
    SELECT DISTINCT ON (r.event_id) r.event_id, r.kind, r.subject, r.recorded_at, r.occurred_at, r.data::jsonb
    FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[])
         WITH ORDINALITY AS r(event_id, kind, subject, recorded_at, occurred_at, data, n)
    ORDER BY r.event_id, r.n
    ON CONFLICT (event_id) DO NOTHING
"""


async def insert_facts(conn: asyncpg.Connection, schema: str, facts: Iterable[Fact]) -> None:
    rows = [_row(f) for f in facts]
    if rows:
        await conn.execute(_INSERT_MANY.format(schema=ident(schema)), *map(list, zip(*rows)))


# The facts' digest, computed by PostgreSQL next to the rows instead of shipping every fact to
# Python: SHA-256 over the SHA-256 of each fact (a JSON array of all its columns; jsonb's text
# is canonical) in event id order, and the count. Equal iff both versions hold the same facts.
_FACTS_DIGEST = """
    SELECT count(*) AS n, encode(sha256(coalesce(string_agg(
        sha256(convert_to(json_build_array(event_id, kind, subject, recorded_at, occurred_at, data)::text, 'UTF8')),
        ''::bytea ORDER BY event_id), ''::bytea)), 'hex') AS digest
    FROM {schema}.facts
"""


async def facts_digest(conn: asyncpg.Connection, schema: str) -> str:
    row = await conn.fetchrow(_FACTS_DIGEST.format(schema=ident(schema)))
    return f"{row['n']}:{row['digest']}"


class StatisticsProjection:
    """The fact store as a civicgrid projection: what a rebuild replays into a fresh version."""

    name = NAME

    async def create(self, conn: asyncpg.Connection, schema: str) -> None:
        s = ident(schema)
        await conn.execute(f"""
            CREATE TABLE {s}.facts (
                event_id text PRIMARY KEY,
                kind text NOT NULL,
                subject text NOT NULL,
                recorded_at timestamptz NOT NULL,
                occurred_at timestamptz NOT NULL,
                data jsonb NOT NULL
            )""")
        await conn.execute(f"CREATE INDEX ON {s}.facts (kind, subject)")
        await conn.execute(f"CREATE INDEX ON {s}.facts (subject)")

    async def apply(self, conn: asyncpg.Connection, schema: str, event: CloudEvent) -> None:
        await self.apply_many(conn, schema, [event])

    async def apply_many(self, conn: asyncpg.Connection, schema: str, events: Sequence[CloudEvent]) -> None:
        await insert_facts(conn, schema, (f for f in map(fact_from_event, events) if f is not None))

    async def checksum(self, conn: asyncpg.Connection, schema: str) -> str:
        """A digest over every fact and over every figure computed from them."""
        from civicgrid_statistics.adapters.kpi_sql import all_figures  # the figures read this schema

        facts = await facts_digest(conn, schema)
        figures = rows_digest(await all_figures(conn, schema))
        return f"facts={facts};figures={figures}"


async def open_store(pool: asyncpg.Pool) -> int:
    """Install the bookkeeping and make sure an active version exists; its number."""
    projection = StatisticsProjection()
    await install(pool, projection)
    return await ensure_active_version(pool, projection)


async def _insert_fresh(conn: asyncpg.Connection, schema: str, facts: Sequence[Fact]) -> list[Fact]:
    """Insert the facts; those that were not there yet."""
    fresh = []
    for fact in facts:
        if await conn.fetchval(_INSERT.format(schema=ident(schema)) + " RETURNING event_id", *_row(fact)):
            fresh.append(fact)
    return fresh


async def record(conn: asyncpg.Connection, facts: Sequence[Fact],
                 positions: Mapping[tuple[str, int], int]) -> tuple[str, list[Fact]]:
    """Write facts and advance the checkpoints (next offsets per (topic, partition)) into the
    active version, in the caller's transaction; returns that version's schema and the facts
    that were new."""
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", projection_store.lock_key(NAME))
    version = await projection_store.active_version(conn, NAME)
    if version is None:
        raise RuntimeError("the statistics fact store has no active version; open_store() first")
    schema = projection_store.version_schema(NAME, version)
    fresh = await _insert_fresh(conn, schema, facts)
    if positions:
        await conn.executemany(
            """
            INSERT INTO civicgrid_projection_checkpoints (projection, version, topic, kafka_partition, next_offset)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (projection, version, topic, kafka_partition)
            DO UPDATE SET next_offset = GREATEST(civicgrid_projection_checkpoints.next_offset, EXCLUDED.next_offset)
            """,
            [(NAME, version, topic, partition, off) for (topic, partition), off in positions.items()],
        )
    return schema, fresh


class FactTables:
    """The application's FactLog port: the active version's facts and checkpoints."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, uow: UnitOfWork, facts: Sequence[Fact],
                     positions: Mapping[tuple[str, int], int]) -> tuple[str, list[Fact]]:
        return await record(uow.conn, facts, positions)

    async def checkpoint(self, topic: str, partition: int) -> int | None:
        async with self.pool.acquire() as conn:
            return await checkpoint(conn, TopicPartition(topic, partition))


async def checkpoint(conn: asyncpg.Connection, tp: TopicPartition) -> int | None:
    """The next offset the active version expects from a partition (None: nothing from it yet)."""
    return await conn.fetchval(
        """
        SELECT c.next_offset FROM civicgrid_projection_checkpoints c
        JOIN civicgrid_projections p ON p.projection = c.projection AND p.active_version = c.version
        WHERE c.projection = $1 AND c.topic = $2 AND c.kafka_partition = $3
        """, NAME, tp.topic, tp.partition)
