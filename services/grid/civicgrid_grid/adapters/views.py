"""grid's read tables beside the event store, written by the unit of work's projectors in the
append's transaction (so they are exactly what the log says), and their reads.

- `grid_view`: every grid ever defined (active or retired) with its details, polygon and
  workers; `grid_generation` counts registry changes so that every replica's locator knows
  when to reload its R-tree.
- `incident_view`, `daily_report_view`, `dispute_view`: one row per incident, grid and day,
  dispute, for the lists and the missing-report check.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Sequence

import asyncpg

from civicgrid_common.db import install_schema
from civicgrid_common.events import StoredEvent

from civicgrid_grid.domain.disputes import Dispute
from civicgrid_grid.domain.geometry import to_geojson
from civicgrid_grid.domain.incident import Incident
from civicgrid_grid.domain.registry import GridRegistry
from civicgrid_grid.domain.reports import DailyReport

VIEWS_DDL = """
CREATE TABLE IF NOT EXISTS grid_view (
    code              text        PRIMARY KEY,
    community         text        NOT NULL,
    active            boolean     NOT NULL,
    kind              text        NOT NULL,
    unit_type         text,
    name              text        NOT NULL,
    households        integer     NOT NULL,
    residents         integer     NOT NULL,
    responsible_party text        NOT NULL,
    polygon           jsonb       NOT NULL,
    revision          integer     NOT NULL,
    workers           text[]      NOT NULL DEFAULT '{}',
    retired_reason    text
);
CREATE INDEX IF NOT EXISTS grid_view_active ON grid_view (active, code);
CREATE TABLE IF NOT EXISTS community_boundary (
    community text  PRIMARY KEY,
    polygon   jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS grid_generation (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    generation bigint  NOT NULL
);
INSERT INTO grid_generation VALUES (true, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS incident_view (
    id             text        PRIMARY KEY,
    version        integer     NOT NULL,
    grid           text        NOT NULL,
    state          text        NOT NULL,
    source         text        NOT NULL,
    classification text        NOT NULL,
    urgent         boolean     NOT NULL,
    handler_kind   text,
    handler_code   text,
    reported_at    timestamptz NOT NULL,
    dispatched_at  timestamptz,
    handling_due   timestamptz,
    closed_at      timestamptz,
    closed_on_time boolean,
    deferred       boolean     NOT NULL,
    rework_count   integer     NOT NULL,
    overdue        text[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS incident_view_grid ON incident_view (grid, reported_at DESC);
CREATE INDEX IF NOT EXISTS incident_view_handler ON incident_view (handler_code, state);
CREATE TABLE IF NOT EXISTS photo_links (
    sha256      text NOT NULL,
    incident_id text NOT NULL,
    PRIMARY KEY (sha256, incident_id)
);
CREATE TABLE IF NOT EXISTS daily_report_view (
    grid         text        NOT NULL,
    day          date        NOT NULL,
    submitted_at timestamptz,
    all_safe     boolean,
    late         boolean     NOT NULL DEFAULT false,
    missing_at   timestamptz,
    PRIMARY KEY (grid, day)
);
CREATE INDEX IF NOT EXISTS daily_report_view_day ON daily_report_view (day, grid);
CREATE TABLE IF NOT EXISTS dispute_view (
    id          text        PRIMARY KEY,
    grid        text        NOT NULL,
    state       text        NOT NULL,
    nature      text        NOT NULL,
    urgency     text        NOT NULL,
    mediations  integer     NOT NULL,
    filed_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS dispute_view_grid ON dispute_view (grid, filed_at DESC);
"""


async def install_views(pool: asyncpg.Pool) -> None:
    await install_schema(pool, [VIEWS_DDL])


class RegistryProjector:
    """A community's grids after each registry change; bumps the generation."""

    stream_types = (GridRegistry.stream_type,)

    async def begin(self, conn: asyncpg.Connection) -> None:
        """Registry changes are rare: the generation row's lock orders them across the district."""

    async def project(self, conn: asyncpg.Connection, r: GridRegistry, stored: Sequence[StoredEvent]) -> None:
        if r.boundary is not None:
            await conn.execute("INSERT INTO community_boundary VALUES ($1, $2) ON CONFLICT (community) DO UPDATE "
                               "SET polygon = EXCLUDED.polygon", r.community.value, to_geojson(r.boundary))
        rows = [(code, r.community.value, True, g.kind.value, g.unit_type.value if g.unit_type else None, g.name,
                 g.households, g.residents, g.responsible_party, to_geojson(g.polygon),
                 r.revisions[code], list(r.workers.get(code, ())), None) for code, g in r.grids.items()]
        await conn.executemany(
            "INSERT INTO grid_view VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) ON CONFLICT (code) DO UPDATE SET "
            "active = true, kind = EXCLUDED.kind, unit_type = EXCLUDED.unit_type, name = EXCLUDED.name, "
            "households = EXCLUDED.households, residents = EXCLUDED.residents, "
            "responsible_party = EXCLUDED.responsible_party, polygon = EXCLUDED.polygon, "
            "revision = EXCLUDED.revision, workers = EXCLUDED.workers, retired_reason = NULL", rows)
        if r.retired:
            await conn.executemany("UPDATE grid_view SET active = false, retired_reason = $2, workers = '{}' "
                                   "WHERE code = $1 AND active", list(r.retired.items()))
        await conn.execute("UPDATE grid_generation SET generation = generation + 1")


class IncidentProjector:
    stream_types = (Incident.stream_type,)

    async def begin(self, conn: asyncpg.Connection) -> None:
        """One row per incident, written under its stream's append."""

    async def project(self, conn: asyncpg.Connection, i: Incident, stored: Sequence[StoredEvent]) -> None:
        key = i.classification.key if i.classification else i.reported_class
        h = i.handler
        await conn.execute(
            "INSERT INTO incident_view VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17) "
            "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, state = EXCLUDED.state, "
            "classification = EXCLUDED.classification, urgent = EXCLUDED.urgent, handler_kind = EXCLUDED.handler_kind, "
            "handler_code = EXCLUDED.handler_code, dispatched_at = EXCLUDED.dispatched_at, "
            "handling_due = EXCLUDED.handling_due, closed_at = EXCLUDED.closed_at, "
            "closed_on_time = EXCLUDED.closed_on_time, deferred = EXCLUDED.deferred, "
            "rework_count = EXCLUDED.rework_count, overdue = EXCLUDED.overdue",
            i.id, i.version, str(i.grid), i.state.value, i.source.value if i.source else "", str(key), i.urgent,
            h.kind.value if h else None, h.code if h else None, i.reported_at, i.dispatched_at, i.handling_due,
            i.closed_at, i.closed_on_time, i.deferred, i.rework_count, sorted(i.overdue))
        photos = {(p, i.id) for e in stored for p in (e.data.get("photos") or ())}
        if photos:  # which incident names which photo: a department sees those of its incidents
            await conn.executemany("INSERT INTO photo_links VALUES ($1, $2) ON CONFLICT DO NOTHING", sorted(photos))


class DailyReportProjector:
    stream_types = (DailyReport.stream_type,)

    async def begin(self, conn: asyncpg.Connection) -> None:
        """One row per grid and day."""

    async def project(self, conn: asyncpg.Connection, r: DailyReport, stored: Sequence[StoredEvent]) -> None:
        await conn.execute(
            "INSERT INTO daily_report_view VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (grid, day) DO UPDATE SET "
            "submitted_at = EXCLUDED.submitted_at, all_safe = EXCLUDED.all_safe, late = EXCLUDED.late, "
            "missing_at = EXCLUDED.missing_at", r.grid, r.day, r.submitted_at, r.all_safe, r.late, r.missing_at)


class DisputeProjector:
    stream_types = (Dispute.stream_type,)

    async def begin(self, conn: asyncpg.Connection) -> None:
        """One row per dispute."""

    async def project(self, conn: asyncpg.Connection, d: Dispute, stored: Sequence[StoredEvent]) -> None:
        await conn.execute("INSERT INTO dispute_view VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (id) DO UPDATE SET "
                           "state = EXCLUDED.state, mediations = EXCLUDED.mediations", d.id, str(d.grid),
                           d.state.value, d.nature.value, d.urgency.value,  # type: ignore[union-attr]
                           len(d.mediations), d.filed_at)


class GridReads:
    """What the API and the daily check read."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def active_codes(self, conn: asyncpg.Connection | None, prefix: str) -> list[str]:
        sql = "SELECT code FROM grid_view WHERE active AND code LIKE $1 || '%' ORDER BY code"
        rows = await (conn.fetch(sql, prefix) if conn is not None else self.pool.fetch(sql, prefix))
        return [r["code"] for r in rows]

    async def active_communities(self, conn: asyncpg.Connection | None, prefix: str) -> list[str]:
        sql = "SELECT DISTINCT community FROM grid_view WHERE active AND code LIKE $1 || '%' ORDER BY community"
        rows = await (conn.fetch(sql, prefix) if conn is not None else self.pool.fetch(sql, prefix))
        return [r["community"] for r in rows]

    async def reported(self, conn: asyncpg.Connection | None, prefix: str, day: date) -> set[str]:
        sql = ("SELECT grid FROM daily_report_view WHERE day = $2 AND submitted_at IS NOT NULL "
               "AND grid LIKE $1 || '%'")
        rows = await (conn.fetch(sql, prefix, day) if conn is not None else self.pool.fetch(sql, prefix, day))
        return {r["grid"] for r in rows}

    async def grid(self, code: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow("SELECT * FROM grid_view WHERE code = $1", code)
        return _grid(row) if row else None

    async def grids(self, community: str, *, include_retired: bool = False) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("SELECT * FROM grid_view WHERE community = $1 AND (active OR $2) ORDER BY code",
                                     community, include_retired)
        return [_grid(r) for r in rows]

    async def day(self, prefix: str, day: date) -> list[dict[str, Any]]:
        """Each active grid under `prefix` with its report (or not) for `day`."""
        rows = await self.pool.fetch(
            "SELECT g.code, r.submitted_at, r.all_safe, r.late, r.missing_at FROM grid_view g "
            "LEFT JOIN daily_report_view r ON r.grid = g.code AND r.day = $2 "
            "WHERE g.active AND g.code LIKE $1 || '%' ORDER BY g.code", prefix, day)
        return [dict(r) for r in rows]

    async def incidents(self, prefixes: Sequence[str], *, department: str | None, grid: str | None,
                        state: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT * FROM incident_view WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) p WHERE grid LIKE p || '%') "
            "AND ($2::text IS NULL OR (handler_kind = 'department' AND handler_code = $2)) "
            "AND ($3::text IS NULL OR grid = $3) AND ($4::text IS NULL OR state = $4) "
            "ORDER BY reported_at DESC, id LIMIT $5 OFFSET $6", list(prefixes), department, grid, state, limit, offset)
        return [dict(r) for r in rows]

    async def photo_of_department(self, sha256: str, department: str) -> bool:
        return bool(await self.pool.fetchval(
            "SELECT true FROM photo_links l JOIN incident_view i ON i.id = l.incident_id WHERE l.sha256 = $1 "
            "AND i.handler_kind = 'department' AND i.handler_code = $2 LIMIT 1", sha256, department))

    async def unknown_incidents(self, grid: str, ids: Sequence[str]) -> list[str]:
        """Of `ids`, those that are no incident filed in `grid`."""
        known = {r["id"] for r in await self.pool.fetch(
            "SELECT id FROM incident_view WHERE grid = $1 AND id = ANY($2::text[])", grid, list(ids))}
        return [i for i in ids if i not in known]

    async def generation(self) -> int:
        return await self.pool.fetchval("SELECT generation FROM grid_generation")

    async def polygons(self) -> list[tuple[str, dict[str, Any]]]:
        rows = await self.pool.fetch("SELECT code, polygon FROM grid_view WHERE active")
        return [(r["code"], r["polygon"]) for r in rows]


def _grid(row: asyncpg.Record) -> dict[str, Any]:
    d = dict(row)
    d["workers"] = list(d["workers"])
    return d


VIEW_TABLES = ("grid_view", "community_boundary", "incident_view", "photo_links", "daily_report_view", "dispute_view")


async def rebuild_views(pool: asyncpg.Pool, store: Any) -> dict[str, int]:
    """Rewrite grid's read tables from the log, in one transaction that locks them (commands
    that would write them wait); returns the streams replayed per stream type."""
    projectors: list[tuple[type, Any]] = [(GridRegistry, RegistryProjector()), (Incident, IncidentProjector()),
                                          (DailyReport, DailyReportProjector()), (Dispute, DisputeProjector())]
    seen: dict[str, int] = {}
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"LOCK TABLE {', '.join(VIEW_TABLES)}, grid_generation IN ACCESS EXCLUSIVE MODE")
        for table in VIEW_TABLES:
            await conn.execute(f"DELETE FROM {table}")
        for cls, projector in projectors:
            ids = await store.stream_ids(cls.stream_type, conn=conn)
            for stream_id in ids:
                events = await store.read_stream(stream_id, conn=conn)
                await projector.project(conn, cls.replay(stream_id, events), events)
            seen[cls.stream_type] = len(ids)
    return seen
