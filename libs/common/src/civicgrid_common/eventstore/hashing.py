"""The hash chain over a stream's events, in a form an auditor can recompute without our code.

For every stored event:

    content = JCS({
        "id":              "<event id, lower-case hyphenated UUID>",
        "stream_id":       "<stream id>",
        "stream_type":     "<stream type>",
        "version":         <version in the stream, integer>,
        "schema_revision": <revision of the event's schema the data was written in, integer>,
        "type":            "<event type, e.g. civicgrid.intake.case.accepted.v1>",
        "data":            <the event data as stored (before any upcasting)>,
        "metadata":        <the event metadata as stored>,
        "recorded_at":     "<recorded_at in UTC, RFC 3339, exactly 6 fraction digits, 'Z'>"
    })
    hash = lower-case hex SHA-256( content || ASCII(prev_hash) )

where JCS is the JSON Canonicalization Scheme of RFC 8785 (UTF-8 output, keys sorted by their
UTF-16 code units, ECMAScript number formatting, no whitespace), `||` is byte concatenation
and prev_hash is the previous event's hash in the same stream as 64 lower-case hex characters,
or the empty string for version 1. Every input is a column of the `events` table
(`recorded_at` printed as e.g. 2026-11-23T18:52:07.123456Z), so the chain can be checked
with any JCS implementation and SHA-256, e.g. from a `psql` export.

JCS limits numbers to what an IEEE 754 double holds exactly: an integer beyond +-2**53 in
event data is refused at append time (use a string for such values).
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Mapping
from uuid import UUID

import rfc8785

from civicgrid_common.cloudevents import format_time


class UnhashableEvent(ValueError):
    """Event content that has no canonical JSON form (e.g. an integer beyond 2**53)."""


def canonical_content(
    *,
    id: UUID,
    stream_id: str,
    stream_type: str,
    version: int,
    schema_revision: int,
    type: str,
    data: Mapping[str, Any],
    metadata: Mapping[str, Any],
    recorded_at: datetime,
) -> bytes:
    """The RFC 8785 canonical JSON bytes of an event's content (see the module docstring)."""
    document = {
        "id": str(id),
        "stream_id": stream_id,
        "stream_type": stream_type,
        "version": version,
        "schema_revision": schema_revision,
        "type": type,
        "data": dict(data),
        "metadata": dict(metadata),
        "recorded_at": format_time(recorded_at),
    }
    try:
        return rfc8785.dumps(document)
    except rfc8785.CanonicalizationError as exc:
        raise UnhashableEvent(f"event {id} of type {type} has no canonical JSON form: {exc}") from exc


def chain_hash(content: bytes, prev_hash: str | None) -> str:
    """SHA-256 over the canonical content followed by the previous hash (empty for version 1)."""
    return hashlib.sha256(content + (prev_hash or "").encode("ascii")).hexdigest()
