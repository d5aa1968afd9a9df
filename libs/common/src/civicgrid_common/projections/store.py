"""Where projections keep their bookkeeping in PostgreSQL.

- `civicgrid_projection_versions`: every version ever built, its schema and state.
- `civicgrid_projections`: the registry, one row per projection naming its active version.
- `civicgrid_projection_checkpoints`: per version, the next offset per topic partition; it is
  written in the same transaction as the rows it accounts for.
- schema `read_<name>`: one view per table, pointing at the active version's table. Readers
  query only these, so a swap is invisible to them.
"""
from __future__ import annotations

import zlib

import asyncpg
from aiokafka import TopicPartition

from civicgrid_common.projections.protocol import Projection, ident

DDL = [
    """
    CREATE TABLE IF NOT EXISTS civicgrid_projection_versions (
        projection text NOT NULL,
        version integer NOT NULL CHECK (version > 0),
        schema_name text NOT NULL UNIQUE,
        state text NOT NULL CHECK (state IN ('building', 'active', 'retired', 'rejected')),
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (projection, version)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS civicgrid_projections (
        projection text PRIMARY KEY,
        active_version integer NOT NULL,
        swapped_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS civicgrid_projection_checkpoints (
        projection text NOT NULL,
        version integer NOT NULL,
        topic text NOT NULL,
        kafka_partition integer NOT NULL,
        next_offset bigint NOT NULL CHECK (next_offset >= 0),
        PRIMARY KEY (projection, version, topic, kafka_partition)
    )
    """,
    # The ids of the events each version has applied: the relay publishes at least once, so
    # the same event can sit in the log twice; a version applies it only the first time.
    """
    CREATE TABLE IF NOT EXISTS civicgrid_projection_applied (
        projection text NOT NULL,
        version integer NOT NULL,
        event_id text NOT NULL,
        PRIMARY KEY (projection, version, event_id)
    )
    """,
]


async def first_sightings(conn: asyncpg.Connection, name: str, version: int, event_ids: list[str]) -> set[str]:
    """Record the ids as applied by this version; return those it had not applied before."""
    rows = await conn.fetch(
        """
        INSERT INTO civicgrid_projection_applied (projection, version, event_id)
        SELECT $1, $2, unnest($3::text[])
        ON CONFLICT DO NOTHING
        RETURNING event_id
        """,
        name, version, event_ids,
    )
    return {r["event_id"] for r in rows}

Checkpoints = dict[TopicPartition, int]


def version_schema(name: str, version: int) -> str:
    return f"proj_{name}_v{version}"


def read_schema(name: str) -> str:
    return f"read_{name}"


def lock_key(name: str) -> int:
    """The advisory lock a live runner holds per batch, and a rebuild holds to pause it."""
    return zlib.crc32(f"civicgrid.projection:{name}".encode())  # stable across processes, unlike hash()


async def active_version(conn: asyncpg.Connection, name: str) -> int | None:
    return await conn.fetchval("SELECT active_version FROM civicgrid_projections WHERE projection = $1", name)


async def read_checkpoints(conn: asyncpg.Connection, name: str, version: int) -> Checkpoints:
    rows = await conn.fetch(
        "SELECT topic, kafka_partition, next_offset FROM civicgrid_projection_checkpoints "
        "WHERE projection = $1 AND version = $2", name, version,
    )
    return {TopicPartition(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}


async def write_checkpoints(conn: asyncpg.Connection, name: str, version: int, positions: Checkpoints) -> None:
    await conn.executemany(
        """
        INSERT INTO civicgrid_projection_checkpoints (projection, version, topic, kafka_partition, next_offset)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (projection, version, topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset
        """,
        [(name, version, tp.topic, tp.partition, off) for tp, off in positions.items()],
    )


async def create_version(conn: asyncpg.Connection, projection: Projection, version: int) -> str:
    """A fresh schema for `version` with the projection's tables in it (state 'building')."""
    schema = version_schema(projection.name, version)
    async with conn.transaction():
        await conn.execute(f"CREATE SCHEMA {ident(schema)}")
        await projection.create(conn, schema)
        await conn.execute(
            "INSERT INTO civicgrid_projection_versions (projection, version, schema_name, state) "
            "VALUES ($1, $2, $3, 'building')", projection.name, version, schema,
        )
    return schema


async def next_version(conn: asyncpg.Connection, name: str) -> int:
    latest = await conn.fetchval(
        "SELECT max(version) FROM civicgrid_projection_versions WHERE projection = $1", name)
    return (latest or 0) + 1


async def point_views_at(conn: asyncpg.Connection, name: str, version: int) -> None:
    """Make read_<name>.<table> select from version's tables; call inside a transaction.

    CREATE OR REPLACE VIEW swaps a view atomically and without blocking readers for long;
    when a table's columns changed between versions it cannot, and the view is replaced by
    DROP + CREATE in the same transaction (readers wait for the commit, then see the new one)."""
    source, target = version_schema(name, version), read_schema(name)
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(target)}")
    tables = [r["table_name"] for r in await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' "
        "ORDER BY table_name", source)]
    for table in tables:
        view, select = f"{ident(target)}.{ident(table)}", f"SELECT * FROM {ident(source)}.{ident(table)}"
        try:
            async with conn.transaction():  # a savepoint
                await conn.execute(f"CREATE OR REPLACE VIEW {view} AS {select}")
        except asyncpg.PostgresError:
            await conn.execute(f"DROP VIEW IF EXISTS {view}")
            await conn.execute(f"CREATE VIEW {view} AS {select}")
    stale = await conn.fetch(
        "SELECT table_name FROM information_schema.views WHERE table_schema = $1 AND NOT (table_name = ANY($2::text[]))",
        target, tables)
    for row in stale:
        await conn.execute(f"DROP VIEW {ident(target)}.{ident(row['table_name'])}")


async def activate(conn: asyncpg.Connection, name: str, version: int) -> None:
    """Registry, version states and views to `version`, in one transaction."""
    async with conn.transaction():
        previous = await conn.fetchval(
            "SELECT active_version FROM civicgrid_projections WHERE projection = $1 FOR UPDATE", name)
        await conn.execute(
            """
            INSERT INTO civicgrid_projections (projection, active_version) VALUES ($1, $2)
            ON CONFLICT (projection) DO UPDATE SET active_version = EXCLUDED.active_version, swapped_at = now()
            """, name, version)
        if previous is not None and previous != version:
            await conn.execute(
                "UPDATE civicgrid_projection_versions SET state = 'retired' WHERE projection = $1 AND version = $2",
                name, previous)
        await conn.execute(
            "UPDATE civicgrid_projection_versions SET state = 'active' WHERE projection = $1 AND version = $2",
            name, version)
        await point_views_at(conn, name, version)


async def reject(conn: asyncpg.Connection, name: str, version: int) -> None:
    await conn.execute(
        "UPDATE civicgrid_projection_versions SET state = 'rejected' WHERE projection = $1 AND version = $2",
        name, version)
