"""The KPIs as SQL over the facts of one schema (read_statistics for readers, a version's
schema for a rebuild's checksum). Every figure is computed from the facts at query time, so it
is exactly what the set of facts says, whichever worker wrote them and however often.

Jurisdiction, affair, category and channel come from the registration / receipt fact; every
other fact of the same case or complaint is joined by subject. `as_of` keeps the facts recorded
up to that instant; "overdue now" compares due dates with as_of's China date.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import asyncpg

from civicgrid_common.projections import ident

from civicgrid_statistics.domain.figures import JURISDICTION_LEVELS, Filters

_LOCAL = "AT TIME ZONE 'Asia/Shanghai'"
_AFFAIR = "data->>'affair_code' AS dim"


def _group_expr(group_by: str, dims: dict[str, str]) -> str:
    if group_by == "all":
        return "'all'"
    if group_by in JURISDICTION_LEVELS:
        return f"left(j, {JURISDICTION_LEVELS[group_by]})"
    if group_by == "day":
        return f"to_char(at {_LOCAL}, 'YYYY-MM-DD')"
    if group_by == "week":
        return f"to_char(at {_LOCAL}, 'IYYY-\"W\"IW')"
    if group_by == "month":
        return f"to_char(at {_LOCAL}, 'YYYY-MM')"
    return dims[group_by]  # a fixed column name, never user text


def _selection(schema: str, first_kind: str, dim_sql: str) -> str:
    """CTEs f (facts as of $1) and sel (the cases / complaints the filters select)."""
    s = ident(schema)
    return f"""
        f AS (SELECT * FROM {s}.facts WHERE recorded_at <= $1),
        origin AS (
            SELECT DISTINCT ON (subject) subject, data->>'jurisdiction' AS j, {dim_sql},
                   data->>'channel' AS channel, occurred_at AS at
            FROM f WHERE kind = '{first_kind}' ORDER BY subject, occurred_at, event_id),
        sel AS (
            SELECT * FROM origin
            WHERE (cardinality($2::text[]) = 0 OR j LIKE ANY($2::text[]))
              AND ($3::text IS NULL OR j LIKE $3 || '%')
              AND ($4::text IS NULL OR dim = $4)
              AND ($5::text IS NULL OR channel = $5)
              AND ($6::date IS NULL OR (at {_LOCAL})::date >= $6)
              AND ($7::date IS NULL OR (at {_LOCAL})::date <= $7)),
        ev AS (SELECT f.* FROM f JOIN sel USING (subject))"""


def _args(filters: Filters, as_of: datetime | None, dim_value: str | None) -> list[Any]:
    return [as_of or datetime.now(timezone.utc), [f"{c}%" for c in filters.scopes], filters.jurisdiction,
            dim_value, filters.channel, filters.date_from, filters.date_to]


async def case_figures(conn: asyncpg.Connection, schema: str, filters: Filters, group_by: str,
                       as_of: datetime | None) -> list[dict[str, Any]]:
    label = _group_expr(group_by, {"affair": "dim", "channel": "channel"})
    sql = f"""
        WITH {_selection(schema, 'intake.case.registered', _AFFAIR)},
        per AS (
            SELECT sel.subject, {label} AS label,
                bool_or(ev.kind = 'intake.case.accepted') AS accepted,
                bool_or(ev.kind = 'intake.case.refused') AS refused,
                bool_or(ev.kind = 'intake.case.withdrawn') AS withdrawn,
                bool_or(ev.kind = 'intake.case.completed') AS completed,
                bool_or(ev.kind = 'intake.case.completed' AND ev.data->>'outcome' = 'approved') AS approved,
                bool_or(ev.kind = 'intake.case.green_channelled') AS green,
                count(*) FILTER (WHERE ev.kind = 'intake.case.supplemented') AS supplemented,
                count(*) FILTER (WHERE ev.kind = 'intake.case.supplement_requested') AS supplement_requested,
                count(*) FILTER (WHERE ev.kind = 'approval.approval.acted' AND ev.data->>'outcome' = 'refused') AS returned,
                count(*) FILTER (WHERE ev.kind = 'approval.approval.acted' AND ev.data->>'outcome' = 'extended') AS extended,
                count(*) FILTER (WHERE ev.kind = 'approval.approval.acted' AND ev.data->>'outcome' = 'sent_back') AS sent_back,
                max((ev.data->>'due_date')::date) FILTER (WHERE ev.kind = 'intake.case.accepted') AS due,
                (min(ev.occurred_at) FILTER (WHERE ev.kind = 'intake.case.accepted') {_LOCAL})::date AS accepted_on,
                (min(ev.occurred_at) FILTER (WHERE ev.kind = 'intake.case.completed') {_LOCAL})::date AS completed_on
            FROM sel LEFT JOIN ev USING (subject)
            GROUP BY sel.subject, label)
        SELECT label,
            count(*) AS registered,
            count(*) FILTER (WHERE accepted) AS accepted,
            count(*) FILTER (WHERE refused) AS refused,
            count(*) FILTER (WHERE withdrawn) AS withdrawn,
            count(*) FILTER (WHERE completed) AS completed,
            count(*) FILTER (WHERE approved) AS approved,
            count(*) FILTER (WHERE completed AND completed_on <= due) AS completed_on_time,
            count(*) FILTER (WHERE accepted AND NOT completed AND NOT withdrawn AND due < ($1 {_LOCAL})::date) AS overdue_now,
            count(*) FILTER (WHERE green) AS green_channelled,
            coalesce(sum(supplemented), 0)::bigint AS supplemented,
            coalesce(sum(supplement_requested), 0)::bigint AS supplement_requested,
            coalesce(sum(returned), 0)::bigint AS returned,
            coalesce(sum(extended), 0)::bigint AS extended,
            coalesce(sum(sent_back), 0)::bigint AS sent_back,
            coalesce(array_agg(accepted_on::text || '/' || completed_on::text ORDER BY subject)
                FILTER (WHERE completed AND accepted_on IS NOT NULL), '{{}}') AS spans
        FROM per GROUP BY label ORDER BY label"""
    rows = await conn.fetch(sql, *_args(filters, as_of, filters.affair))
    return [dict(r) for r in rows]


async def complaint_figures(conn: asyncpg.Connection, schema: str, filters: Filters, group_by: str,
                            as_of: datetime | None) -> list[dict[str, Any]]:
    dims = {"category": "dim", "channel": "channel", "department": "department", "urgency": "urgency"}
    label = _group_expr(group_by, dims)
    sql = f"""
        WITH {_selection(schema, 'intake.complaint.received', "data->>'category' AS dim, data->>'urgency' AS urgency")},
        per AS (
            SELECT sel.subject, sel.j, sel.dim, sel.channel, sel.urgency, sel.at,
                coalesce((array_agg(ev.data->>'department' ORDER BY ev.occurred_at, ev.event_id)
                    FILTER (WHERE ev.kind = 'intake.complaint.routed'))[1], 'unrouted') AS department,
                bool_or(ev.kind = 'intake.complaint.responded') AS responded,
                bool_or(ev.kind = 'intake.complaint.responded' AND (ev.data->>'on_time')::boolean) AS responded_on_time,
                (array_agg((ev.data->>'resolved')::boolean ORDER BY (ev.data->>'round')::int DESC, ev.occurred_at DESC, ev.event_id DESC)
                    FILTER (WHERE ev.kind = 'intake.complaint.closed'))[1] AS resolved,
                (array_agg((ev.data->>'satisfied')::boolean ORDER BY (ev.data->>'round')::int DESC, ev.occurred_at DESC, ev.event_id DESC)
                    FILTER (WHERE ev.kind = 'intake.complaint.rated' AND (ev.data->>'final')::boolean))[1] AS satisfied,
                bool_or(ev.kind = 'intake.complaint.reopened') AS reopened
            FROM sel LEFT JOIN ev USING (subject)
            GROUP BY sel.subject, sel.j, sel.dim, sel.channel, sel.urgency, sel.at)
        SELECT {label} AS label,
            count(*) AS received,
            count(*) FILTER (WHERE responded) AS responded,
            count(*) FILTER (WHERE responded_on_time) AS responded_on_time,
            count(*) FILTER (WHERE resolved) AS resolved,
            count(*) FILTER (WHERE satisfied IS NOT NULL) AS rated,
            count(*) FILTER (WHERE satisfied) AS satisfied,
            count(*) FILTER (WHERE reopened) AS reopened
        FROM per GROUP BY 1 ORDER BY 1"""
    rows = await conn.fetch(sql, *_args(filters, as_of, filters.category))
    return [dict(r) for r in rows]


async def satisfaction_figures(conn: asyncpg.Connection, schema: str, filters: Filters,
                               as_of: datetime | None) -> dict[str, Any]:
    """Cases' reviews on the five levels (first round), bad reviews and their follow-ups."""
    head = f"WITH {_selection(schema, 'intake.case.registered', _AFFAIR)}"
    args = _args(filters, as_of, filters.affair)
    row = dict(await conn.fetchrow(f"""
        {head}
        SELECT
            count(*) FILTER (WHERE kind = 'intake.case.rated' AND (data->>'round')::int = 1) AS rated,
            count(*) FILTER (WHERE kind = 'intake.case.rated' AND (data->>'round')::int = 1
                             AND (data->>'bad_review')::boolean) AS bad_reviews,
            count(*) FILTER (WHERE kind = 'intake.case.follow_up_opened') AS follow_ups,
            count(*) FILTER (WHERE kind = 'intake.case.applicant_called_back'
                             AND (data->>'on_time')::boolean) AS called_back_on_time,
            count(*) FILTER (WHERE kind = 'intake.case.follow_up_closed'
                             AND (data->>'fixed_on_time')::boolean) AS fixed_on_time
        FROM ev""", *args))
    levels = await conn.fetch(f"""
        {head}
        SELECT data->>'rating' AS level, count(*) AS n FROM ev
        WHERE kind = 'intake.case.rated' AND (data->>'round')::int = 1 GROUP BY 1""", *args)
    row["levels"] = {r["level"]: r["n"] for r in levels}
    return row


async def workload_figures(conn: asyncpg.Connection, schema: str, filters: Filters,
                           as_of: datetime | None) -> dict[str, list[dict[str, Any]]]:
    """Actions per clerk (intake's case events) and per reviewer (approval's acts), with the
    median hours a reviewer took to act since the step reached them."""
    head = f"WITH {_selection(schema, 'intake.case.registered', _AFFAIR)}"
    clerks = await conn.fetch(f"""
        {head}
        SELECT data->>'actor' AS label, count(*) AS actions
        FROM ev WHERE kind LIKE 'intake.case.%' AND data ? 'actor'
        GROUP BY 1 ORDER BY 1""", *_args(filters, as_of, filters.affair))
    reviewers = await conn.fetch(f"""
        {head},
        moves AS (
            SELECT kind, data, occurred_at,
                   lag(occurred_at) OVER (PARTITION BY subject ORDER BY occurred_at, event_id) AS since
            FROM ev WHERE kind IN ('approval.approval.started', 'approval.approval.acted', 'approval.approval.resumed'))
        SELECT data->>'actor' AS label, count(*) AS actions,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM occurred_at - since) / 3600.0)
                   AS median_hours_to_act
        FROM moves WHERE kind = 'approval.approval.acted'
        GROUP BY 1 ORDER BY 1""", *_args(filters, as_of, filters.affair))
    return {"clerks": [dict(r) for r in clerks], "reviewers": [dict(r) for r in reviewers]}


async def all_figures(conn: asyncpg.Connection, schema: str) -> list[dict[str, Any]]:
    """Every figure by every grouping, as rows: what a rebuild's checksum compares."""
    everything, rows = Filters(), []
    for group in ("community", "affair", "channel", "day"):
        for r in await case_figures(conn, schema, everything, group, None):
            rows.append({"kpi": "cases", "by": group, **{k: v for k, v in r.items() if k != "overdue_now"}})
    for group in ("community", "category", "channel", "department", "day"):
        for r in await complaint_figures(conn, schema, everything, group, None):
            rows.append({"kpi": "complaints", "by": group, **r})
    satisfaction = await satisfaction_figures(conn, schema, everything, None)
    rows.append({"kpi": "satisfaction", **satisfaction, "levels": sorted(satisfaction["levels"].items())})
    for who, items in (await workload_figures(conn, schema, everything, None)).items():
        rows.extend({"kpi": "workload", "by": who, **r} for r in items)
    return rows


