"""DDL of the event store: the immutable, hash-chained `events` table and `snapshots`.

Idempotent (IF NOT EXISTS / OR REPLACE), applied by EventStore.install under db.install_schema's
advisory lock.

`tx` is the id of the transaction that wrote the row (pg_current_xact_id()). Reading in
(tx, position) order and only below the oldest running transaction
(pg_snapshot_xmin(pg_current_snapshot())) gives a global order in which no row can still
appear *before* a position a reader has passed: the high-water-mark problem of plain
sequence positions (a transaction that took position 10 commits after the one that took 11).
"""
from __future__ import annotations

EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx              xid8        NOT NULL DEFAULT pg_current_xact_id(),
    id              uuid        NOT NULL UNIQUE,
    stream_id       text        NOT NULL,
    stream_type     text        NOT NULL,
    version         integer     NOT NULL CHECK (version >= 1),
    schema_revision integer     NOT NULL DEFAULT 1 CHECK (schema_revision >= 1),
    type            text        NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL,
    hash            text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    prev_hash       text        CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    -- optimistic concurrency, enforced by the database: two appenders that both read
    -- version N cannot both store N + 1
    CONSTRAINT events_stream_version UNIQUE (stream_id, version),
    CONSTRAINT events_first_has_no_prev CHECK ((version = 1) = (prev_hash IS NULL))
);
CREATE INDEX IF NOT EXISTS events_commit_order ON events (tx, position);
-- Every stream of a type, by its first event (EventStore.stream_ids, count_events).
CREATE INDEX IF NOT EXISTS events_stream_starts ON events (stream_type, stream_id) WHERE version = 1;
CREATE INDEX IF NOT EXISTS events_by_stream_type ON events (stream_type);

-- History is never changed: corrections are new events. Only a superuser who disables
-- these triggers can alter a row, and the hash chain then shows it (verify_stream).
CREATE OR REPLACE FUNCTION civicgrid_events_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % on table % refused; append a correcting event instead',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE OR REPLACE TRIGGER events_refuse_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION civicgrid_events_immutable();
CREATE OR REPLACE TRIGGER events_refuse_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION civicgrid_events_immutable();
"""

# A cache, never the source of truth: one row per stream, the latest snapshot taken.
SNAPSHOTS_DDL = """
CREATE TABLE IF NOT EXISTS snapshots (
    stream_id   text        PRIMARY KEY,
    stream_type text        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    revision    integer     NOT NULL,
    state       jsonb       NOT NULL,
    taken_at    timestamptz NOT NULL DEFAULT now()
);
"""
