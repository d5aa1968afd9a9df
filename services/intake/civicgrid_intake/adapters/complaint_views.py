"""Read models of complaints, kept INLINE: written in the same transaction as the events they
show, so a GET right after a POST sees the change, and rebuildable from the event log.

- `complaint_view`: one row per complaint, what lists, filters and the Open311 request
  listing need (no personal data: the applicant appears only by pseudonymous id).
- `complaint_event_view`: one row per complaint event with the instant it happened, for
  FixMyStreet's `servicerequestupdates` (a time window over every complaint's updates).

Both rows are functions of the event log alone (a complaint's row of its replayed state,
an event's row of the event), which is what lets `rebuild_complaint_views` reproduce the
live tables exactly.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Sequence

import asyncpg

from civicgrid_common.calendar import CHINA_TZ
from civicgrid_common.db import install_schema
from civicgrid_common.events import StoredEvent
from civicgrid_common.eventstore import EventStore

from civicgrid_intake.domain import complaint as c
from civicgrid_intake.domain.complaint import Complaint

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS complaint_view (
    id               text PRIMARY KEY,
    version          integer NOT NULL,
    status           text NOT NULL,
    category         text NOT NULL,
    channel          text NOT NULL,
    urgency          text NOT NULL,
    jurisdiction     text NOT NULL,
    anonymous        boolean NOT NULL,
    applicant_id     text,
    description      text NOT NULL,
    address          text,
    address_id       text,
    lat              double precision,
    long             double precision,
    media_url        text,
    routing_kind     text,
    departments      text[] NOT NULL DEFAULT '{}',
    answer           text,
    resolved         boolean,
    rating           text,
    round            integer NOT NULL,
    received_at      timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    feedback_due_at  timestamptz NOT NULL,
    responded_at     timestamptz,
    closed_at        timestamptz,
    -- Open311: the service code the request was filed under, and the token that resolves
    -- to the request (the id of its received event: unique, and the same after a rebuild).
    service_code     text NOT NULL,
    open311_token    text NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS complaint_view_received ON complaint_view (received_at, id);
CREATE INDEX IF NOT EXISTS complaint_view_jurisdiction ON complaint_view (jurisdiction text_pattern_ops);
CREATE TABLE IF NOT EXISTS complaint_event_view (
    event_id      uuid PRIMARY KEY,
    complaint_id  text NOT NULL,
    position      bigint NOT NULL,
    version       integer NOT NULL,
    type          text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    data          jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS complaint_event_view_when ON complaint_event_view (occurred_at, position);
CREATE INDEX IF NOT EXISTS complaint_event_view_complaint ON complaint_event_view (complaint_id, version);
"""

# Live writers hold this lock shared, a rebuild holds it exclusively: no complaint change can
# commit while the tables are being rebuilt, so none is missed.
_VIEWS_LOCK = 0x63706C76  # "cplv"

# The field of each event that says when it happened (the domain's clock, not the store's).
OCCURRED_AT: dict[str, str] = {
    c.RECEIVED: "received_at",
    c.ROUTED: "routed_at",
    c.RESPONDED: "responded_at",
    c.ANSWERED: "answered_at",
    c.CLOSED: "closed_at",
    c.RATED: "rated_at",
    c.REOPENED: "reopened_at",
}

COLUMNS: tuple[str, ...] = (
    "id", "version", "status", "category", "channel", "urgency", "jurisdiction", "anonymous",
    "applicant_id", "description", "address", "address_id", "lat", "long", "media_url",
    "routing_kind", "departments", "answer", "resolved", "rating", "round", "received_at",
    "updated_at", "feedback_due_at", "responded_at", "closed_at", "service_code", "open311_token",
)
EVENT_COLUMNS: tuple[str, ...] = ("event_id", "complaint_id", "position", "version", "type", "occurred_at", "data")


async def install_complaint_views(pool: asyncpg.Pool) -> None:
    await install_schema(pool, [SCHEMA_SQL])


# ---------------------------------------------------------------------------- rows


def complaint_row(complaint: Complaint, open311_token: str) -> dict[str, Any]:
    """The view row of a complaint's current state."""
    assert complaint.state and complaint.category and complaint.channel and complaint.urgency
    assert complaint.location and complaint.received_at and complaint.updated_at and complaint.feedback_due_at
    point = complaint.location.point
    rating = complaint.ratings[-1] if complaint.ratings else None
    return {
        "id": complaint.id,
        "version": complaint.version,
        "status": complaint.state.value,
        "category": complaint.category.value,
        "channel": complaint.channel.value,
        "urgency": complaint.urgency.value,
        "jurisdiction": complaint.jurisdiction,
        "anonymous": complaint.anonymous,
        "applicant_id": complaint.applicant_id,
        "description": complaint.description,
        "address": complaint.location.address,
        "address_id": complaint.location.address_id,
        "lat": point.lat if point else None,
        "long": point.lon if point else None,
        "media_url": complaint.media_url,
        "routing_kind": complaint.routing.kind if complaint.routing else None,
        "departments": list(complaint.routing.departments()) if complaint.routing else [],
        "answer": complaint.answer,
        "resolved": complaint.resolved,
        "rating": rating.value if rating else None,
        "round": complaint.round,
        "received_at": complaint.received_at,
        "updated_at": complaint.updated_at,
        "feedback_due_at": complaint.feedback_due_at,
        "responded_at": complaint.responded_at,
        "closed_at": complaint.closed_at,
        "service_code": complaint.open311_service_code or complaint.category.value,
        "open311_token": open311_token,
    }


def event_row(event: StoredEvent) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "complaint_id": event.stream_id,
        "position": event.position,
        "version": event.version,
        "type": event.type,
        "occurred_at": datetime.fromisoformat(event.data[OCCURRED_AT[event.type]]),
        "data": dict(event.data),
    }


def _upsert_sql(table: str, columns: Sequence[str], key: str) -> str:
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{col} = EXCLUDED.{col}" for col in columns if col != key)
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}")


_UPSERT_COMPLAINT = _upsert_sql("complaint_view", COLUMNS, "id")
_UPSERT_EVENT = _upsert_sql("complaint_event_view", EVENT_COLUMNS, "event_id")


async def _write(conn: asyncpg.Connection, complaint: Complaint, events: Iterable[StoredEvent]) -> None:
    events = list(events)
    received = [e for e in events if e.type == c.RECEIVED]
    token = str(received[0].id) if received else await conn.fetchval(
        "SELECT open311_token FROM complaint_view WHERE id = $1", complaint.id)
    row = complaint_row(complaint, token)
    await conn.execute(_UPSERT_COMPLAINT, *(row[col] for col in COLUMNS))
    if events:
        rows = [event_row(e) for e in events]
        await conn.executemany(_UPSERT_EVENT, [tuple(r[col] for col in EVENT_COLUMNS) for r in rows])


class ComplaintViewProjector:
    """The unit of work's projector of complaint events onto the complaint views (live updates)."""

    stream_types = (Complaint.stream_type,)

    async def begin(self, conn: asyncpg.Connection) -> None:
        # Before the append: a rebuild then never waits on an appended, uncommitted change.
        await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", _VIEWS_LOCK)

    async def project(self, conn: asyncpg.Connection, complaint: Complaint, stored: Sequence[StoredEvent]) -> None:
        await _write(conn, complaint, stored)


# ---------------------------------------------------------------------------- rebuild


async def rebuild_complaint_views(pool: asyncpg.Pool, store: EventStore, *, batch: int = 1000,
                                  patience: float = 60.0) -> int:
    """Recreate both tables from the event log (store.read_all, in order). Returns how many
    complaints were rebuilt. Complaint changes wait while it runs (see _VIEWS_LOCK)."""
    await install_complaint_views(pool)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _VIEWS_LOCK)
        # Every complaint event there is now is committed (writers append under the shared lock).
        expected = await store.count_events(Complaint.stream_type, conn=conn)
        streams = await _read_complaint_streams(store, expected, batch=batch, patience=patience)
        await conn.execute("TRUNCATE complaint_view, complaint_event_view")
        for complaint_id, events in streams.items():
            events.sort(key=lambda e: e.version)
            await _write(conn, Complaint.replay(complaint_id, events), events)
    return len(streams)


async def _read_complaint_streams(store: EventStore, expected: int, *, batch: int,
                                  patience: float) -> dict[str, list[StoredEvent]]:
    """The complaint events of the log, by stream, once all `expected` of them are readable.

    read_all holds back events of transactions younger than any still running one on the
    server (any database's), so the last events may need a moment to turn up."""
    streams: dict[str, list[StoredEvent]] = {}
    seen, after = 0, 0
    deadline = asyncio.get_running_loop().time() + patience
    while seen < expected:
        events = await store.read_all(after=after, limit=batch)
        if not events:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"only {seen} of {expected} complaint events became readable in {patience}s; "
                                   "a long transaction on the server is holding read_all back")
            await asyncio.sleep(0.05)
            continue
        for event in events:
            if event.stream_type == Complaint.stream_type:
                streams.setdefault(event.stream_id, []).append(event)
                seen += 1
        after = events[-1].position
    return streams


# ---------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class ComplaintFilter:
    """GET /v1/complaints: what the caller may see (jurisdictions, a department's own) and asked for."""

    jurisdictions: tuple[str, ...]
    department: str | None = None  # a department sees only what was routed to it
    statuses: tuple[str, ...] = ()
    category: str | None = None
    within: str | None = None  # a community (or any unit) code: complaints inside it
    received_from: date | None = None
    received_to: date | None = None  # inclusive, a day in China time
    limit: int = 50
    offset: int = 0


def _day_start(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=CHINA_TZ)


async def list_complaints(pool: asyncpg.Pool, f: ComplaintFilter) -> tuple[list[dict[str, Any]], int]:
    """A page of complaints (oldest first) and how many match in all."""
    where = ["EXISTS (SELECT 1 FROM unnest($1::text[]) AS j WHERE starts_with(jurisdiction, j))"]
    args: list[Any] = [list(f.jurisdictions)]

    def add(condition: str, value: Any) -> None:
        args.append(value)
        where.append(condition.format(f"${len(args)}"))

    if f.department is not None:
        add("{} = ANY(departments)", f.department)
    if f.statuses:
        add("status = ANY({}::text[])", list(f.statuses))
    if f.category is not None:
        add("category = {}", f.category)
    if f.within is not None:
        add("starts_with(jurisdiction, {})", f.within)
    if f.received_from is not None:
        add("received_at >= {}", _day_start(f.received_from))
    if f.received_to is not None:
        add("received_at < {}", _day_start(f.received_to + timedelta(days=1)))
    clause = " AND ".join(where)
    total = await pool.fetchval(f"SELECT count(*) FROM complaint_view WHERE {clause}", *args)
    rows = await pool.fetch(
        f"SELECT * FROM complaint_view WHERE {clause} ORDER BY received_at, id "
        f"LIMIT {int(f.limit)} OFFSET {int(f.offset)}",
        *args,
    )
    return [dict(r) for r in rows], total


async def complaint_rows(pool: asyncpg.Pool, ids: Sequence[str]) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT * FROM complaint_view WHERE id = ANY($1::text[]) ORDER BY received_at, id",
                            list(ids))
    return [dict(r) for r in rows]


async def complaints_received_between(
    pool: asyncpg.Pool, start: datetime, end: datetime, *, service_codes: Sequence[str] = (),
    closed: bool | None = None, limit: int = 1000,
) -> list[dict[str, Any]]:
    """For Open311's request listing: received in [start, end], optionally by service code and
    open/closed (closed: closed or rated, the states GeoReport calls closed)."""
    rows = await pool.fetch(
        """
        SELECT * FROM complaint_view
        WHERE received_at BETWEEN $1 AND $2
          AND (cardinality($3::text[]) = 0 OR service_code = ANY($3::text[]))
          AND ($4::boolean IS NULL OR (status IN ('closed', 'rated')) = $4)
        ORDER BY received_at, id
        LIMIT $5
        """,
        start, end, list(service_codes), closed, limit,
    )
    return [dict(r) for r in rows]


async def complaint_by_token(pool: asyncpg.Pool, token: str) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM complaint_view WHERE open311_token = $1", token)
    return dict(row) if row else None


async def complaint_events_between(
    pool: asyncpg.Pool, start: datetime, end: datetime, *, types: Sequence[str], limit: int = 1000,
) -> list[dict[str, Any]]:
    """Complaint events that happened in [start, end], with their complaint's channel."""
    rows = await pool.fetch(
        """
        SELECT e.event_id, e.complaint_id, e.type, e.occurred_at, e.data, v.channel
        FROM complaint_event_view e JOIN complaint_view v ON v.id = e.complaint_id
        WHERE e.occurred_at BETWEEN $1 AND $2 AND e.type = ANY($3::text[])
        ORDER BY e.occurred_at, e.position
        LIMIT $4
        """,
        start, end, list(types), limit,
    )
    return [dict(r) for r in rows]


async def snapshot_tables(pool: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    """Both tables in a stable order (to compare a rebuild with the live tables)."""
    return {
        "complaint_view": [dict(r) for r in await pool.fetch("SELECT * FROM complaint_view ORDER BY id")],
        "complaint_event_view": [
            dict(r) for r in await pool.fetch("SELECT * FROM complaint_event_view ORDER BY position")
        ],
    }
