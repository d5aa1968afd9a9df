"""Loading and saving aggregates: latest snapshot + later events in, pending events out.

Snapshots are a cache for long streams, never the source of truth: a snapshot of another
`snapshot_revision`, or one whose version is above the stream's (a stream can't shrink, so
such a snapshot is wrong), is ignored and the stream is replayed from the start.
"""
from __future__ import annotations

import logging
from typing import Generic, TypeVar

import asyncpg

from civicgrid_common.aggregate import Aggregate
from civicgrid_common.events import StoredEvent
from civicgrid_common.eventstore.store import EventStore, Snapshot

A = TypeVar("A", bound=Aggregate)

log = logging.getLogger(__name__)


class AggregateNotFound(LookupError):
    """No such aggregate: the stream holds no event, or (`other_type`) is another aggregate's."""

    def __init__(self, stream_id: str, other_type: str | None = None) -> None:
        self.stream_id = stream_id
        self.other_type = other_type
        super().__init__(f"no events for {stream_id!r}" if other_type is None
                         else f"{stream_id!r} is a {other_type} stream")


class Repository(Generic[A]):
    def __init__(self, store: EventStore, aggregate_cls: type[A], *, snapshot_every: int | None = None) -> None:
        self.store = store
        self.aggregate_cls = aggregate_cls
        if snapshot_every is None:
            snapshot_every = store.snapshot_every if store.snapshot_every is not None else aggregate_cls.snapshot_every
        self.snapshot_every = snapshot_every
        if self.snapshot_every is not None and self.snapshot_every < 1:
            raise ValueError("snapshot_every must be a positive number of versions")
        if self.snapshot_every and not aggregate_cls.supports_snapshots():
            raise TypeError(f"{aggregate_cls.__name__} implements no snapshot_state/from_snapshot")

    async def load(self, stream_id: str, *, conn: asyncpg.Connection | None = None) -> A:
        """The aggregate its stream holds; AggregateNotFound if there is no such stream, or if
        the stream is another aggregate's (a case's id is no complaint)."""
        start = await self._usable_snapshot(stream_id, conn)
        from_version = start.version + 1 if start else 1
        events = await self.store.read_stream(stream_id, from_version, conn=conn)
        if start is None and not events:
            raise AggregateNotFound(stream_id)
        if events and events[0].stream_type != self.aggregate_cls.stream_type:
            raise AggregateNotFound(stream_id, events[0].stream_type)
        return self.aggregate_cls.replay(stream_id, events, start=start)

    async def _usable_snapshot(self, stream_id: str, conn: asyncpg.Connection | None) -> A | None:
        if not self.snapshot_every:
            return None
        snapshot = await self.store.load_snapshot(stream_id)
        if snapshot is None or snapshot.revision != self.aggregate_cls.snapshot_revision \
                or snapshot.stream_type != self.aggregate_cls.stream_type:
            return None
        stream_version = await self.store.stream_version(stream_id, conn=conn)
        if snapshot.version > stream_version:
            log.warning(
                "ignoring snapshot of %s at version %d: the stream is only at %d",
                stream_id, snapshot.version, stream_version,
            )
            return None
        return self.aggregate_cls.from_snapshot(stream_id, snapshot.state, snapshot.version)

    async def save(self, aggregate: A, *, conn: asyncpg.Connection | None = None,
                   found_empty: bool = False) -> list[StoredEvent]:
        """Store the pending events with the version they were decided on (ConcurrencyConflict
        if the stream moved on), then snapshot if a multiple of `snapshot_every` was crossed.
        `found_empty`: `conn`'s transaction read the stream and found no event (EventStore.append)."""
        before = aggregate.stored_version
        stored = await self.store.append(
            aggregate.id, self.aggregate_cls.stream_type, before, aggregate.pending_events, conn=conn,
            found_empty=found_empty,
        )
        aggregate.mark_saved()
        every = self.snapshot_every
        if every and stored and aggregate.version // every > before // every:
            await self.store.save_snapshot(
                Snapshot(
                    stream_id=aggregate.id,
                    stream_type=self.aggregate_cls.stream_type,
                    version=aggregate.version,
                    revision=self.aggregate_cls.snapshot_revision,
                    state=aggregate.snapshot_state(),
                ),
                conn=conn,
            )
        return stored
