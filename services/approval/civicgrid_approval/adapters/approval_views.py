"""approval's tables beside the event store, written in the append's transaction.

- `approval_view`: one row per approval with its current task and who may act on it (roles,
  the code whose jurisdiction covers it, the departments), for the inbox and GET /v1/approvals.
  Written from the aggregate's state after each save, so it is exactly what replaying the
  stream gives (`rebuild_views` rewrites it from the log).
- `reviewer_counts`: per reviewer (token subject) and action, how many moves they made.
- `approval_archive`: the archive record of a concluded approval and its SHA-256 digest.

`ApprovalViewProjector` is the unit of work's projector that writes them; `ApprovalViewReads`
what the API and the verification read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Sequence

import asyncpg

from civicgrid_common.db import install_schema
from civicgrid_common.events import StoredEvent
from civicgrid_common.eventstore import EventStore
from civicgrid_common.identity.principal import Principal, Role

from civicgrid_approval.domain.approval import ACTED, Approval, Status, archive_digest
from civicgrid_approval.domain.definition import Level, StepKind

VIEWS_DDL = """
CREATE TABLE IF NOT EXISTS approval_view (
    id             text        PRIMARY KEY,
    version        integer     NOT NULL,
    case_id        text        NOT NULL,
    case_number    text,
    affair_code    text        NOT NULL,
    workflow_version integer   NOT NULL,
    status         text        NOT NULL,
    jurisdiction   text        NOT NULL,
    step           text        NOT NULL,
    task           text        NOT NULL,
    level          text        NOT NULL,
    kind           text        NOT NULL,
    may_act_roles  text[]      NOT NULL,   -- who may act on the current task
    scope          text        NOT NULL,   -- the unit whose jurisdiction covers the task
    departments    text[]      NOT NULL,   -- bureau/department tasks: whose (empty: any)
    concerns       text[]      NOT NULL DEFAULT '{}',  -- every department of its flow (and an access applicant)
    escalated      boolean     NOT NULL,
    green_channel  boolean     NOT NULL,
    started_at     timestamptz NOT NULL,
    entered_at     timestamptz NOT NULL,
    due_date       date        NOT NULL,
    warned         boolean     NOT NULL,
    overdue        boolean     NOT NULL,
    outcome        text
);
ALTER TABLE approval_view ADD COLUMN IF NOT EXISTS concerns text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS approval_view_inbox ON approval_view (status, green_channel DESC, entered_at);
CREATE INDEX IF NOT EXISTS approval_view_case ON approval_view (case_id);
CREATE TABLE IF NOT EXISTS reviewer_counts (
    subject  text    NOT NULL,
    action   text    NOT NULL,
    count    integer NOT NULL,
    PRIMARY KEY (subject, action)
);
CREATE TABLE IF NOT EXISTS approval_archive (
    approval_id  text        PRIMARY KEY,
    digest       text        NOT NULL,
    record       jsonb       NOT NULL,
    archived_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS access_grants (
    approval_id  text        PRIMARY KEY,
    department   text        NOT NULL,
    title        text        NOT NULL,
    work_kind    text        NOT NULL,
    communities  text[]      NOT NULL,
    cost_bearer  text        NOT NULL,
    valid_from   date        NOT NULL,
    valid_until  date        NOT NULL,
    decided_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS access_grants_communities ON access_grants USING gin (communities);
"""

ROW_COLUMNS = (
    "id", "version", "case_id", "case_number", "affair_code", "workflow_version", "status", "jurisdiction", "step",
    "task", "level", "kind", "may_act_roles", "scope", "departments", "escalated", "green_channel", "started_at",
    "entered_at", "due_date", "warned", "overdue", "outcome", "concerns",
)


async def install_views(pool: asyncpg.Pool) -> None:
    await install_schema(pool, [VIEWS_DDL])


def view_row(a: Approval) -> dict[str, Any]:
    step = a.step
    if step.kind is StepKind.DEPARTMENT_SYSTEM:
        roles, departments = [Role.DEPARTMENT.value], [step.department]
    elif step.kind is StepKind.PARALLEL:
        pending = [b for b in step.branches if b.id in a.pending_branches()] or list(step.branches)
        roles = sorted({r.value for b in pending for r in b.roles})
        departments = [b.department for b in pending]
    else:
        roles = sorted(r.value for r in step.roles)
        departments = [step.department] if step.level is Level.BUREAU and step.department else []
    if a.escalated:
        roles = [Role.LEADER.value]
    scope = {Level.COMMUNITY: a.community() or a.street(), Level.STREET: a.street()}.get(step.level, a.district())
    return {
        "id": a.id, "version": a.version, "case_id": a.case_id, "case_number": a.case_number,
        "affair_code": a.affair_code, "workflow_version": a.workflow_version, "status": a.status.value,
        "jurisdiction": a.jurisdiction, "step": step.id, "task": a.task.key, "level": step.level.value,
        "kind": step.kind.value, "may_act_roles": roles, "scope": scope, "departments": departments,
        "escalated": a.escalated, "green_channel": a.green_channel,
        "started_at": datetime.fromisoformat(a.started_at), "entered_at": datetime.fromisoformat(a.entered_at),
        "due_date": date.fromisoformat(a.due_date), "warned": a.warned, "overdue": a.overdue,
        "outcome": (a.concluded or {}).get("outcome"), "concerns": sorted(a.departments()),
    }


async def project(conn: asyncpg.Connection, a: Approval, stored: Sequence[StoredEvent]) -> None:
    """Bring the tables up to the aggregate just saved (in the saving transaction)."""
    row = view_row(a)
    cols = ", ".join(ROW_COLUMNS)
    params = ", ".join(f"${i}" for i in range(1, len(ROW_COLUMNS) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in ROW_COLUMNS[1:])
    await conn.execute(f"INSERT INTO approval_view ({cols}) VALUES ({params}) ON CONFLICT (id) DO UPDATE SET {updates}",
                       *[row[c] for c in ROW_COLUMNS])
    for e in stored:
        if e.type == ACTED:
            await conn.execute(
                """INSERT INTO reviewer_counts (subject, action, count) VALUES ($1, $2, 1)
                   ON CONFLICT (subject, action) DO UPDATE SET count = reviewer_counts.count + 1""",
                e.data["actor"], e.data["action"])
    if a.status is Status.APPROVED and a.application is not None and a.concluded is not None:
        app = a.application
        await conn.execute(
            """INSERT INTO access_grants (approval_id, department, title, work_kind, communities, cost_bearer,
                                          valid_from, valid_until, decided_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (approval_id) DO NOTHING""",
            a.id, app["department"], app["title"], app["work_kind"], app["communities"], app["cost_bearer"],
            date.fromisoformat(app["valid_from"]), date.fromisoformat(app["valid_until"]),
            datetime.fromisoformat(a.concluded["decided_at"]))
    if a.is_final and a.concluded is not None:
        record = a.archive_record()
        await conn.execute(
            "INSERT INTO approval_archive (approval_id, digest, record) VALUES ($1, $2, $3::jsonb) "
            "ON CONFLICT (approval_id) DO NOTHING",
            a.id, archive_digest(record), json.dumps(record, ensure_ascii=False))


@dataclass(frozen=True)
class ListFilter:
    status: str | None = None
    affair_code: str | None = None
    level: str | None = None
    overdue: bool | None = None
    case_id: str | None = None
    limit: int = 50
    offset: int = 0


def _visible(principal: Principal, args: list[Any]) -> str:
    """The SQL condition of `Approval.may_be_seen_by`: inside the principal's jurisdiction and,
    for a department system, concerning its department."""
    args.append(list(principal.jurisdictions))
    condition = (f"EXISTS (SELECT 1 FROM unnest(${len(args)}::text[]) AS mine(code) "
                 "WHERE jurisdiction LIKE mine.code || '%')")
    if not principal.roles - {Role.DEPARTMENT}:
        args.append(principal.department)
        condition += f" AND ${len(args)}::text = ANY(concerns)"
    return f"({condition})"


async def list_approvals(conn: asyncpg.Connection, principal: Principal, f: ListFilter, *,
                         inbox: bool) -> tuple[int, list[dict[str, Any]]]:
    """GET /v1/approvals (everything in scope, filtered) or the inbox (what they may act on now)."""
    args: list[Any] = []
    where = []
    if inbox:
        args.append(sorted(r.value for r in principal.roles))
        where.append(f"status = 'running' AND may_act_roles && ${len(args)}::text[]")
        args.append(list(principal.jurisdictions))
        where.append(f"EXISTS (SELECT 1 FROM unnest(${len(args)}::text[]) AS mine(code) WHERE scope LIKE mine.code || '%')")
        args.append(principal.department)
        where.append(f"(departments = '{{}}' OR ${len(args)}::text = ANY(departments))")
    else:
        where.append(_visible(principal, args))
    for column, value in (("status", f.status), ("affair_code", f.affair_code), ("level", f.level),
                          ("overdue", f.overdue), ("case_id", f.case_id)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    clause = " AND ".join(where) or "true"
    total = await conn.fetchval(f"SELECT count(*) FROM approval_view WHERE {clause}", *args)
    args += [f.limit, f.offset]
    rows = await conn.fetch(
        f"SELECT * FROM approval_view WHERE {clause} ORDER BY green_channel DESC, entered_at, id "
        f"LIMIT ${len(args) - 1} OFFSET ${len(args)}", *args)
    return total, [dict(r) for r in rows]


async def view(conn: asyncpg.Connection, approval_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM approval_view WHERE id = $1", approval_id)
    return dict(row) if row else None


async def counts(conn: asyncpg.Connection, subject: str) -> dict[str, int]:
    rows = await conn.fetch("SELECT action, count FROM reviewer_counts WHERE subject = $1", subject)
    return {r["action"]: r["count"] for r in rows}


async def archive(conn: asyncpg.Connection, approval_id: str) -> tuple[str, dict[str, Any]] | None:
    row = await conn.fetchrow("SELECT digest, record FROM approval_archive WHERE approval_id = $1", approval_id)
    if row is None:
        return None
    record = row["record"]
    return row["digest"], json.loads(record) if isinstance(record, str) else record


async def access_grants(conn: asyncpg.Connection, *, community: str | None, department: str | None,
                        on: date | None) -> list[dict[str, Any]]:
    """Approved access (准入) in force: which department may push which work into a community."""
    rows = await conn.fetch(
        """SELECT * FROM access_grants
           WHERE ($1::text IS NULL OR $1 = ANY(communities)) AND ($2::text IS NULL OR department = $2)
             AND ($3::date IS NULL OR $3 BETWEEN valid_from AND valid_until)
           ORDER BY decided_at, approval_id""", community, department, on)
    return [dict(r) for r in rows]


async def rebuild_views(pool: asyncpg.Pool, store: EventStore) -> int:
    """Rewrite approval_view and reviewer_counts from the log (archives are kept: they are
    written once, on conclusion, and verified against the log's digest). In one transaction
    that locks both tables, so no command writes them meanwhile; returns the approvals seen."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE approval_view, reviewer_counts IN ACCESS EXCLUSIVE MODE")
        await conn.execute("DELETE FROM approval_view")
        await conn.execute("DELETE FROM reviewer_counts")
        ids = await store.stream_ids(Approval.stream_type, conn=conn)
        for approval_id in ids:
            events = await store.read_stream(approval_id, conn=conn)
            await project(conn, Approval.replay(approval_id, events), events)
    return len(ids)


class ApprovalViewProjector:
    """The unit of work's projector of approvals onto the tables above."""

    stream_types = (Approval.stream_type,)

    async def begin(self, conn: asyncpg.Connection) -> None:
        """Nothing to lock: a row is written from the whole aggregate, and a rebuild locks the tables."""

    async def project(self, conn: asyncpg.Connection, aggregate: Approval, stored: Sequence[StoredEvent]) -> None:
        await project(conn, aggregate, stored)


class ApprovalViewReads:
    """What the API and the verification read from the tables (the application's Archives port too)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def list(self, principal: Principal, f: ListFilter, *, inbox: bool) -> tuple[int, list[dict[str, Any]]]:
        async with self.pool.acquire() as conn:
            return await list_approvals(conn, principal, f, inbox=inbox)

    async def counts(self, subject: str) -> dict[str, int]:
        async with self.pool.acquire() as conn:
            return await counts(conn, subject)

    async def archive(self, approval_id: str) -> tuple[str, dict[str, Any]] | None:
        async with self.pool.acquire() as conn:
            return await archive(conn, approval_id)

    async def access_grants(self, *, community: str | None, department: str | None,
                            on: date | None) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            return await access_grants(conn, community=community, department=department, on=on)
