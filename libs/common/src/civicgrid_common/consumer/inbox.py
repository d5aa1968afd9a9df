"""The inbox: which events a consumer group has already dealt with, in the consumer's database.

Claiming an event id and applying its effect happen in one transaction, so after a crash
either both are there or neither: a redelivered event finds its claim and is skipped.
"""
from __future__ import annotations

import asyncpg

INBOX_DDL = """
CREATE TABLE IF NOT EXISTS civicgrid_inbox (
    consumer_group text NOT NULL,
    event_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('handled', 'dead_lettered')),
    topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    event_type text,
    error text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
)
"""

HANDLED = "handled"
DEAD_LETTERED = "dead_lettered"


def poison_id(topic: str, partition: int, offset: int) -> str:
    """Inbox key of a record that has no usable CloudEvents id: its place in the log."""
    return f"kafka:{topic}:{partition}:{offset}"


async def claim(
    conn: asyncpg.Connection,
    *,
    group: str,
    event_id: str,
    topic: str,
    partition: int,
    offset: int,
    event_type: str | None,
    status: str = HANDLED,
    error: str | None = None,
) -> bool:
    """Record the event for the group; False if it was already there (a redelivery).

    One exception: an event that was dead-lettered and now arrives again from another place in
    the log is an operator's replay (the cause was fixed, the record re-produced to its topic),
    so it is claimed afresh and handled. A redelivery of the same record stays a duplicate."""
    inserted = await conn.fetchval(
        """
        INSERT INTO civicgrid_inbox AS i
            (consumer_group, event_id, status, topic, kafka_partition, kafka_offset, event_type, error)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (consumer_group, event_id) DO UPDATE
            SET status = EXCLUDED.status, topic = EXCLUDED.topic, kafka_partition = EXCLUDED.kafka_partition,
                kafka_offset = EXCLUDED.kafka_offset, error = EXCLUDED.error, recorded_at = now()
            WHERE i.status = 'dead_lettered'
              AND (i.topic, i.kafka_partition, i.kafka_offset)
                  IS DISTINCT FROM (EXCLUDED.topic, EXCLUDED.kafka_partition, EXCLUDED.kafka_offset)
        RETURNING true
        """,
        group, event_id, status, topic, partition, offset, event_type, error,
    )
    return bool(inserted)


async def already_seen(conn: asyncpg.Connection, *, group: str, event_id: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT true FROM civicgrid_inbox WHERE consumer_group = $1 AND event_id = $2",
        group, event_id,
    ))
