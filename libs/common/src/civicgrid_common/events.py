"""The platform's event types: plain data, no I/O.

An event's `type` names the event and its major version, e.g.
`civicgrid.intake.case.accepted.v1`; its JSON Schema is
`contracts/events/<type>.schema.json`. Aggregates emit `NewEvent`s; the event store turns
them into `StoredEvent`s with a version in their stream, a global position and a hash chain.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping
from uuid import UUID

from uuid6 import uuid7

# name parts in lower case with dots, then ".v<major>"
EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v([1-9][0-9]*)$")


def major_version(event_type: str) -> int:
    m = EVENT_TYPE_RE.match(event_type)
    if not m:
        raise ValueError(f"event type {event_type!r} is not of the form name.parts.v<major>")
    return int(m.group(2))


def new_event_id() -> UUID:
    """UUIDv7: time-ordered, so ids sort roughly by creation (CloudEvents `id`)."""
    return uuid7()


@dataclass(frozen=True)
class NewEvent:
    """An event an aggregate has decided on, not yet stored."""

    type: str
    data: Mapping[str, Any]
    # Context that is not the fact itself: actor (pseudonymous), correlation and causation
    # ids, traceparent. Never personal data.
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: UUID = field(default_factory=new_event_id)

    def __post_init__(self) -> None:
        major_version(self.type)


@dataclass(frozen=True)
class StoredEvent:
    """An event as the store holds it: immutable, chained to its predecessor."""

    id: UUID
    stream_id: str  # the aggregate id: Kafka key and CloudEvents subject
    stream_type: str  # e.g. "case", "approval"
    version: int  # 1-based position within its stream
    position: int  # global position in the store (order of insertion, see EventStore.read_all)
    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any]
    recorded_at: datetime  # UTC
    hash: str  # hex SHA-256 over the canonical content and prev_hash
    prev_hash: str | None  # None for version 1
