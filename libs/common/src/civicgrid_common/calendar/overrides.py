"""The district's calendar overrides in PostgreSQL, as every service keeps them.

An override replaces the official calendar for one day: a local closure (a typhoon day), a
working day the package does not know, or the bridging and swapped working days (调休) of a
year the State Council has announced and chinesecalendar does not cover yet. A year's
schedule is *confirmed* once an admin has entered the announced days (`calendar_schedules`):
until then that year is flagged as missing (the API, /metrics).

One service owns the overrides (intake: its DistrictCalendar aggregate decides, its events
are the record) and publishes them on `civicgrid.intake.calendar`; every service, the owner
included, applies those events to these tables with `apply_calendar_event` (the owner inline,
in the unit of work; the others from the topic, in their consumer's inbox transaction), so
every due date in the system is counted on the same days. Setting a day again replaces its
override (the latest decision counts); every decision is also kept in
`calendar_override_log`, so nothing an admin did is lost.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping

import asyncpg

from civicgrid_common.calendar.contract import OVERRIDE_SET, SCHEDULE_CONFIRMED
from civicgrid_common.calendar.working_days import WorkingCalendar, official_years
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
CREATE TABLE IF NOT EXISTS calendar_schedules (
    year           integer     PRIMARY KEY,
    source         text        NOT NULL,   -- the announcement, e.g. the State Council's notice
    confirmed_by   text        NOT NULL,
    confirmed_at   timestamptz NOT NULL
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


async def list_overrides(db: asyncpg.Pool | asyncpg.Connection) -> list[Override]:
    rows = await db.fetch(
        "SELECT day, is_working_day, reason, set_by, set_at FROM calendar_overrides ORDER BY day")
    return [Override(**dict(r)) for r in rows]


async def load_overrides(pool: asyncpg.Pool) -> dict[date, bool]:
    """The overrides as WorkingCalendar takes them."""
    return {o.day: o.is_working_day for o in await list_overrides(pool)}


async def load_calendar(pool: asyncpg.Pool) -> WorkingCalendar:
    return WorkingCalendar(await load_overrides(pool))


@dataclass(frozen=True)
class Schedule:
    """A year whose announced bridging and swapped working days have been entered."""

    year: int
    source: str
    confirmed_by: str
    confirmed_at: datetime


@dataclass(frozen=True)
class YearStatus:
    year: int
    official: bool  # chinesecalendar has the State Council's schedule of this year
    confirmed: Schedule | None  # an admin confirmed having entered it as overrides

    @property
    def missing(self) -> bool:
        """Holidays known by rule only, the bridging and swapped days not entered yet."""
        return not self.official and self.confirmed is None


async def list_schedules(pool: asyncpg.Pool) -> dict[int, Schedule]:
    rows = await pool.fetch("SELECT year, source, confirmed_by, confirmed_at FROM calendar_schedules ORDER BY year")
    return {r["year"]: Schedule(**dict(r)) for r in rows}


async def year_statuses(pool: asyncpg.Pool, first: int, last: int) -> list[YearStatus]:
    confirmed = await list_schedules(pool)
    official = official_years()
    return [YearStatus(year, year in official, confirmed.get(year)) for year in range(first, last + 1)]


async def apply_calendar_event(conn: asyncpg.Connection, event_type: str, data: Mapping[str, Any]) -> bool:
    """Apply one of the owner's calendar events to this service's tables (in the caller's
    transaction); False for a type this module does not know (a newer event: ignored)."""
    if event_type == OVERRIDE_SET:
        await apply_override(conn, date.fromisoformat(data["date"]), bool(data["is_working_day"]), data["reason"],
                             data["set_by"], datetime.fromisoformat(data["set_at"]))
        return True
    if event_type == SCHEDULE_CONFIRMED:
        await conn.execute(
            """INSERT INTO calendar_schedules (year, source, confirmed_by, confirmed_at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (year) DO UPDATE SET source = EXCLUDED.source, confirmed_by = EXCLUDED.confirmed_by,
                                                confirmed_at = EXCLUDED.confirmed_at""",
            int(data["year"]), data["source"], data["confirmed_by"], datetime.fromisoformat(data["confirmed_at"]))
        return True
    return False


async def apply_override(conn: asyncpg.Connection, day: date, is_working_day: bool, reason: str, who: str,
                         at: datetime) -> Override:
    """Declare `day` a working day or not; replaces an earlier override of the same day."""
    if not reason or not reason.strip():
        raise ValueError("an override needs a reason")
    if not who or not who.strip():
        raise ValueError("an override needs the name of who set it")
    row = await conn.fetchrow(
        """
        INSERT INTO calendar_overrides (day, is_working_day, reason, set_by, set_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (day) DO UPDATE
           SET is_working_day = EXCLUDED.is_working_day, reason = EXCLUDED.reason,
               set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at
        RETURNING day, is_working_day, reason, set_by, set_at
        """,
        day, is_working_day, reason.strip(), who.strip(), at,
    )
    await conn.execute(
        "INSERT INTO calendar_override_log (day, is_working_day, reason, set_by, set_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        row["day"], row["is_working_day"], row["reason"], row["set_by"], row["set_at"],
    )
    return Override(**dict(row))
