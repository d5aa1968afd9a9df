"""DDL of the durable timers: one row per (owner, key), kept after it fired (the audit record).

status: pending (waiting for due_at, or for next_attempt_at after a failed attempt), fired
(its handler's effect committed with this mark; final: the key can never fire again) or failed
(parked after max_attempts failed attempts; last_error says why; `retry` re-arms it).
attempts counts the handler runs that raised since the timer was (re)scheduled.
"""
from __future__ import annotations

import asyncpg

from civicgrid_common.db import _SCHEMA_LOCK, install_schema

TIMERS_DDL = """
CREATE TABLE IF NOT EXISTS civicgrid_timers (
    owner           text        NOT NULL,
    key             text        NOT NULL,
    kind            text        NOT NULL,
    due_at          timestamptz NOT NULL,
    payload         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'fired', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,   -- due_at, or later while backing off after a failure
    last_error      text,
    scheduled_at    timestamptz NOT NULL DEFAULT now(),
    fired_at        timestamptz,            -- the worker's clock when it fired
    fired_by        text,                   -- which worker (host:pid) fired it
    PRIMARY KEY (owner, key)
);
CREATE INDEX IF NOT EXISTS civicgrid_timers_next ON civicgrid_timers (owner, next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS civicgrid_timers_due ON civicgrid_timers (owner, due_at) WHERE status = 'pending';
-- cancel_unless: the unfired timers under a key prefix, whatever the database's collation.
CREATE INDEX IF NOT EXISTS civicgrid_timers_prefix ON civicgrid_timers (owner, key text_pattern_ops)
    WHERE status <> 'fired';
CREATE INDEX IF NOT EXISTS civicgrid_timers_parked ON civicgrid_timers (owner) WHERE status = 'failed';
"""


async def install_timers(db: asyncpg.Connection | asyncpg.Pool) -> None:
    """Create the timers table if it is missing (idempotent; safe for replicas starting together)."""
    if isinstance(db, asyncpg.Pool):
        await install_schema(db, [TIMERS_DDL])
        return
    async with db.transaction():  # a savepoint when the caller is inside a transaction already
        await db.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        await db.execute(TIMERS_DDL)

