"""The window's read tables for cases, kept inline with the event store.

- `case_view`: one row per case, as the window's queue and filters need it. Written in the
  same transaction as the case's events (`project`), so a GET right after a POST sees it,
  and rebuildable from the log (`rebuild_case_views`) into exactly the same rows.
- `case_number_sequences`: the daily counter of case numbers per street (受理编号 street +
  date + sequence). Taken with an upsert whose row lock lasts until the accepting transaction
  ends: two clerks of one street never get the same number, and an acceptance that rolls
  back gives its number back (no gaps from refused or conflicting attempts).

Every writer of case_view takes its ROW EXCLUSIVE lock *before* appending events
(`lock_for_writing`): while a rebuild holds the table, no writer can have case events
half-written, which is what lets the rebuild know when it has read everything.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Awaitable, Callable, Sequence

import asyncpg

from civicgrid_common.db import install_schema
from civicgrid_common.events import StoredEvent
from civicgrid_common.eventstore import START, EventStore, GlobalPosition
from civicgrid_common.projections import ident, rows_digest
from civicgrid_common.unit_of_work import UnitOfWork

from civicgrid_intake.application.cases import QueueFilter
from civicgrid_intake.domain import case as c
from civicgrid_intake.domain.routing import routing_from_data

CASE_VIEW = "case_view"
_COLUMNS = (
    "id", "version", "applicant_id", "status", "affair_code", "affair_version", "jurisdiction", "street",
    "community", "channel", "green_channel", "materials_missing", "registered_at", "accepted_at", "due_date",
    "case_number", "awaiting_supplement", "departments",
)


def _case_view_ddl(table: str, *, temporary: bool = False) -> str:
    return f"""
CREATE {"TEMPORARY " if temporary else ""}TABLE IF NOT EXISTS {ident(table)} (
    id                text        PRIMARY KEY,
    version           integer     NOT NULL,          -- the case stream's version this row shows
    applicant_id      text        NOT NULL,          -- pseudonymous, never an identity number
    status            text        NOT NULL,
    affair_code       text        NOT NULL,
    affair_version    integer     NOT NULL,
    jurisdiction      text        NOT NULL CHECK (jurisdiction ~ '^[0-9]{{9}}([0-9]{{3}})?$'),
    street            text        NOT NULL,          -- the first 9 digits of the jurisdiction
    community         text,                          -- the jurisdiction when it is a community
    channel           text        NOT NULL,
    green_channel     boolean     NOT NULL DEFAULT false,
    materials_missing text[]      NOT NULL,
    registered_at     timestamptz NOT NULL,
    accepted_at       timestamptz,
    due_date          date,
    case_number       text        UNIQUE,
    awaiting_supplement boolean   NOT NULL DEFAULT false, -- approval asked for a supplement not yet brought
    departments       text[]      NOT NULL DEFAULT '{{}}'  -- routed to (lead first); a department sees only these
)"""


SCHEMA = [
    _case_view_ddl(CASE_VIEW) + ";",
    # The queue's order: green channel first, then oldest first (id breaks ties).
    "CREATE INDEX IF NOT EXISTS case_view_queue ON case_view (green_channel DESC, registered_at, id);",
    # Tables made before supplements after routing existed get the column (rebuild fills it).
    "ALTER TABLE case_view ADD COLUMN IF NOT EXISTS awaiting_supplement boolean NOT NULL DEFAULT false;",
    "ALTER TABLE case_view ADD COLUMN IF NOT EXISTS departments text[] NOT NULL DEFAULT '{}';",
    "CREATE INDEX IF NOT EXISTS case_view_jurisdiction ON case_view (jurisdiction text_pattern_ops);",
    """
CREATE TABLE IF NOT EXISTS case_number_sequences (
    street        text    NOT NULL CHECK (street ~ '^[0-9]{9}$'),
    day           date    NOT NULL,                  -- the acceptance date in China Standard Time
    last_sequence integer NOT NULL CHECK (last_sequence >= 1),
    PRIMARY KEY (street, day)
);
""",
]


async def install_case_views(pool: asyncpg.Pool) -> None:
    await install_schema(pool, SCHEMA)


async def lock_for_writing(conn: asyncpg.Connection) -> None:
    """The first statement of every transaction that appends case events (see module doc)."""
    await conn.execute(f"LOCK TABLE {ident(CASE_VIEW)} IN ROW EXCLUSIVE MODE")


async def next_case_sequence(conn: asyncpg.Connection, street: str, day: date) -> int:
    """The street's next number of the day; call inside the accepting transaction."""
    return await conn.fetchval(
        """
        INSERT INTO case_number_sequences AS s (street, day, last_sequence) VALUES ($1, $2, 1)
        ON CONFLICT (street, day) DO UPDATE SET last_sequence = s.last_sequence + 1
        RETURNING last_sequence
        """,
        street, day,
    )


# ---------------------------------------------------------------------- the projection


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _registered(conn: asyncpg.Connection, table: str, e: StoredEvent) -> None:
    d = e.data
    jurisdiction = d["jurisdiction"]
    await conn.execute(
        f"""
        INSERT INTO {ident(table)} (id, version, applicant_id, status, affair_code, affair_version, jurisdiction,
                                    street, community, channel, materials_missing, registered_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        """,
        e.stream_id, e.version, d["applicant_id"], c.CaseStatus.REGISTERED.value, d["affair_code"],
        d["affair_version"], jurisdiction, jurisdiction[:9], jurisdiction if len(jurisdiction) == 12 else None,
        d["channel"], list(d["materials_missing"]), _instant(d["registered_at"]),
    )


# Events that only move the case to another status.
_STATUS_AFTER = {c.REFUSED: c.CaseStatus.REFUSED, c.ROUTED: c.CaseStatus.ROUTED, c.WITHDRAWN: c.CaseStatus.WITHDRAWN,
                 c.COMPLETED: c.CaseStatus.COMPLETED, c.ARCHIVED: c.CaseStatus.ARCHIVED}


_CLOSING = frozenset({c.WITHDRAWN, c.COMPLETED, c.ARCHIVED})


def _changes(e: StoredEvent) -> dict[str, Any]:
    """The columns an event (other than registration) changes."""
    d = e.data
    if e.type == c.ACCEPTED:
        return {"status": c.CaseStatus.ACCEPTED.value, "accepted_at": _instant(d["accepted_at"]),
                "due_date": date.fromisoformat(d["due_date"]), "case_number": d["case_number"]}
    if e.type == c.SUPPLEMENTED:
        if "approval_reference" in d:  # answering approval's request: answered when nothing is missing
            return {"materials_missing": list(d["materials_missing"]),
                    "awaiting_supplement": bool(d["materials_missing"])}
        return {"materials_missing": list(d["materials_missing"])}
    if e.type == c.SUPPLEMENT_REQUESTED:
        return {"materials_missing": list(d["materials_requested"]), "awaiting_supplement": True}
    if e.type == c.GREEN_CHANNELLED:
        return {"green_channel": True}
    if e.type == c.ROUTED:
        return {"status": c.CaseStatus.ROUTED.value,
                "departments": list(routing_from_data(d["routing"]).departments())}
    if e.type in _STATUS_AFTER:
        return {"status": _STATUS_AFTER[e.type].value}
    return {}  # certificates, ratings, follow-ups: the queue does not show them


async def project(conn: asyncpg.Connection, events: Sequence[StoredEvent], table: str = CASE_VIEW) -> None:
    """Apply stored case events, in order, to the view (inside the caller's transaction)."""
    for e in events:
        if e.stream_type != c.Case.stream_type:
            continue
        if e.type == c.REGISTERED:
            await _registered(conn, table, e)
            continue
        if e.type in _CLOSING:
            # A closed case waits for no supplement any more: approval's request is moot.
            await conn.execute(f"UPDATE {ident(table)} SET awaiting_supplement = false, materials_missing = '{{}}' "
                               "WHERE id = $1 AND awaiting_supplement", e.stream_id)
        changes = {"version": e.version, **_changes(e)}
        assignments = ", ".join(f"{ident(col)} = ${i}" for i, col in enumerate(changes, start=2))
        await conn.execute(f"UPDATE {ident(table)} SET {assignments} WHERE id = $1",
                           e.stream_id, *changes.values())


# ---------------------------------------------------------------------- reads


async def queue(pool: asyncpg.Pool, f: QueueFilter, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The window's queue: green channel first, then oldest first; a page of it and the total."""
    where = ["jurisdiction LIKE ANY($1::text[])"]
    args: list[Any] = [[code + "%" for code in f.jurisdictions]]  # codes are digits: no wildcards
    for column, op, value in (("status", "=", f.status), ("affair_code", "=", f.affair_code),
                              ("community", "=", f.community), ("registered_at", ">=", f.registered_from),
                              ("registered_at", "<", f.registered_before),
                              ("awaiting_supplement", "=", f.awaiting_supplement)):
        if value is not None:
            args.append(value)
            where.append(f"{column} {op} ${len(args)}")
    condition = " AND ".join(where)
    total = await pool.fetchval(f"SELECT count(*) FROM case_view WHERE {condition}", *args)
    rows = await pool.fetch(
        f"SELECT {', '.join(_COLUMNS)} FROM case_view WHERE {condition} "
        f"ORDER BY green_channel DESC, registered_at, id LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args, limit, offset,
    )
    return [dict(r) for r in rows], total


async def rows(conn: asyncpg.Connection | asyncpg.Pool, table: str = CASE_VIEW) -> list[dict[str, Any]]:
    """Every row, by id: what a rebuild compares."""
    return [dict(r) for r in await conn.fetch(f"SELECT {', '.join(_COLUMNS)} FROM {ident(table)} ORDER BY id")]


class CaseViewProjector:
    """The unit of work's projector of case events onto case_view (its lock first)."""

    stream_types = (c.Case.stream_type,)

    async def begin(self, conn: asyncpg.Connection) -> None:
        await lock_for_writing(conn)

    async def project(self, conn: asyncpg.Connection, case: c.Case, stored: Sequence[StoredEvent]) -> None:
        await project(conn, stored)


class CaseNumberCounter:
    """The application's CaseNumbers port: the daily counter, in the unit's transaction."""

    async def next(self, uow: UnitOfWork, street: str, day: date) -> int:
        return await next_case_sequence(uow.conn, street, day)


class CaseViewReads:
    """The application's CaseViews port: what case_view tells about a case."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def jurisdiction_of(self, case_id: str) -> str | None:
        return await self.pool.fetchval("SELECT jurisdiction FROM case_view WHERE id = $1", case_id)

    async def departments_of(self, case_id: str) -> list[str]:
        return list(await self.pool.fetchval("SELECT departments FROM case_view WHERE id = $1", case_id) or [])

    async def queue(self, f: QueueFilter, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        return await queue(self.pool, f, limit=limit, offset=offset)


# ---------------------------------------------------------------------- rebuild

_NEXT = "case_view_rebuild"
_PAGE = 500


@dataclass(frozen=True)
class CaseViewRebuild:
    events: int  # case events replayed
    rows: int
    live_digest: str  # the live table just before the swap
    rebuilt_digest: str

    @property
    def equal(self) -> bool:
        return self.live_digest == self.rebuilt_digest


async def _replay(conn: asyncpg.Connection, store: EventStore, after: GlobalPosition,
                  applied: int) -> tuple[GlobalPosition, int]:
    """Apply every event read_all gives after `after` to the rebuild table; where it stopped."""
    while page := await store.read_all(after, limit=_PAGE):
        async with conn.transaction():
            await project(conn, page, _NEXT)
        applied += sum(1 for e in page if e.stream_type == c.Case.stream_type)
        after = await store.position_of(page[-1].position)
    return after, applied


async def _until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


async def rebuild_case_views(pool: asyncpg.Pool, store: EventStore, *, catch_up_timeout: float = 60.0
                             ) -> CaseViewRebuild:
    """Recreate case_view from the log (store.read_all) and put it in place of the live rows.

    1. Replay everything into a session-private table next to the live one, writers running on.
    2. Lock case_view against writers (readers go on reading), replay what came meanwhile until
       every committed case event is in, compare digests, and replace the live rows in the
       same transaction. The rebuilt rows are put in even when they differ: the log is the
       truth; the report says whether the live table had drifted.
    """
    async with pool.acquire() as conn:
        await conn.execute(f"DROP TABLE IF EXISTS pg_temp.{ident(_NEXT)}")
        await conn.execute(_case_view_ddl(_NEXT, temporary=True))
        try:
            position, applied = await _replay(conn, store, START, 0)
            async with conn.transaction():
                await conn.execute(f"LOCK TABLE {ident(CASE_VIEW)} IN EXCLUSIVE MODE")

                async def caught_up() -> bool:
                    nonlocal position, applied
                    position, applied = await _replay(conn, store, position, applied)
                    # A transaction of another aggregate still running holds read_all back; wait.
                    committed = await store.count_events(c.Case.stream_type, conn=conn)
                    return applied == committed

                await _until(caught_up, catch_up_timeout, "the rebuild of case_view could not read every case event")
                live = rows_digest(await rows(conn))
                rebuilt_rows = await rows(conn, _NEXT)
                await conn.execute(f"DELETE FROM {ident(CASE_VIEW)}")
                await conn.execute(f"INSERT INTO {ident(CASE_VIEW)} ({', '.join(_COLUMNS)}) "
                                   f"SELECT {', '.join(_COLUMNS)} FROM pg_temp.{ident(_NEXT)}")
            return CaseViewRebuild(applied, len(rebuilt_rows), live, rows_digest(rebuilt_rows))
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS pg_temp.{ident(_NEXT)}")
