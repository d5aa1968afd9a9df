"""Calendar overrides in PostgreSQL: a day an admin declared working or not, with who and why.

An override replaces the official calendar for one day: a local closure (a typhoon day), a
working day the package does not know, or a whole year's holidays once the State Council
publishes them and before a chinesecalendar release has them. Setting a day again replaces
its override (the latest decision counts); every decision is also kept in
`calendar_override_log`, so nothing an admin did is lost.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from civicgrid_common.calendar.working_days import WorkingCalendar
from civicgrid_common.db import install_schema

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS calendar_overrides (
    day            date        PRIMARY KEY,
    is_working_day boolean     NOT NULL,
    reason         text        NOT NULL CHECK (length(btrim(reason)) > 0),
    set_by         text        NOT NULL CHECK (length(btrim(set_by)) > 0),
    set_at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS calendar_override_log (
    id             bigserial   PRIMARY KEY,
    day            date        NOT NULL,
    is_working_day boolean     NOT NULL,
    reason         text        NOT NULL,
    set_by         text        NOT NULL,
    set_at         timestamptz NOT NULL
);
"""


@dataclass(frozen=True)
class Override:
    day: date
    is_working_day: bool
    reason: str
    set_by: str  # who: the admin's subject
    set_at: datetime  # when (UTC)


async def install_calendar_schema(pool: asyncpg.Pool) -> None:
    await install_schema(pool, [SCHEMA_SQL])


async def list_overrides(pool: asyncpg.Pool) -> list[Override]:
    rows = await pool.fetch(
        "SELECT day, is_working_day, reason, set_by, set_at FROM calendar_overrides ORDER BY day")
    return [Override(**dict(r)) for r in rows]


async def load_overrides(pool: asyncpg.Pool) -> dict[date, bool]:
    """The overrides as WorkingCalendar takes them."""
    return {o.day: o.is_working_day for o in await list_overrides(pool)}


async def load_calendar(pool: asyncpg.Pool) -> WorkingCalendar:
    return WorkingCalendar(await load_overrides(pool))


async def add_override(pool: asyncpg.Pool, day: date, is_working_day: bool, reason: str, who: str) -> Override:
    """Declare `day` a working day or not; replaces an earlier override of the same day."""
    if not reason or not reason.strip():
        raise ValueError("an override needs a reason")
    if not who or not who.strip():
        raise ValueError("an override needs the name of who set it")
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """
            INSERT INTO calendar_overrides (day, is_working_day, reason, set_by)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (day) DO UPDATE
               SET is_working_day = EXCLUDED.is_working_day, reason = EXCLUDED.reason,
                   set_by = EXCLUDED.set_by, set_at = now()
            RETURNING day, is_working_day, reason, set_by, set_at
            """,
            day, is_working_day, reason.strip(), who.strip(),
        )
        await conn.execute(
            "INSERT INTO calendar_override_log (day, is_working_day, reason, set_by, set_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            row["day"], row["is_working_day"], row["reason"], row["set_by"], row["set_at"],
        )
    return Override(**dict(row))
