"""PostgreSQL plumbing: a service's database, its pool, and installing platform schemas."""
from __future__ import annotations

import json
from typing import Iterable

import asyncpg

from civicgrid_common.settings import PlatformSettings

# One advisory lock key for schema installation, so that replicas starting together do not
# race each other's CREATE statements.
_SCHEMA_LOCK = 0x63697669  # "civi"


async def ensure_database(settings: PlatformSettings, database: str | None = None) -> None:
    """Create the service's database on the server if it does not exist yet."""
    name = database or settings.database
    conn = await asyncpg.connect(settings.dsn("postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.DuplicateDatabaseError:
                pass  # created by a concurrent starter
    finally:
        await conn.close()


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON columns come and go as Python objects.
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(settings: PlatformSettings, database: str | None = None) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        settings.dsn(database),
        min_size=settings.pg_pool_min,
        max_size=settings.pg_pool_max,
        init=_init_connection,
    )
    assert pool is not None
    return pool


async def install_schema(pool: asyncpg.Pool, sql_texts: Iterable[str]) -> None:
    """Apply idempotent DDL (CREATE ... IF NOT EXISTS) under an advisory lock."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
            for sql in sql_texts:
                await conn.execute(sql)
