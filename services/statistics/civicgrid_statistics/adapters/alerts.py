"""Window alerts over the facts, decided in the worker's transaction and appended to
statistics' own event store (its outbox publishes them): exactly once per surge, because the
decision, the alert event and the key's covered span commit together with the fact that
caused them, a key's decisions are serialised by an advisory lock, and a redelivered event
inserts no fact and so decides nothing."""
from __future__ import annotations

import zlib
from datetime import datetime, timedelta

import asyncpg

from civicgrid_common.eventstore import EventStore
from civicgrid_common.events import NewEvent
from civicgrid_common.projections import ident

from civicgrid_statistics.domain.alerts import AlertKey, Covered, WindowRule, community_of, complaint_key, same_surge
from civicgrid_statistics.domain.facts import Fact

DDL = [
    """
    CREATE TABLE IF NOT EXISTS statistics_alert_cover (
        stream_id text PRIMARY KEY,
        covered_from timestamptz NOT NULL,
        covered_until timestamptz NOT NULL
    )
    """,
]

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


async def evaluate(conn: asyncpg.Connection, schema: str, store: EventStore, rules: dict[str, WindowRule],
                   fresh: list[Fact]) -> list[AlertKey]:
    """Decide the alerts the newly inserted facts cause; append them in the caller's transaction."""
    raised = []
    triggers = [t for fact in fresh for t in await _triggers(conn, schema, fact)]
    for key, at in triggers:
        if key.kind not in rules:
            continue
        rule = rules[key.kind]
        await conn.execute("SELECT pg_advisory_xact_lock($1)", zlib.crc32(key.stream_id.encode()))
        found = await _first_full_window(conn, schema, key, at, rule)
        if found is None:
            continue
        window_end, count, trigger = found
        window_start = window_end - rule.window
        row = await conn.fetchrow("SELECT covered_from, covered_until FROM statistics_alert_cover WHERE stream_id = $1",
                                  key.stream_id)
        covered = Covered(row["covered_from"], row["covered_until"]) if row else None
        if not same_surge(covered, window_start, window_end, rule.window):
            version = await store.stream_version(key.stream_id, conn=conn)
            await store.append(key.stream_id, "alert", version, [NewEvent(
                type="civicgrid.statistics.alert.raised.v1",
                data={"alert_kind": key.kind, "community": key.community, "category": key.category, "count": count,
                      "threshold": rule.threshold, "window_minutes": int(rule.window / timedelta(minutes=1)),
                      "window_start": window_start.isoformat(), "window_end": window_end.isoformat(),
                      "triggering_event": trigger})], conn=conn)
            raised.append(key)
            covered = None
        await conn.execute(
            """
            INSERT INTO statistics_alert_cover (stream_id, covered_from, covered_until) VALUES ($1, $2, $3)
            ON CONFLICT (stream_id) DO UPDATE SET
                covered_from = CASE WHEN $4 THEN LEAST(statistics_alert_cover.covered_from, EXCLUDED.covered_from)
                                    ELSE EXCLUDED.covered_from END,
                covered_until = CASE WHEN $4 THEN GREATEST(statistics_alert_cover.covered_until, EXCLUDED.covered_until)
                                     ELSE EXCLUDED.covered_until END
            """, key.stream_id, window_start, window_end, covered is not None)
    return raised
