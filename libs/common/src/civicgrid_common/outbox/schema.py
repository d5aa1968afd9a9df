"""DDL of the transactional outbox and the relay's checkpoint.

An outbox row is a ready CloudEvents Kafka record (binary mode), written in the same
transaction as the event it carries. Rows are ordered for publishing by (tx, position): see
eventstore/schema.py for why the writing transaction's id is part of the order. The relay's
checkpoint is the (tx, position) of the last row Kafka acknowledged; rows at or before it are
published and may be pruned after a retention period.
"""
from __future__ import annotations

OUTBOX_DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    position   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx         xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id   uuid        NOT NULL,
    topic      text        NOT NULL,
    key        bytea       NOT NULL,
    value      bytea       NOT NULL,
    headers    jsonb       NOT NULL,  -- [[name, value], ...], values are text
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS outbox_commit_order ON outbox (tx, position);

CREATE TABLE IF NOT EXISTS outbox_checkpoint (
    relay      text        PRIMARY KEY,
    tx         xid8        NOT NULL,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""
