"""Our Kafka records are CloudEvents 1.0 (binary content mode) for the OFFICIAL SDK, both ways.

Anyone with the `cloudevents` SDK and the schema must read our events without civicgrid's
code, and we must read binary-mode events that the SDK writes (a department's system
publishing back). Checked with the SDK's Kafka binding (cloudevents.core.bindings.kafka).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkCloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from civicgrid_common.cloudevents import from_kafka_message, to_kafka_record
from civicgrid_common.events import StoredEvent, new_event_id

EVENT_TYPE = "civicgrid.test.parcel.registered.v1"
SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "events" / f"{EVENT_TYPE}.schema.json").read_text("utf-8"))
SOURCE = "/civicgrid/test"
SCHEMA_BASE = "https://contracts.civicgrid.invalid"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

# Arbitrary JSON, with Chinese text (CJK Unified Ideographs and CJK punctuation) well represented.
chinese = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF) | st.sampled_from("，。、：；“”《》（）"),
                  max_size=12)
json_text = chinese | st.text(max_size=12)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | json_text
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4),
                           max_leaves=12)
event_data = st.dictionaries(json_text, json_values, max_size=6)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc))


def stored_event(data: dict[str, Any], recorded_at: datetime, stream_id: str = "parcel-淮海路-001") -> StoredEvent:
    return StoredEvent(id=new_event_id(), stream_id=stream_id, stream_type="parcel", version=7, position=42,
                       type=EVENT_TYPE, data=data, metadata={"traceparent": TRACEPARENT},
                       recorded_at=recorded_at, hash="0" * 64, prev_hash=None)


def sdk_decode(event: StoredEvent) -> tuple[SdkCloudEvent, bytes]:
    record = to_kafka_record(event, topic="civicgrid.test.parcels", source=SOURCE, schema_base_url=SCHEMA_BASE)
    message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    return from_binary(message, JSONFormat()), record.key


def assert_sdk_reads(event: StoredEvent) -> None:
    ce, key = sdk_decode(event)
    assert ce.get_specversion() == "1.0"
    assert ce.get_id() == str(event.id)
    assert ce.get_source() == SOURCE
    assert ce.get_type() == EVENT_TYPE
    assert ce.get_subject() == event.stream_id
    assert ce.get_time() == event.recorded_at
    assert ce.get_dataschema() == f"{SCHEMA_BASE}/events/{EVENT_TYPE}.schema.json"
    assert ce.get_datacontenttype() == "application/json"
    assert ce.get_data() == dict(event.data)
    assert ce.get_extension("sequence") == str(event.version)
    assert ce.get_extension("traceparent") == TRACEPARENT
    assert ce.get_extension("partitionkey") == key.decode("utf-8") == event.stream_id


def test_a_schema_valid_event_is_read_by_the_sdk() -> None:
    data = {"parcel_id": "P-2026-0001", "status": "checked", "weight": 1.5, "note": "已核查，无异常", "colour": "红"}
    Draft202012Validator(SCHEMA).validate(data)
    assert_sdk_reads(stored_event(data, datetime(2026, 10, 1, 8, 30, 0, 123456, tzinfo=timezone.utc)))


@settings(max_examples=30, deadline=None)
@given(data=from_schema(SCHEMA), recorded_at=instants)
def test_every_schema_valid_payload_is_read_by_the_sdk(data: dict[str, Any], recorded_at: datetime) -> None:
    assert_sdk_reads(stored_event(data, recorded_at))


@settings(max_examples=60, deadline=None)
@given(data=event_data, recorded_at=instants, subject=chinese.filter(bool))
def test_arbitrary_json_with_chinese_text_survives_both_codecs(data: dict[str, Any], recorded_at: datetime,
                                                                subject: str) -> None:
    event = stored_event(data, recorded_at, stream_id=subject)
    assert_sdk_reads(event)
    # ...and our own decoder reads our record back identically.
    record = to_kafka_record(event, topic="t", source=SOURCE, schema_base_url=SCHEMA_BASE)
    ours = from_kafka_message(list(record.headers), record.key, record.value)
    assert (ours.id, ours.subject, ours.time, ours.data) == (str(event.id), subject, recorded_at, data)


def sdk_encode(data: dict[str, Any], subject: str, time: datetime, event_id: str) -> KafkaMessage:
    event = SdkCloudEvent(
        attributes={
            "id": event_id, "source": "/departments/civil-affairs", "type": EVENT_TYPE,
            "subject": subject, "time": time, "datacontenttype": "application/json",
            "dataschema": f"{SCHEMA_BASE}/events/{EVENT_TYPE}.schema.json",
            "traceparent": TRACEPARENT, "partitionkey": subject,
        },
        data=data,
    )
    return to_binary(event, JSONFormat())


@settings(max_examples=60, deadline=None)
@given(data=event_data, recorded_at=instants, subject=chinese.filter(bool))
def test_events_written_by_the_sdk_are_read_by_our_decoder(data: dict[str, Any], recorded_at: datetime,
                                                            subject: str) -> None:
    event_id = str(new_event_id())
    message = sdk_encode(data, subject, recorded_at, event_id)
    key = message.key.encode("utf-8") if isinstance(message.key, str) else message.key
    ours = from_kafka_message(list(message.headers.items()), key, message.value)
    assert UUID(ours.id) == UUID(event_id)
    assert ours.source == "/departments/civil-affairs"
    assert ours.type == EVENT_TYPE
    assert ours.subject == subject
    assert ours.time == recorded_at
    assert ours.dataschema == f"{SCHEMA_BASE}/events/{EVENT_TYPE}.schema.json"
    assert ours.data == data
    assert ours.traceparent == TRACEPARENT
