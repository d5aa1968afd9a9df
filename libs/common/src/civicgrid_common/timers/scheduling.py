"""Scheduling and cancelling timers, always in the caller's transaction.

A timer exists if and only if the state change that needs it commits: `schedule` and `cancel`
only write a row on the caller's connection, so a rolled-back command leaves no timer behind
and a committed one leaves exactly the timers it asked for.

A key is fired at most once, ever. Once it fired, the key is final: `schedule` refuses it
(returns False and changes nothing) and `cancel` finds nothing to cancel. Refusing instead of
raising keeps callers simple: a command (or a timer's own handler) that re-derives "the timers
this aggregate needs now" may schedule a key that fired already and go on. A new occurrence
needs a new key (put a visit number or the due date in it).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

import asyncpg

# NOTIFY channel: the payload is "<owner> <due epoch seconds>" and reaches listeners on commit.
CHANNEL = "civicgrid_timers"

PENDING, FIRED, FAILED = "pending", "fired", "failed"


@dataclass(frozen=True)
class Timer:
    """What a handler is given. attempts: how many earlier runs of its handler raised (0 first)."""

    owner: str
    key: str
    kind: str
    due_at: datetime
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class TimerRecord(Timer):
    """A timer's row as it stands, for operators and tests (see `lookup`)."""

    status: str  # pending | fired | failed (parked)
    next_attempt_at: datetime
    last_error: str | None
    scheduled_at: datetime
    fired_at: datetime | None
    fired_by: str | None


_COLUMNS = "owner, key, kind, due_at, payload::text AS payload, attempts"


def timer_from_row(row: asyncpg.Record) -> Timer:
    return Timer(row["owner"], row["key"], row["kind"], row["due_at"], json.loads(row["payload"]), row["attempts"])


async def schedule(
    conn: asyncpg.Connection,
    *,
    owner: str,
    key: str,
    due_at: datetime,
    kind: str,
    payload: Mapping[str, Any] | None = None,
) -> bool:
    """Arm the timer (owner, key) to fire at due_at, in the caller's transaction.

    An unfired timer with that key and another due time, kind or payload is rescheduled: they
    are replaced and its failed attempts forgotten (a parked timer is re-armed). Scheduling it
    again as it stands changes nothing: a failing timer keeps its backoff and attempt count
    and a parked one stays parked (see `retry`), so callers may re-derive their timers after
    every command. Returns False when the key fired already (then nothing changes), else True."""
    _require_text(owner=owner, key=key, kind=kind)
    if not isinstance(due_at, datetime) or due_at.utcoffset() is None:
        raise ValueError(f"due_at must be a timezone-aware datetime, got {due_at!r}")
    if payload is not None and not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a JSON object (a mapping), got {type(payload).__name__}")
    document = json.dumps(dict(payload or {}), ensure_ascii=False, allow_nan=False)
    armed = await conn.fetchrow(
        f"""
        WITH armed AS (
            INSERT INTO civicgrid_timers AS t (owner, key, kind, due_at, payload, next_attempt_at)
            VALUES ($1, $2, $3, $4, $5::text::jsonb, $4)
            ON CONFLICT (owner, key) DO UPDATE
                SET kind = EXCLUDED.kind, due_at = EXCLUDED.due_at, payload = EXCLUDED.payload,
                    next_attempt_at = EXCLUDED.due_at, status = '{PENDING}', attempts = 0,
                    last_error = NULL, scheduled_at = now()
                WHERE t.status <> '{FIRED}'
                  AND (t.kind, t.due_at, t.payload) IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.due_at, EXCLUDED.payload)
            RETURNING true AS ok
        )
        SELECT ok, pg_notify('{CHANNEL}', $1 || ' ' || extract(epoch FROM $4::timestamptz)::text) FROM armed
        """,
        owner, key, kind, due_at, document,
    )
    if armed is not None:
        return True
    # Unchanged or fired. The conflicting row is locked by now, so its status holds until commit.
    status = await conn.fetchval("SELECT status FROM civicgrid_timers WHERE owner = $1 AND key = $2", owner, key)
    return status != FIRED


async def retry(conn: asyncpg.Connection, *, owner: str, key: str, at: datetime | None = None) -> bool:
    """Re-arm a parked timer (an operator fixed the cause): tried again at `at`, by default at
    once (its due time has passed), with its attempt count reset. False if it is not parked."""
    _require_text(owner=owner, key=key)
    if at is not None and at.utcoffset() is None:
        raise ValueError(f"at must be a timezone-aware datetime, got {at!r}")
    return bool(await conn.fetchval(
        f"""
        WITH rearmed AS (
            UPDATE civicgrid_timers SET status = '{PENDING}', attempts = 0, next_attempt_at = coalesce($3, due_at)
            WHERE owner = $1 AND key = $2 AND status = '{FAILED}'
            RETURNING next_attempt_at
        )
        SELECT true, pg_notify('{CHANNEL}', $1 || ' ' || extract(epoch FROM next_attempt_at)::text) FROM rearmed
        """,
        owner, key, at,
    ))


async def cancel(conn: asyncpg.Connection, *, owner: str, key: str) -> bool:
    """Remove an unfired (pending or parked) timer, in the caller's transaction.

    True if there was one; False if there was none or it fired already (its record stays).
    A timer being fired at this moment is waited for, then found fired."""
    _require_text(owner=owner, key=key)
    deleted = await conn.fetchval(
        f"DELETE FROM civicgrid_timers WHERE owner = $1 AND key = $2 AND status <> '{FIRED}' RETURNING true",
        owner, key,
    )
    return bool(deleted)


async def cancel_unless(conn: asyncpg.Connection, *, owner: str, prefix: str, keep: Iterable[str] = ()) -> int:
    """Remove every unfired timer of `owner` whose key starts with `prefix`, except those in
    `keep`, in the caller's transaction: what a command does that replaces a thing's deadlines
    without knowing which it had (e.g. prefix `approval/<id>/`). Returns how many went."""
    _require_text(owner=owner, prefix=prefix)
    pattern = re.sub(r"([\\%_])", r"\\\1", prefix) + "%"  # the prefix literally, then anything
    return len(await conn.fetch(
        f"DELETE FROM civicgrid_timers WHERE owner = $1 AND key LIKE $2 AND status <> '{FIRED}' "
        "AND NOT key = ANY($3::text[]) RETURNING key",
        owner, pattern, list(keep),
    ))


async def lookup(conn: asyncpg.Connection, *, owner: str, key: str) -> TimerRecord | None:
    """The timer's row (any status), or None if it was never scheduled or was cancelled."""
    row = await conn.fetchrow(
        f"""
        SELECT {_COLUMNS}, status, next_attempt_at, last_error, scheduled_at, fired_at, fired_by
        FROM civicgrid_timers WHERE owner = $1 AND key = $2
        """,
        owner, key,
    )
    if row is None:
        return None
    t = timer_from_row(row)
    return TimerRecord(
        t.owner, t.key, t.kind, t.due_at, t.payload, t.attempts, row["status"], row["next_attempt_at"],
        row["last_error"], row["scheduled_at"], row["fired_at"], row["fired_by"],
    )


def _require_text(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
