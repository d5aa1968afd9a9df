"""The SQL behind window alerts (application/alerts.py): which facts a key counts, its earliest
full window, the lock that serialises a key's decisions, and every surge's span per key."""
from __future__ import annotations

import zlib
from datetime import datetime
from typing import Sequence

import asyncpg

from civicgrid_common.db import install_schema
from civicgrid_common.projections import ident
from civicgrid_common.unit_of_work import UnitOfWork

from civicgrid_statistics.domain.alerts import AlertKey, Span, WindowRule, community_of, complaint_key
from civicgrid_statistics.domain.facts import Fact

DDL = [
    """
    CREATE TABLE IF NOT EXISTS statistics_alert_spans (
        stream_id     text        NOT NULL,   -- the key's AlertLog stream
        alert         integer     NOT NULL,   -- which of its alerts (its surge)
        covered_from  timestamptz NOT NULL,
        covered_until timestamptz NOT NULL,
        PRIMARY KEY (stream_id, alert)
    )
    """,
    # The first release kept only the last surge's span per key: carried over once.
    """
    DO $$ BEGIN
        IF to_regclass('statistics_alert_cover') IS NOT NULL THEN
            INSERT INTO statistics_alert_spans (stream_id, alert, covered_from, covered_until)
            SELECT c.stream_id, coalesce((SELECT max(version) FROM events e WHERE e.stream_id = c.stream_id), 1),
                   c.covered_from, c.covered_until
            FROM statistics_alert_cover c ON CONFLICT DO NOTHING;
            DROP TABLE statistics_alert_cover;
        END IF;
    END $$
    """,
]


async def install_alerts(pool: asyncpg.Pool) -> None:
    await install_schema(pool, DDL)


# Which facts a key counts, as SQL over the version's facts (f) joined to the registration (r).
_MATCH = {
    "complaint_surge": ("f.kind = 'intake.complaint.received' AND left(f.data->>'jurisdiction', 12) = $2 "
                        "AND f.data->>'category' = $3", ""),
    "overdue_run": ("f.kind = 'approval.approval.overdue' AND left(r.data->>'jurisdiction', 12) = $2 "
                    "AND $3::text IS NULL",
                    "JOIN {s}.facts r ON r.subject = f.subject AND r.kind = 'intake.case.registered'"),
}


async def _triggers(conn: asyncpg.Connection, schema: str, fact: Fact) -> list[tuple[AlertKey, datetime]]:
    """The keys (and instants) a new fact may have brought to their threshold. An overdue task
    counts for its case's community, known from the case's registration, which may come in
    before or after it (different topics): whichever of the two is second triggers."""
    key = complaint_key(fact)
    if key is not None:
        return [(key, fact.occurred_at)]
    s = ident(schema)
    if fact.kind in ("approval.approval.overdue", "intake.case.registered"):
        # Taken after our insert, before the look-up: of two workers writing the two halves at
        # once, the second to get the lock sees the first's committed half (READ COMMITTED).
        await conn.execute("SELECT pg_advisory_xact_lock($1)", zlib.crc32(f"case:{fact.subject}".encode()))
    if fact.kind == "approval.approval.overdue":
        jurisdiction = await conn.fetchval(
            f"SELECT data->>'jurisdiction' FROM {s}.facts WHERE subject = $1 AND kind = 'intake.case.registered' "
            "LIMIT 1", fact.subject)
        community = community_of(jurisdiction)
        return [(AlertKey("overdue_run", community, None), fact.occurred_at)] if community else []
    if fact.kind == "intake.case.registered":
        community = community_of(fact.data.get("jurisdiction"))
        if community is None:
            return []
        rows = await conn.fetch(f"SELECT occurred_at FROM {s}.facts WHERE subject = $1 AND kind = 'approval.approval.overdue'",
                                fact.subject)
        return [(AlertKey("overdue_run", community, None), r["occurred_at"]) for r in rows]
    return []


async def _first_full_window(conn: asyncpg.Connection, schema: str, key: AlertKey, at: datetime,
                             rule: WindowRule) -> tuple[datetime, int, str] | None:
    """The earliest window (ending at a counted event's time within [at, at + window)) that now
    holds at least `threshold` events: (its end, its count, the id of the event at its end)."""
    where, join = _MATCH[key.kind]
    s = ident(schema)
    row = await conn.fetchrow(f"""
        WITH counted AS (
            SELECT f.event_id, f.occurred_at FROM {s}.facts f {join.format(s=s)} WHERE {where})
        SELECT e.occurred_at AS window_end, e.event_id,
               (SELECT count(*) FROM counted c WHERE c.occurred_at > e.occurred_at - $4::interval
                                                 AND c.occurred_at <= e.occurred_at) AS n
        FROM counted e
        WHERE e.occurred_at >= $1 AND e.occurred_at < $1 + $4::interval
        ORDER BY (SELECT count(*) FROM counted c WHERE c.occurred_at > e.occurred_at - $4::interval
                                                   AND c.occurred_at <= e.occurred_at) >= $5 DESC,
                 e.occurred_at, e.event_id
        LIMIT 1""", at, key.community, key.category, rule.window, rule.threshold)
    if row is None or row["n"] < rule.threshold:
        return None
    return row["window_end"], row["n"], row["event_id"]


class SqlWindows:
    """The application's Windows port."""

    async def triggers(self, uow: UnitOfWork, schema: str, fact: Fact) -> list[tuple[AlertKey, datetime]]:
        return await _triggers(uow.conn, schema, fact)

    async def lock(self, uow: UnitOfWork, key: AlertKey) -> None:
        await uow.conn.execute("SELECT pg_advisory_xact_lock($1)", zlib.crc32(key.stream_id.encode()))

    async def first_full_window(self, uow: UnitOfWork, schema: str, key: AlertKey, at: datetime,
                                rule: WindowRule) -> tuple[datetime, int, str] | None:
        return await _first_full_window(uow.conn, schema, key, at, rule)


class SurgeSpans:
    """The application's Surges port: statistics_alert_spans."""

    async def of(self, uow: UnitOfWork, key: AlertKey) -> list[Span]:
        rows = await uow.conn.fetch("SELECT alert, covered_from, covered_until FROM statistics_alert_spans "
                                    "WHERE stream_id = $1 ORDER BY alert", key.stream_id)
        return [Span(r["alert"], r["covered_from"], r["covered_until"]) for r in rows]

    async def keep(self, uow: UnitOfWork, key: AlertKey, span: Span, absorbed: Sequence[Span] = ()) -> None:
        if absorbed:
            await uow.conn.execute("DELETE FROM statistics_alert_spans WHERE stream_id = $1 AND alert = ANY($2::int[])",
                                   key.stream_id, [s.alert for s in absorbed])
        await uow.conn.execute(
            """INSERT INTO statistics_alert_spans (stream_id, alert, covered_from, covered_until) VALUES ($1, $2, $3, $4)
               ON CONFLICT (stream_id, alert) DO UPDATE SET covered_from = EXCLUDED.covered_from,
                                                            covered_until = EXCLUDED.covered_until""",
            key.stream_id, span.alert, span.start, span.until)
