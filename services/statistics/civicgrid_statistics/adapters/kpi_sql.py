"""The KPIs as SQL over the facts of one schema (read_statistics for readers, a version's
schema for a rebuild's checksum). Every figure is computed from the facts at query time, so it
is exactly what the set of facts says, whichever worker wrote them and however often.

Jurisdiction, affair, category and channel come from the registration / receipt fact; every
other fact of the same case or complaint is joined by subject (the grid's figures likewise: an
incident's grid comes from its reported fact, a dispute's from its filed fact). `as_of` keeps the facts recorded
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


# ------------------------------------------------------------------------------------------ grid
#
# Four families, each anchored on one fact that says where and when (its jurisdiction `j` and
# its instant `at`): an incident on its reported fact (the grid it was filed in, when the report
# reached the centre); a grid's daily report on the grid and the day reported for (from the
# submitted or missing fact, the day's 00:00 in China); a dispute on its filed fact; a community
# work push on its community and instant. `jurisdiction`, the caller's scopes, `from` and `to`
# select anchors; every other fact of an incident or a dispute is joined by subject.

def _grid_scoped(origin: str) -> str:
    return f"""
        SELECT * FROM {origin}
        WHERE (cardinality($2::text[]) = 0 OR j LIKE ANY($2::text[]))
          AND ($3::text IS NULL OR j LIKE $3 || '%')
          AND ($4::date IS NULL OR (at {_LOCAL})::date >= $4)
          AND ($5::date IS NULL OR (at {_LOCAL})::date <= $5)"""


def _grid_args(filters: Filters, as_of: datetime | None) -> list[Any]:
    return [as_of or datetime.now(timezone.utc), [f"{c}%" for c in filters.scopes], filters.jurisdiction,
            filters.date_from, filters.date_to]


def _minutes(later: str, earlier: str) -> str:
    """The minutes between two instants of `per`, one per incident that has both, in subject order."""
    return (f"coalesce(array_agg(extract(epoch FROM {later} - {earlier})::float8 / 60.0 ORDER BY subject) "
            f"FILTER (WHERE {later} IS NOT NULL AND {earlier} IS NOT NULL), '{{}}')")


async def grid_figures(conn: asyncpg.Connection, schema: str, filters: Filters, group_by: str,
                       as_of: datetime | None) -> dict[str, list[dict[str, Any]]]:
    """The grid service's figures per group: incidents through the closed loop, daily reports,
    disputes and refused community work, each family's rows by label."""
    s = ident(schema)
    label = _group_expr(group_by, {})
    facts = f"f AS (SELECT * FROM {s}.facts WHERE recorded_at <= $1 AND kind LIKE 'grid.%')"
    args = _grid_args(filters, as_of)

    incidents = await conn.fetch(f"""
        WITH {facts},
        origin AS (
            SELECT DISTINCT ON (subject) subject, data->>'grid' AS j, occurred_at AS at
            FROM f WHERE kind = 'grid.incident.reported' ORDER BY subject, occurred_at, event_id),
        sel AS ({_grid_scoped('origin')}),
        ev AS (SELECT f.* FROM f JOIN sel USING (subject) WHERE f.kind LIKE 'grid.incident.%'),
        steps AS (
            SELECT sel.subject, sel.j, sel.at,
                min(ev.occurred_at) FILTER (WHERE ev.kind = 'grid.incident.created') AS created_at,
                min(ev.occurred_at) FILTER (WHERE ev.kind = 'grid.incident.dispatched') AS dispatched_at,
                min((ev.data->>'handling_due')::timestamptz) FILTER (WHERE ev.kind = 'grid.incident.dispatched')
                    AS handling_due,
                min(ev.occurred_at) FILTER (WHERE ev.kind = 'grid.incident.closed') AS closed_at,
                bool_or(ev.kind = 'grid.incident.closed' AND (ev.data->>'on_time')::boolean) AS closed_on_time,
                bool_or(ev.kind = 'grid.incident.deferred') AS deferred,
                bool_or(ev.kind = 'grid.incident.overdue') AS overdue,
                count(*) FILTER (WHERE ev.kind = 'grid.incident.rework_ordered') AS reworks
            FROM sel LEFT JOIN ev USING (subject)
            GROUP BY sel.subject, sel.j, sel.at),
        passed AS (  -- the last feedback before closure: the one the check passed
            SELECT ev.subject, max(ev.occurred_at) AS passed_feedback_at
            FROM ev JOIN steps USING (subject)
            WHERE ev.kind = 'grid.incident.fed_back' AND ev.occurred_at <= steps.closed_at
            GROUP BY ev.subject),
        per AS (SELECT steps.*, passed.passed_feedback_at FROM steps LEFT JOIN passed USING (subject))
        SELECT {label} AS label,
            count(*) AS incidents_reported,
            count(created_at) AS incidents_created,
            count(dispatched_at) AS incidents_dispatched,
            count(*) FILTER (WHERE deferred) AS incidents_deferred,
            count(closed_at) AS incidents_closed,
            count(*) FILTER (WHERE NOT deferred AND (closed_at IS NOT NULL OR handling_due < $1)) AS incidents_due,
            count(*) FILTER (WHERE NOT deferred AND closed_on_time) AS incidents_closed_on_time,
            count(*) FILTER (WHERE overdue) AS incidents_overdue,
            coalesce(sum(reworks), 0)::bigint AS reworks,
            count(*) FILTER (WHERE closed_at IS NOT NULL AND reworks > 0) AS incidents_reworked,
            {_minutes('created_at', 'at')} AS minutes_to_create,
            {_minutes('dispatched_at', 'at')} AS minutes_to_dispatch,
            {_minutes('passed_feedback_at', 'dispatched_at')} AS minutes_to_handle,
            {_minutes('closed_at', 'passed_feedback_at')} AS minutes_to_verify
        FROM per GROUP BY 1 ORDER BY 1""", *args)

    reports = await conn.fetch(f"""
        WITH {facts},
        origin AS (
            SELECT data->>'grid' AS j, ((data->>'date')::date::timestamp {_LOCAL}) AS at,
                bool_or(kind = 'grid.daily_report.submitted') AS submitted,
                bool_or(kind = 'grid.daily_report.submitted' AND (data->>'late')::boolean) AS late
            FROM f WHERE kind IN ('grid.daily_report.submitted', 'grid.daily_report.missing')
            GROUP BY 1, 2),
        sel AS ({_grid_scoped('origin')})
        SELECT {label} AS label,
            count(*) AS reports_expected,
            count(*) FILTER (WHERE submitted) AS reports_submitted,
            count(*) FILTER (WHERE NOT submitted) AS reports_missing,
            count(*) FILTER (WHERE late) AS reports_late
        FROM sel GROUP BY 1 ORDER BY 1""", *args)

    disputes = await conn.fetch(f"""
        WITH {facts},
        origin AS (
            SELECT DISTINCT ON (subject) subject, data->>'grid' AS j, occurred_at AS at
            FROM f WHERE kind = 'grid.dispute.filed' ORDER BY subject, occurred_at, event_id),
        sel AS ({_grid_scoped('origin')}),
        per AS (
            SELECT sel.subject, sel.j, sel.at,
                bool_or(f.kind = 'grid.dispute.mediated') AS mediated,
                bool_or(f.kind = 'grid.dispute.settled') AS settled,
                bool_or(f.kind = 'grid.dispute.referred') AS referred
            FROM sel LEFT JOIN f ON f.subject = sel.subject AND f.kind LIKE 'grid.dispute.%'
            GROUP BY sel.subject, sel.j, sel.at)
        SELECT {label} AS label,
            count(*) AS disputes_filed,
            count(*) FILTER (WHERE mediated) AS disputes_mediated,
            count(*) FILTER (WHERE mediated AND settled) AS disputes_settled,
            count(*) FILTER (WHERE referred) AS disputes_referred
        FROM per GROUP BY 1 ORDER BY 1""", *args)

    community_work = await conn.fetch(f"""
        WITH {facts},
        origin AS (
            SELECT kind, data->>'community' AS j, occurred_at AS at
            FROM f WHERE kind IN ('grid.community_work.refused', 'grid.community_work.accepted')),
        sel AS ({_grid_scoped('origin')})
        SELECT {label} AS label,
            count(*) FILTER (WHERE kind = 'grid.community_work.refused') AS community_work_refused,
            count(*) FILTER (WHERE kind = 'grid.community_work.accepted') AS community_work_accepted
        FROM sel GROUP BY 1 ORDER BY 1""", *args)

    return {"incidents": [dict(r) for r in incidents], "reports": [dict(r) for r in reports],
            "disputes": [dict(r) for r in disputes], "community_work": [dict(r) for r in community_work]}


# ------------------------------------------------------------------ notifications' deliveries
# A delivery (a subject: its stream) is anchored on its district and the instant it was recorded
# (its first step's, for a delivery whose success or dead letter has not come); it succeeded if
# it was ever sent or delivered (a dead letter replayed and then sent counts as sent), it is dead
# if it was dead-lettered and never succeeded.

_STEP = "notifications.notification."


async def notification_figures(conn: asyncpg.Connection, schema: str, filters: Filters, group_by: str,
                               as_of: datetime | None) -> list[dict[str, Any]]:
    """Deliveries per group: how many, succeeded, dead, the failed attempts, and the seconds from
    recorded to succeeded of each that succeeded."""
    s = ident(schema)
    label = _group_expr(group_by, {"channel": "channel", "department": "coalesce(department, 'none')"})
    rows = await conn.fetch(f"""
        WITH f AS (SELECT * FROM {s}.facts WHERE recorded_at <= $1 AND kind LIKE '{_STEP}%'),
        per AS (
            SELECT subject, min(data->>'district') AS j, min(data->>'channel') AS channel,
                min(data->>'department') AS department,
                coalesce(min((data->>'recorded_at')::timestamptz), min(occurred_at)) AS at,
                min((data->>'recorded_at')::timestamptz) AS recorded,
                min(occurred_at) FILTER (WHERE kind IN ('{_STEP}sent', '{_STEP}delivered')) AS succeeded_at,
                bool_or(kind = '{_STEP}dead_lettered') AS dead_lettered,
                -- the last dead letter's reason: no_contact is a recipient nothing could reach
                (array_agg(data->>'reason' ORDER BY occurred_at DESC, recorded_at DESC, event_id DESC)
                    FILTER (WHERE kind = '{_STEP}dead_lettered'))[1] AS dead_reason,
                count(*) FILTER (WHERE kind = '{_STEP}failed') AS failed_attempts
            FROM f GROUP BY subject),
        sel AS (
            SELECT * FROM per
            WHERE (cardinality($2::text[]) = 0 OR j LIKE ANY($2::text[]))
              AND ($3::text IS NULL OR j LIKE $3 || '%')
              AND ($4::text IS NULL OR channel = $4)
              AND ($5::date IS NULL OR (at {_LOCAL})::date >= $5)
              AND ($6::date IS NULL OR (at {_LOCAL})::date <= $6))
        SELECT {label} AS label,
            count(*) AS deliveries,
            count(succeeded_at) AS succeeded,
            count(*) FILTER (WHERE dead_lettered AND succeeded_at IS NULL
                             AND dead_reason IS DISTINCT FROM 'no_contact') AS dead,
            count(*) FILTER (WHERE dead_lettered AND succeeded_at IS NULL AND dead_reason = 'no_contact')
                AS unreachable,
            coalesce(sum(failed_attempts), 0)::bigint AS failed_attempts,
            coalesce(array_agg(extract(epoch FROM succeeded_at - recorded)::float8 ORDER BY subject)
                     FILTER (WHERE succeeded_at IS NOT NULL AND recorded IS NOT NULL), '{{}}') AS seconds_to_deliver
        FROM sel GROUP BY 1 ORDER BY 1""",
        as_of or datetime.now(timezone.utc), [f"{c}%" for c in filters.scopes], filters.jurisdiction,
        filters.channel, filters.date_from, filters.date_to)
    return [dict(r) for r in rows]


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
    for group in ("grid", "community", "day"):
        for family, items in (await grid_figures(conn, schema, everything, group, None)).items():
            # "due" compares handling limits with the time of the query: not a figure of the facts alone
            rows.extend({"kpi": f"grid.{family}", "by": group, **{k: v for k, v in r.items() if k != "incidents_due"}}
                        for r in items)
    for group in ("channel", "department", "day"):
        rows.extend({"kpi": "notifications", "by": group, **r}
                    for r in await notification_figures(conn, schema, everything, group, None))
    return rows


