"""The event store: append with optimistic concurrency, hash chain, upcasting, snapshots,
and the outbox rows written in the same transaction."""
from __future__ import annotations

from civicgrid_common.eventstore.hashing import UnhashableEvent, canonical_content, chain_hash
from civicgrid_common.eventstore.repository import AggregateNotFound, Repository
from civicgrid_common.eventstore.store import (
    START,
    ConcurrencyConflict,
    EventStore,
    EventTooLarge,
    GlobalPosition,
    RecordedEvent,
    Snapshot,
    StreamTypeMismatch,
    Verification,
    VerificationFailure,
)
from civicgrid_common.eventstore.upcasting import Upcasters

__all__ = [
    "START",
    "AggregateNotFound",
    "ConcurrencyConflict",
    "EventStore",
    "EventTooLarge",
    "GlobalPosition",
    "RecordedEvent",
    "Repository",
    "Snapshot",
    "StreamTypeMismatch",
    "UnhashableEvent",
    "Upcasters",
    "Verification",
    "VerificationFailure",
    "canonical_content",
    "chain_hash",
]
