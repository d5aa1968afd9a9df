"""Writing outbox rows: each stored event as its CloudEvents Kafka record, in the caller's
transaction (the event store calls this inside its append transaction)."""
from __future__ import annotations

import json
from typing import Sequence

import asyncpg

from civicgrid_common.cloudevents import KafkaRecord, to_kafka_record
from civicgrid_common.events import StoredEvent


def record_for(event: StoredEvent, *, topic: str, source: str, schema_base_url: str) -> KafkaRecord:
    """The Kafka record of an event: key = stream (aggregate) id, traceparent from metadata."""
    return to_kafka_record(event, topic=topic, source=source, schema_base_url=schema_base_url)


def headers_to_json(headers: Sequence[tuple[str, bytes]]) -> str:
    # CloudEvents binary-mode headers are text; keeping them as JSON text keeps the outbox
    # readable with psql when someone has to look at what is waiting.
    return json.dumps([[name, value.decode("utf-8")] for name, value in headers], ensure_ascii=False)


def headers_from_json(stored: str | list) -> list[tuple[str, bytes]]:
    pairs = json.loads(stored) if isinstance(stored, str) else stored
    return [(name, value.encode("utf-8")) for name, value in pairs]


async def write_outbox(conn: asyncpg.Connection, events: Sequence[StoredEvent], records: Sequence[KafkaRecord]) -> None:
    """Insert one outbox row per event; must run inside the transaction that stores the events."""
    await conn.execute(
        """
        INSERT INTO outbox (event_id, topic, key, value, headers)
        SELECT e, t, k, v, h::jsonb
        FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[], $5::text[]) AS r(e, t, k, v, h)
        """,
        [e.id for e in events],
        [r.topic for r in records],
        [r.key for r in records],
        [r.value for r in records],
        [headers_to_json(r.headers) for r in records],
    )
