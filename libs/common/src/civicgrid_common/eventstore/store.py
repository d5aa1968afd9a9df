"""The event store on PostgreSQL (asyncpg).

- `append` validates every event against its schema, checks the expected version, chains the
  hashes and writes the events and their outbox rows in ONE transaction (the caller's, when
  given `conn=`). The unique (stream_id, version) constraint makes the database the last
  word on concurrency: of two appenders that read the same version, one gets
  ConcurrencyConflict.
- `read_stream` returns a stream's events, upcast to the current shape.
- `read_all` returns every event in commit-safe global order (see schema.py).
- `verify_stream` recomputes the hash chain from the stored columns (see hashing.py).
"""
from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable, Mapping, NamedTuple, Sequence
from uuid import UUID

import asyncpg

from civicgrid_common.contracts import Contracts
from civicgrid_common.db import install_schema
from civicgrid_common.events import NewEvent, StoredEvent
from civicgrid_common.eventstore.hashing import UnhashableEvent, canonical_content, chain_hash
from civicgrid_common.eventstore.schema import EVENTS_DDL, SNAPSHOTS_DDL
from civicgrid_common.eventstore.upcasting import Upcasters
from civicgrid_common.outbox.records import record_for, write_outbox
from civicgrid_common.outbox.schema import OUTBOX_DDL
from civicgrid_common.telemetry import inject_traceparent

TopicFor = Callable[[str], str]


class ConcurrencyConflict(Exception):
    """The stream moved on since the caller read it: nothing was stored; reload and retry."""

    def __init__(self, stream_id: str, expected: int, actual: int, reason: str | None = None) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            reason or f"stream {stream_id!r} is at version {actual}, the append expected version {expected}"
        )


# Below the producer's max_request_size and the broker's message.max.bytes (both about 1 MiB),
# with room for the record batch's own overhead.
MAX_RECORD_BYTES = 1_000_000


class EventTooLarge(ValueError):
    """An event whose Kafka record would exceed what the broker accepts; nothing was stored."""


class StreamTypeMismatch(ValueError):
    def __init__(self, stream_id: str, stored: str, given: str) -> None:
        super().__init__(f"stream {stream_id!r} is a {stored!r} stream, an append named it {given!r}")


class GlobalPosition(NamedTuple):
    """A place in the commit-safe global order: (writing transaction id, position)."""

    tx: int
    position: int


START = GlobalPosition(0, 0)


@dataclass(frozen=True)
class VerificationFailure:
    version: int
    event_id: UUID | None
    reason: str


@dataclass(frozen=True)
class Verification:
    stream_id: str
    valid: bool
    checked: int
    failures: list[VerificationFailure] = field(default_factory=list)


@dataclass(frozen=True)
class RecordedEvent:
    """An event's row as recorded, every input of its hash among them (hashing.py): the data as
    written in its schema revision, not upcast. What an auditor recomputes the chain from."""

    id: UUID
    stream_id: str
    stream_type: str
    version: int
    schema_revision: int
    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any]
    recorded_at: datetime
    hash: str
    prev_hash: str | None


@dataclass(frozen=True)
class Snapshot:
    stream_id: str
    stream_type: str
    version: int
    revision: int
    state: Mapping[str, Any]


_EVENT_COLUMNS = (
    "position, tx, id, stream_id, stream_type, version, schema_revision, type, data, metadata, "
    "recorded_at, hash, prev_hash"
)


def _json(value: Any) -> Any:
    # Pools made by db.create_pool decode JSON already; a bare connection returns text.
    return json.loads(value) if isinstance(value, str) else value


_SAFE_NUMBER = 2**53  # RFC 8785 (and JavaScript) represent numbers exactly only below this


def _normalised(data: Mapping[str, Any]) -> dict[str, Any]:
    """Data as it will come back from jsonb, so the hash covers exactly what is stored."""
    normal = json.loads(json.dumps(dict(data), ensure_ascii=False, allow_nan=False))
    _refuse_unsafe_floats(normal)
    return normal


def _refuse_unsafe_floats(value: Any, path: str = "") -> None:
    # jsonb stores 1e16 as the integer 10000000000000000, which canonical JSON cannot hash
    # again: such an event would later fail verification without anyone touching it.
    if isinstance(value, float) and abs(value) >= _SAFE_NUMBER:
        raise UnhashableEvent(f"number at {path or '/'} is {value!r}: beyond 2**53, it cannot be hashed exactly")
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_unsafe_floats(v, f"{path}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_unsafe_floats(v, f"{path}/{i}")


class EventStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        contracts: Contracts,
        *,
        source: str,
        schema_base_url: str,
        topic_for: TopicFor | None = None,
        snapshot_every: int | None = None,
        upcasters: Upcasters | None = None,
    ) -> None:
        self.pool = pool
        self.contracts = contracts
        self.source = source
        self.schema_base_url = schema_base_url
        # Injectable so tests (and tools) can route event types to their own topics.
        self.topic_for: TopicFor = topic_for or contracts.topic_for
        self.snapshot_every = snapshot_every
        self.upcasters = upcasters or Upcasters()

    @classmethod
    def for_service(cls, pool: asyncpg.Pool, settings: Any, **options: Any) -> "EventStore":
        """A service's event store: its database, the contracts, its CloudEvents source and
        the base URL its events' dataschema points under (all from the service's settings)."""
        return cls(pool, Contracts(settings.contracts_dir), source=settings.source,
                   schema_base_url=settings.schema_base_url, **options)

    async def install(self) -> None:
        await install_schema(self.pool, [EVENTS_DDL, SNAPSHOTS_DDL, OUTBOX_DDL])
        # Parsing the contracts takes long enough to stall a serving loop: do it now, in a thread.
        await asyncio.to_thread(self.contracts.preload)

    @asynccontextmanager
    async def _transaction(self, conn: asyncpg.Connection | None) -> AsyncIterator[asyncpg.Connection]:
        """The caller's transaction as it is, or a new one. An append in the caller's transaction
        needs no savepoint of its own (two round trips each append): it refuses everything it
        can before its first write, its insert has its own savepoint for a lost race, and a
        database error after that aborts the caller's whole transaction, so half an append can
        never commit."""
        if conn is not None and conn.is_in_transaction():
            yield conn
            return
        if conn is not None:  # a connection outside any transaction: the append makes its own
            async with conn.transaction():
                yield conn
            return
        async with self.pool.acquire() as own:
            async with own.transaction():
                yield own

    # ------------------------------------------------------------------ append

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        conn: asyncpg.Connection | None = None,
        found_empty: bool = False,
    ) -> list[StoredEvent]:
        """Append `events` to the stream at `expected_version` (ConcurrencyConflict if it is not
        there, StreamTypeMismatch if the stream is another type's), with their outbox records,
        in `conn`'s transaction if it has one.

        `found_empty`: `conn`'s transaction has just read this stream and found no event (a unit
        of work's `find`), so its head need not be read again: a writer that got there in
        between still loses, on the unique version, as a ConcurrencyConflict."""
        if expected_version < 0:
            raise ValueError("expected_version is 0 for a new stream, else the version last read")
        if found_empty and (expected_version != 0 or conn is None):
            raise ValueError("found_empty is for a new stream (expected_version 0) read in conn's transaction")
        if not events:
            return []
        # Everything that can be refused is refused before a row is written.
        for event in events:
            self.contracts.validate(event.type, dict(event.data))
        topics = [self.topic_for(event.type) for event in events]

        async with self._transaction(conn) as tx:
            # Publishing and read_all order events by their writing transaction's id, which
            # PostgreSQL assigns at a transaction's first write, not at its commit. A caller's
            # transaction that wrote something before this append (an inbox claim, say) can be
            # older than the one that wrote the head it builds on: appending then would put
            # version N+1 before version N in commit-safe order. Such an append is refused as a
            # conflict; the retry runs in a newer transaction.
            head = None if found_empty else await tx.fetchrow(
                """
                SELECT version, hash, stream_type, tx > pg_current_xact_id() AS head_is_newer
                FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1
                """,
                stream_id,
            )
            actual = head["version"] if head else 0
            if actual != expected_version:
                raise ConcurrencyConflict(stream_id, expected_version, actual)
            if head and head["head_is_newer"]:
                raise ConcurrencyConflict(
                    stream_id, expected_version, actual,
                    f"stream {stream_id!r} was last written by a transaction newer than this one; "
                    "retry the command in a new transaction",
                )
            if head and head["stream_type"] != stream_type:
                raise StreamTypeMismatch(stream_id, head["stream_type"], stream_type)
            stored = self._chain(stream_id, stream_type, expected_version, head["hash"] if head else None, events)
            # The records carry no position, so they are made, and their size refused, before
            # anything is written.
            records = [
                record_for(e, topic=t, source=self.source, schema_base_url=self.schema_base_url)
                for e, t in zip(stored, topics)
            ]
            for record, event in zip(records, stored):
                size = len(record.key) + len(record.value) + sum(len(n) + len(v) for n, v in record.headers)
                if size > MAX_RECORD_BYTES:
                    # Kafka would refuse it, and the relay would stall on it for good.
                    raise EventTooLarge(f"{event.type} for {stream_id!r} is {size} bytes as a Kafka record; "
                                        f"the limit is {MAX_RECORD_BYTES}")
            try:
                # A savepoint, so that after losing a race we can still read who won.
                async with tx.transaction():
                    stored = await self._insert(tx, stored)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != "events_stream_version":
                    raise
                won = await tx.fetchval("SELECT max(version) FROM events WHERE stream_id = $1", stream_id)
                raise ConcurrencyConflict(stream_id, expected_version, won or 0) from None
            await write_outbox(tx, stored, records)
        return stored

    def _chain(
        self,
        stream_id: str,
        stream_type: str,
        after_version: int,
        prev_hash: str | None,
        events: Sequence[NewEvent],
    ) -> list[StoredEvent]:
        recorded_at = datetime.now(timezone.utc)
        # The trace this append runs in rides along to Kafka (the outbox record's traceparent),
        # so one trace goes from the window's HTTP request to the department's consumer.
        traceparent = inject_traceparent()
        chained: list[StoredEvent] = []
        for offset, event in enumerate(events, start=1):
            version = after_version + offset
            metadata_in = dict(event.metadata)
            if traceparent and "traceparent" not in metadata_in:
                metadata_in["traceparent"] = traceparent
            data, metadata = _normalised(event.data), _normalised(metadata_in)
            content = canonical_content(
                id=event.id,
                stream_id=stream_id,
                stream_type=stream_type,
                version=version,
                schema_revision=self.upcasters.current_revision(event.type),
                type=event.type,
                data=data,
                metadata=metadata,
                recorded_at=recorded_at,
            )
            digest = chain_hash(content, prev_hash)
            chained.append(
                StoredEvent(
                    id=event.id,
                    stream_id=stream_id,
                    stream_type=stream_type,
                    version=version,
                    position=0,  # assigned by the database on insert
                    type=event.type,
                    data=data,
                    metadata=metadata,
                    recorded_at=recorded_at,
                    hash=digest,
                    prev_hash=prev_hash,
                )
            )
            prev_hash = digest
        return chained

    async def _insert(self, conn: asyncpg.Connection, events: list[StoredEvent]) -> list[StoredEvent]:
        positions = await conn.fetch(
            """
            INSERT INTO events (id, stream_id, stream_type, version, schema_revision, type, data,
                                metadata, recorded_at, hash, prev_hash)
            SELECT id, stream_id, stream_type, version, schema_revision, type, data::jsonb,
                   metadata::jsonb, recorded_at, hash, prev_hash
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::int[], $6::text[],
                        $7::text[], $8::text[], $9::timestamptz[], $10::text[], $11::text[])
                 AS e(id, stream_id, stream_type, version, schema_revision, type, data, metadata,
                      recorded_at, hash, prev_hash)
            ORDER BY version
            RETURNING position
            """,
            [e.id for e in events],
            [e.stream_id for e in events],
            [e.stream_type for e in events],
            [e.version for e in events],
            [self.upcasters.current_revision(e.type) for e in events],
            [e.type for e in events],
            [json.dumps(e.data, ensure_ascii=False) for e in events],
            [json.dumps(e.metadata, ensure_ascii=False) for e in events],
            [e.recorded_at for e in events],
            [e.hash for e in events],
            [e.prev_hash for e in events],
        )
        # RETURNING follows the insertion order, which ORDER BY version fixed
        return [replace(e, position=row["position"]) for e, row in zip(events, positions)]

    # ------------------------------------------------------------------ read

    def _from_row(self, row: asyncpg.Record) -> StoredEvent:
        upcast = self.upcasters.upcast(row["type"], row["schema_revision"], _json(row["data"]))
        return StoredEvent(
            id=row["id"],
            stream_id=row["stream_id"],
            stream_type=row["stream_type"],
            version=row["version"],
            position=row["position"],
            type=row["type"],
            data=upcast.data,
            metadata=_json(row["metadata"]),
            recorded_at=row["recorded_at"],
            hash=row["hash"],
            prev_hash=row["prev_hash"],
        )

    async def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        conn: asyncpg.Connection | None = None,
    ) -> list[StoredEvent]:
        """Events of one stream from `from_version` to `to_version` (inclusive), in order."""
        query = (
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND version >= $2 "
            "AND ($3::int IS NULL OR version <= $3) ORDER BY version"
        )
        if conn is not None:
            rows = await conn.fetch(query, stream_id, from_version, to_version)
        else:
            async with self.pool.acquire() as own:
                rows = await own.fetch(query, stream_id, from_version, to_version)
        return [self._from_row(r) for r in rows]

    async def read_stream_as_recorded(self, stream_id: str) -> list[RecordedEvent]:
        """The stream's rows as recorded, in order: for showing and re-checking a history, not
        for replaying it (read_stream upcasts the data to the current revision)."""
        rows = await self.pool.fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version", stream_id
        )
        return [RecordedEvent(id=r["id"], stream_id=r["stream_id"], stream_type=r["stream_type"], version=r["version"],
                              schema_revision=r["schema_revision"], type=r["type"], data=_json(r["data"]),
                              metadata=_json(r["metadata"]), recorded_at=r["recorded_at"], hash=r["hash"],
                              prev_hash=r["prev_hash"]) for r in rows]

    async def stream_version(self, stream_id: str, *, conn: asyncpg.Connection | None = None) -> int:
        """The stream's current version (0 if it has no events)."""
        query = "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1"
        if conn is not None:
            return await conn.fetchval(query, stream_id)
        return await self.pool.fetchval(query, stream_id)

    async def stream_ids(self, stream_type: str, *, conn: asyncpg.Connection | None = None) -> list[str]:
        """Every stream of a type, by id (from their first events: an index, not a scan)."""
        query = "SELECT stream_id FROM events WHERE stream_type = $1 AND version = 1 ORDER BY stream_id"
        rows = await (conn or self.pool).fetch(query, stream_type)
        return [r["stream_id"] for r in rows]

    async def count_events(self, stream_type: str, *, conn: asyncpg.Connection | None = None) -> int:
        """How many events the streams of a type hold (what a rebuild expects to replay)."""
        return await (conn or self.pool).fetchval("SELECT count(*) FROM events WHERE stream_type = $1", stream_type)

    async def position_of(self, position: int) -> GlobalPosition:
        """The commit-order place of the event at a plain `position` (StoredEvent.position)."""
        if position == 0:
            return START
        tx = await self.pool.fetchval("SELECT tx FROM events WHERE position = $1", position)
        if tx is None:
            raise LookupError(f"no event at position {position}")
        return GlobalPosition(int(tx), position)

    async def read_all(self, after: int | GlobalPosition = 0, limit: int = 1000) -> list[StoredEvent]:
        """Every event after `after`, in commit-safe order (transaction id, then position).

        `after` is 0 for the beginning, or the `position` of the last event a reader has
        handled (or its GlobalPosition). Only events of transactions older than every still
        running one are returned, so an event can never turn up later *before* one already
        returned: a long-running writer delays readers, it is never skipped.
        """
        start = after if isinstance(after, GlobalPosition) else await self.position_of(after)
        rows = await self.pool.fetch(
            f"""
            SELECT {_EVENT_COLUMNS} FROM events
            WHERE (tx, position) > ($1::xid8, $2::bigint)
              AND tx < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY tx, position
            LIMIT $3
            """,
            start.tx,
            start.position,
            limit,
        )
        return [self._from_row(r) for r in rows]

    # ------------------------------------------------------------------ verify

    async def verify_stream(self, stream_id: str) -> Verification:
        """Recompute every hash of the stream from its stored columns and check the links."""
        rows = await self.pool.fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version", stream_id
        )
        failures: list[VerificationFailure] = []
        prev_hash: str | None = None
        for expected_version, row in enumerate(rows, start=1):
            failures += _check_row(row, expected_version, prev_hash)
            prev_hash = row["hash"]
        return Verification(stream_id=stream_id, valid=not failures, checked=len(rows), failures=failures)

    # ------------------------------------------------------------------ snapshots

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        row = await self.pool.fetchrow(
            "SELECT stream_id, stream_type, version, revision, state FROM snapshots WHERE stream_id = $1",
            stream_id,
        )
        if row is None:
            return None
        return Snapshot(row["stream_id"], row["stream_type"], row["version"], row["revision"], _json(row["state"]))

    async def save_snapshot(self, snapshot: Snapshot, *, conn: asyncpg.Connection | None = None) -> None:
        """Keep the newest snapshot of a stream (an older one never replaces a newer)."""
        query = """
            INSERT INTO snapshots (stream_id, stream_type, version, revision, state)
            VALUES ($1, $2, $3, $4, $5::text::jsonb)
            ON CONFLICT (stream_id) DO UPDATE
               SET version = EXCLUDED.version, revision = EXCLUDED.revision,
                   state = EXCLUDED.state, stream_type = EXCLUDED.stream_type, taken_at = now()
             WHERE snapshots.version <= EXCLUDED.version
        """
        args = (
            snapshot.stream_id,
            snapshot.stream_type,
            snapshot.version,
            snapshot.revision,
            json.dumps(dict(snapshot.state), ensure_ascii=False),
        )
        if conn is not None:
            await conn.execute(query, *args)
        else:
            await self.pool.execute(query, *args)


def _check_row(row: asyncpg.Record, expected_version: int, prev_hash: str | None) -> list[VerificationFailure]:
    version, event_id = row["version"], row["id"]
    failures = []
    if version != expected_version:
        failures.append(VerificationFailure(version, event_id, f"version gap: expected {expected_version}"))
    if row["prev_hash"] != prev_hash:
        failures.append(
            VerificationFailure(
                version, event_id, f"broken link: prev_hash {row['prev_hash']} != previous event's hash {prev_hash}"
            )
        )
    try:
        content = canonical_content(
            id=event_id,
            stream_id=row["stream_id"],
            stream_type=row["stream_type"],
            version=version,
            schema_revision=row["schema_revision"],
            type=row["type"],
            data=_json(row["data"]),
            metadata=_json(row["metadata"]),
            recorded_at=row["recorded_at"],
        )
    except ValueError as exc:
        return failures + [VerificationFailure(version, event_id, f"content cannot be canonicalised: {exc}")]
    recomputed = chain_hash(content, row["prev_hash"])
    if recomputed != row["hash"]:
        failures.append(
            VerificationFailure(
                version, event_id, f"content hash mismatch: stored {row['hash']}, recomputed {recomputed}"
            )
        )
    return failures
