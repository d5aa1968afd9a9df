"""The delivery ledger: one row per (event, channel, recipient), written in the consumer's inbox
transaction, so whatever is redelivered or killed a message is recorded once; every attempt to
send it is a row of its own.

A delivery that leaves the process (a webhook) goes `pending` → `sending` (committed before the
request leaves, with a lease) → `sent`, or back to `pending` with its next attempt's time, or
`dead` after the schedule's last attempt, or `disabled` when the endpoint is gone (410). A
process that dies while sending leaves a `sending` row whose lease runs out: it is sent again
under the same delivery id, which the receiver sees as the same `webhook-id`. An in-app
delivery is `delivered` when its inbox item is written, in the same transaction.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

import asyncpg

from civicgrid_common.eventstore import EventStore

from civicgrid_notifications.adapters import delivery_events as steps

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS notification_deliveries (
    id text PRIMARY KEY,
    event_id text NOT NULL,
    event_type text NOT NULL,
    rule_id text NOT NULL,
    channel text NOT NULL,
    recipient text NOT NULL,
    urgent boolean NOT NULL,
    message jsonb NOT NULL,
    status text NOT NULL CONSTRAINT notification_deliveries_status_check
        CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'dead', 'disabled', 'skipped')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    lease_until timestamptz,
    provider_id text,
    last_status_code integer,
    last_error text,
    created_at timestamptz NOT NULL,
    finished_at timestamptz,
    UNIQUE (event_id, channel, recipient)
);
CREATE INDEX IF NOT EXISTS notification_deliveries_due
    ON notification_deliveries (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX IF NOT EXISTS notification_deliveries_dead
    ON notification_deliveries (finished_at DESC) WHERE status = 'dead';
-- The version of the delivery's event stream (adapters/delivery_events.py).
ALTER TABLE notification_deliveries ADD COLUMN IF NOT EXISTS events integer NOT NULL DEFAULT 0;
-- The same message to the same recipient on the same channel (deduplicated within a window).
ALTER TABLE notification_deliveries ADD COLUMN IF NOT EXISTS content_key text;
CREATE INDEX IF NOT EXISTS notification_deliveries_content
    ON notification_deliveries (recipient, channel, content_key, created_at) WHERE content_key IS NOT NULL;
-- 'skipped' (a channel the applicant did not choose) came later: widen an older table's check.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'notification_deliveries_status_check'
                   AND pg_get_constraintdef(oid) LIKE '%skipped%') THEN
        ALTER TABLE notification_deliveries DROP CONSTRAINT IF EXISTS notification_deliveries_status_check;
        ALTER TABLE notification_deliveries ADD CONSTRAINT notification_deliveries_status_check
            CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'dead', 'disabled', 'skipped'));
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS notification_attempts (
    delivery_id text NOT NULL REFERENCES notification_deliveries (id),
    attempt integer NOT NULL,
    started_at timestamptz NOT NULL,
    outcome text NOT NULL,
    status_code integer,
    latency_ms double precision NOT NULL,
    error text,
    PRIMARY KEY (delivery_id, attempt)
);
"""

PENDING, SENDING, SENT, DELIVERED, DEAD, DISABLED = "pending", "sending", "sent", "delivered", "dead", "disabled"
SKIPPED = "skipped"  # to an applicant on a channel they did not choose: no message, no step


def content_key(channel: str, recipient: str, message: Mapping[str, Any]) -> str:
    """What makes two deliveries the same message to the same person: channel, recipient and the
    rendered message, whichever event caused them."""
    canonical = json.dumps(dict(message), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{channel}\x1f{recipient}\x1f{canonical}".encode()).hexdigest()


def delivery_id(event_id: str, channel: str, recipient: str) -> str:
    """Stable: the same event, channel and recipient always give the same id (the providers'
    idempotency key, the webhook-id)."""
    digest = hashlib.sha256(f"{event_id}\x1f{channel}\x1f{recipient}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


@dataclass(frozen=True)
class Delivery:
    id: str
    event_id: str
    event_type: str
    rule_id: str
    channel: str
    recipient: str
    urgent: bool
    message: Mapping[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime | None
    provider_id: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> "Delivery":
        message = row["message"]
        # a str: a message an earlier version stored as JSON text inside the jsonb
        return cls(**{**dict(row), "message": json.loads(message) if isinstance(message, str) else message})


_COLUMNS = ("id, event_id, event_type, rule_id, channel, recipient, urgent, message, status, attempts, "
            "next_attempt_at, provider_id, last_status_code, last_error, created_at, finished_at")


async def record(conn: asyncpg.Connection, *, store: EventStore, district: str, event_id: str, event_type: str,
                 rule_id: str, channel: str, recipient: str, urgent: bool, message: Mapping[str, Any], status: str,
                 at: datetime, error: str | None = None, not_before: datetime | None = None,
                 dedup_window: timedelta | None = None) -> str | None:
    """Record a delivery (`pending`, `delivered`, or `dead` with its error); its id, or None when
    this (event, channel, recipient) is recorded already. A delivered or dead one is a step on
    its stream at once (`notification.delivered`, `notification.dead_lettered`). A pending one
    is first due at `not_before` when given (held back by quiet hours), else at once.

    With `dedup_window`, the same message to the same recipient on the same channel recorded
    within it before `at` (another event saying the same, e.g. a case back at a step it left a
    minute ago) makes this one None too: told once."""
    did = delivery_id(event_id, channel, recipient)
    key = content_key(channel, recipient, message) if status != DEAD else None
    window = dedup_window if key is not None and dedup_window else None
    if window is not None:
        # One at a time per message and recipient, so two events saying the same at once tell
        # once: the insert's own snapshot, taken after the lock, sees the other's row.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
    row = await conn.fetchrow(
        """
        INSERT INTO notification_deliveries (id, event_id, event_type, rule_id, channel, recipient, urgent, message,
                                             status, next_attempt_at, created_at, finished_at, last_error, events,
                                             content_key)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::text,
               CASE WHEN $9 = 'pending' THEN GREATEST($10::timestamptz, $12::timestamptz) END,
               $10, CASE WHEN $9 IN ('delivered', 'dead') THEN $10::timestamptz END, $11,
               CASE WHEN $9 IN ('delivered', 'dead') THEN 1 ELSE 0 END,  -- its one step, appended below
               $13
        WHERE $14::interval IS NULL OR NOT EXISTS (
            SELECT 1 FROM notification_deliveries d WHERE d.recipient = $6 AND d.channel = $5
              AND d.content_key = $13 AND d.created_at > $10::timestamptz - $14::interval
              AND d.created_at <= $10::timestamptz)
        ON CONFLICT DO NOTHING RETURNING id, channel, recipient, rule_id, event_id, event_type, created_at
        """,
        did, event_id, event_type, rule_id, channel, recipient, urgent, dict(message),  # the pool's codec encodes
        status, at, error[:500] if error else None, not_before, key, window)
    if row is None:
        return None
    since = {"recorded_at": steps.instant(row["created_at"]), "attempts": 0}
    if status == DELIVERED:
        await steps.emit(conn, store, row, 0, [(steps.DELIVERED, steps.step_data(district, row, at, **since))])
    elif status == DEAD:
        await steps.emit(conn, store, row, 0, [(steps.DEAD_LETTERED, steps.step_data(
            district, row, at, **since, last_status_code=None, reason="not_renderable"))])
    return did


async def claim_due(conn: asyncpg.Connection, *, now: datetime, lease: timedelta, limit: int) -> list[Delivery]:
    """Take up to `limit` deliveries due now (pending, or sending with a lapsed lease) and lease
    them: committed by the caller before anything is sent, so two senders never send one
    delivery at once and a dead sender's delivery comes back when its lease runs out."""
    rows = await conn.fetch(
        f"""
        WITH due AS (
            SELECT id FROM notification_deliveries
            WHERE status IN ('pending', 'sending') AND next_attempt_at <= $1
              AND channel IN ('webhook', 'sms', 'email', 'wechat')
              AND (status = 'pending' OR lease_until <= $1)
            ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED
        )
        UPDATE notification_deliveries d
        SET status = 'sending', lease_until = $1 + $2::interval, attempts = d.attempts + 1,
            next_attempt_at = $1 + $2::interval
        FROM due WHERE d.id = due.id
        RETURNING {', '.join('d.' + c.strip() for c in _COLUMNS.split(','))}
        """,
        now, lease, limit)
    return [Delivery.from_row(r) for r in rows]


async def finish_attempt(conn: asyncpg.Connection, delivery: Delivery, *, store: EventStore, district: str,
                         started_at: datetime, outcome: str, status_code: int | None, latency_ms: float,
                         error: str | None, provider_id: str | None, next_attempt_at: datetime | None,
                         now: datetime) -> str:
    """Store the attempt and move the delivery on, its step on its stream; its new status. An
    attempt finished twice (a sender thought dead that was only slow) is stored once and is
    one step: the row is locked, and a delivery already finished takes no further step."""
    if outcome == "sent":
        status = SENT
    elif outcome == "gone":
        status = DISABLED
    elif outcome == "not_chosen":
        status = SKIPPED
    elif outcome == "retry" and next_attempt_at is not None:
        status = PENDING
    else:
        status = DEAD
    row = await conn.fetchrow(
        "SELECT id, channel, recipient, rule_id, event_id, event_type, created_at, status, events "
        "FROM notification_deliveries WHERE id = $1 FOR UPDATE", delivery.id)
    first = await conn.fetchval(
        """
        INSERT INTO notification_attempts (delivery_id, attempt, started_at, outcome, status_code, latency_ms, error)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true
        """,
        delivery.id, delivery.attempts, started_at, outcome, status_code, latency_ms, error)
    taken = (_attempt_steps(district, row, outcome, status, delivery.attempts, status_code, next_attempt_at, now)
             if first and row["status"] in (PENDING, SENDING) else [])
    await conn.execute(
        """
        UPDATE notification_deliveries
        SET status = $2, next_attempt_at = $3, lease_until = NULL, provider_id = coalesce($4, provider_id),
            last_status_code = $5, last_error = $6,
            finished_at = CASE WHEN $2::text IN ('sent', 'dead', 'disabled', 'skipped') THEN $7::timestamptz END,
            events = events + $8
        WHERE id = $1
        """,
        delivery.id, status, next_attempt_at if status == PENDING else None, provider_id, status_code, error, now,
        len(taken))
    await steps.emit(conn, store, row, row["events"], taken)
    return status


def _attempt_steps(district: str, row: Mapping[str, Any], outcome: str, status: str, attempt: int,
                   status_code: int | None, retry_at: datetime | None,
                   now: datetime) -> list[tuple[str, dict[str, Any]]]:
    if status == SKIPPED:
        return []  # nothing was to be told on this channel: no step, no figure
    if status == SENT:
        return [(steps.SENT, steps.step_data(district, row, now, recorded_at=steps.instant(row["created_at"]),
                                             attempts=attempt))]
    failed = steps.step_data(district, row, now, attempt=attempt, status_code=status_code,
                             retry_at=steps.instant(retry_at) if status == PENDING and retry_at else None,
                             endpoint_disabled=status == DISABLED)
    taken = [(steps.FAILED, failed)]
    if status == DEAD:
        taken.append((steps.DEAD_LETTERED, steps.step_data(
            district, row, now, recorded_at=steps.instant(row["created_at"]), attempts=attempt, last_status_code=status_code,
            # a retryable failure with no attempt left, no address to try, or a refusal for good
            reason={"retry": "schedule_spent", "unreachable": "no_contact"}.get(outcome, "refused"))))
    return taken


async def dead_letters(conn: asyncpg.Connection, *, limit: int, before: datetime | None) -> list[Delivery]:
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM notification_deliveries
        WHERE status = 'dead' AND ($2::timestamptz IS NULL OR finished_at < $2)
        ORDER BY finished_at DESC LIMIT $1
        """, limit, before)
    return [Delivery.from_row(r) for r in rows]


async def get(conn: asyncpg.Connection, did: str) -> Delivery | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM notification_deliveries WHERE id = $1", did)
    return Delivery.from_row(row) if row else None


async def attempts_of(conn: asyncpg.Connection, did: str) -> Sequence[asyncpg.Record]:
    return await conn.fetch(
        "SELECT attempt, started_at, outcome, status_code, latency_ms, error FROM notification_attempts "
        "WHERE delivery_id = $1 ORDER BY attempt", did)


async def replay(conn: asyncpg.Connection, did: str, *, now: datetime) -> bool:
    """A dead (or disabled) webhook delivery due again now, its attempts kept; False otherwise (an
    in-app message that could not be rendered is fixed in the rule book, not resent)."""
    return await conn.fetchval(
        """
        UPDATE notification_deliveries SET status = 'pending', next_attempt_at = $2, finished_at = NULL
        WHERE id = $1 AND status IN ('dead', 'disabled') AND channel = 'webhook' RETURNING true
        """, did, now) or False


class DeliveryLedger:
    """The ledger as the application's `Ledger` port: its steps go to `store`."""

    def __init__(self, store: EventStore, district: str, *, dedup_window: timedelta | None = None) -> None:
        self.store = store
        self.district = district
        self.dedup_window = dedup_window

    async def record(self, conn: asyncpg.Connection, **delivery: Any) -> str | None:
        return await record(conn, store=self.store, district=self.district, dedup_window=self.dedup_window,
                            **delivery)

    async def finish_attempt(self, conn: asyncpg.Connection, delivery: Delivery, **attempt: Any) -> str:
        return await finish_attempt(conn, delivery, store=self.store, district=self.district, **attempt)
