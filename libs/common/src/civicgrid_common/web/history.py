"""A stream's history as auditors read it over HTTP, the same in every service: each event as
recorded with every input of its hash (eventstore/hashing.py), so that the chain is recomputed
from the answer alone, and the store's own verification beside it."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from pydantic import BaseModel, Field

from civicgrid_common.eventstore import RecordedEvent, Verification


class RecordedEventOut(BaseModel):
    """One event as recorded: hash = SHA-256(JCS({id, stream_id, stream_type, version,
    schema_revision, type, data, metadata, recorded_at}) || prev_hash), recorded_at with exactly
    6 fraction digits, prev_hash empty for version 1."""
    id: str
    stream_id: str
    stream_type: str
    type: str
    version: int
    schema_revision: int = Field(description="the revision of the event's schema its data was written in")
    recorded_at: datetime
    data: dict[str, Any] = Field(description="as recorded, in its schema revision (not upcast)")
    metadata: dict[str, Any] = Field(description="as recorded (the trace context it was written in)")
    hash: str
    prev_hash: str | None


class VerificationFailureOut(BaseModel):
    version: int
    event_id: str | None
    reason: str


class VerificationOut(BaseModel):
    valid: bool
    checked: int
    failures: list[VerificationFailureOut]


def recorded_events_out(events: Sequence[RecordedEvent]) -> list[RecordedEventOut]:
    return [RecordedEventOut(id=str(e.id), stream_id=e.stream_id, stream_type=e.stream_type, type=e.type,
                             version=e.version, schema_revision=e.schema_revision, recorded_at=e.recorded_at,
                             data=dict(e.data), metadata=dict(e.metadata), hash=e.hash, prev_hash=e.prev_hash)
            for e in events]


def verification_out(v: Verification) -> VerificationOut:
    return VerificationOut(valid=v.valid, checked=v.checked, failures=[
        VerificationFailureOut(version=f.version, event_id=str(f.event_id) if f.event_id else None, reason=f.reason)
        for f in v.failures])
