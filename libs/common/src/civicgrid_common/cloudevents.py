"""CloudEvents 1.0 in the Kafka protocol binding's binary content mode.

Attributes travel as `ce_*` headers, the JSON data is the record's value, the aggregate id
is the record's key (and the `subject`). Anyone with the official CloudEvents SDK and the
schema in contracts/ can read these records without civicgrid's code; a contract test
proves it.

Extensions used:
- `sequence` (CloudEvents sequence extension): the event's version within its stream.
- `traceparent` (CloudEvents distributed-tracing extension, W3C Trace Context). It is sent
  both as `ce_traceparent` and as the plain `traceparent` header that OpenTelemetry's Kafka
  propagation reads.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from civicgrid_common.events import StoredEvent

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"

Headers = Sequence[tuple[str, bytes]]


class MalformedEvent(ValueError):
    """A Kafka record that is not a valid civicgrid CloudEvent (missing header, bad JSON...)."""


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class CloudEvent:
    id: str
    source: str
    type: str
    subject: str | None
    time: datetime | None
    dataschema: str | None
    data: Any
    datacontenttype: str = CONTENT_TYPE
    extensions: Mapping[str, str] = field(default_factory=dict)

    @property
    def traceparent(self) -> str | None:
        return self.extensions.get("traceparent")

    @property
    def sequence(self) -> int | None:
        seq = self.extensions.get("sequence")
        return int(seq) if seq is not None and seq.isdigit() else None


def format_time(t: datetime) -> str:
    """RFC 3339 in UTC with a Z, microsecond precision."""
    if t.tzinfo is None:
        raise ValueError("CloudEvents time must be timezone-aware")
    return t.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def dataschema_for(event_type: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/events/{event_type}.schema.json"


def encode_json(data: Any) -> bytes:
    # Compact, UTF-8 (Chinese text stays readable), stable key order.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def to_kafka_record(
    event: StoredEvent,
    *,
    topic: str,
    source: str,
    schema_base_url: str,
    traceparent: str | None = None,
) -> KafkaRecord:
    tp = traceparent or event.metadata.get("traceparent")
    headers: list[tuple[str, bytes]] = [
        ("ce_specversion", SPECVERSION.encode()),
        ("ce_id", str(event.id).encode()),
        ("ce_source", source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_subject", event.stream_id.encode()),
        ("ce_time", format_time(event.recorded_at).encode()),
        ("ce_dataschema", dataschema_for(event.type, schema_base_url).encode()),
        ("ce_sequence", str(event.version).encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    if tp:
        headers += [("ce_traceparent", tp.encode()), ("traceparent", tp.encode())]
    return KafkaRecord(
        topic=topic,
        key=event.stream_id.encode(),
        value=encode_json(dict(event.data)),
        headers=tuple(headers),
    )


_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type")


def from_kafka_message(headers: Headers | None, key: bytes | None, value: bytes | None) -> CloudEvent:
    """Decode a binary-mode record; raise MalformedEvent if it is not one."""
    h: dict[str, str] = {}
    for name, raw in headers or ():
        try:
            h[name.lower()] = raw.decode("utf-8") if raw is not None else ""
        except UnicodeDecodeError as exc:
            raise MalformedEvent(f"header {name} is not UTF-8") from exc
    missing = [n for n in _REQUIRED if not h.get(n)]
    if missing:
        raise MalformedEvent(f"missing CloudEvents headers: {', '.join(missing)}")
    if h["ce_specversion"] != SPECVERSION:
        raise MalformedEvent(f"unsupported specversion {h['ce_specversion']!r}")
    ctype = h.get("content-type", CONTENT_TYPE)
    if not ctype.startswith(CONTENT_TYPE):
        raise MalformedEvent(f"unsupported content-type {ctype!r}")
    try:
        data = json.loads(value) if value else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"value is not JSON: {exc}") from exc
    time = None
    if h.get("ce_time"):
        try:
            time = datetime.fromisoformat(h["ce_time"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise MalformedEvent(f"bad ce_time {h['ce_time']!r}") from exc
    known = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "ce_dataschema"}
    extensions = {n[3:]: v for n, v in h.items() if n.startswith("ce_") and n not in known}
    subject = h.get("ce_subject") or (key.decode("utf-8", "replace") if key else None)
    return CloudEvent(
        id=h["ce_id"],
        source=h["ce_source"],
        type=h["ce_type"],
        subject=subject,
        time=time,
        dataschema=h.get("ce_dataschema"),
        data=data,
        datacontenttype=ctype,
        extensions=extensions,
    )
