"""Event naming, the CloudEvents binary-mode codec and run-time contract checks (pure, no I/O)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pytest

from civicgrid_common.cloudevents import (
    MalformedEvent,
    format_time,
    from_kafka_message,
    to_kafka_record,
)
from civicgrid_common.contracts import Contracts, SchemaViolation, UnknownEventType
from civicgrid_common.events import NewEvent, StoredEvent, major_version, new_event_id

FIXTURES = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "contracts"


def stored(**over) -> StoredEvent:
    base = dict(
        id=new_event_id(),
        stream_id="ledger-1",
        stream_type="ledger",
        version=3,
        position=42,
        type="civicgrid.test.ledger.credited.v1",
        data={"amount": 5, "memo": "淮海路街道 window"},
        metadata={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        recorded_at=datetime(2026, 10, 1, 8, 30, tzinfo=timezone(timedelta(hours=8))),
        hash="ab" * 32,
        prev_hash="cd" * 32,
    )
    base.update(over)
    return StoredEvent(**base)


class TestEventTypes:
    @pytest.mark.parametrize("name,major", [("civicgrid.intake.case.accepted.v1", 1), ("a.b.v12", 12)])
    def test_major_version_is_read_from_the_name(self, name, major):
        assert major_version(name) == major

    @pytest.mark.parametrize("name", ["case.accepted", "civicgrid.Case.v1", "x.v0", "civicgrid..v1", "v1"])
    def test_names_without_a_major_version_are_refused(self, name):
        with pytest.raises(ValueError):
            NewEvent(name, {})

    def test_event_ids_are_uuid7_and_time_ordered(self):
        ids = [new_event_id() for _ in range(50)]
        assert all(UUID(str(i)).version == 7 for i in ids)
        assert ids == sorted(ids)


class TestCodec:
    def test_binary_mode_headers_key_and_value(self):
        ev = stored()
        rec = to_kafka_record(ev, topic="t", source="/civicgrid/test", schema_base_url="http://h/contracts/")
        h = dict(rec.headers)
        assert rec.key == b"ledger-1"
        assert h["ce_specversion"] == b"1.0"
        assert h["ce_id"] == str(ev.id).encode()
        assert h["ce_type"] == b"civicgrid.test.ledger.credited.v1"
        assert h["ce_subject"] == b"ledger-1"
        assert h["ce_time"] == b"2026-10-01T00:30:00.000000Z"  # converted to UTC
        assert h["ce_dataschema"] == b"http://h/contracts/events/civicgrid.test.ledger.credited.v1.schema.json"
        assert h["ce_sequence"] == b"3"
        assert h["content-type"] == b"application/json"
        assert h["traceparent"] == h["ce_traceparent"]
        assert "淮海路".encode() in rec.value  # UTF-8, not \\u escapes

    def test_round_trip(self):
        ev = stored()
        rec = to_kafka_record(ev, topic="t", source="/civicgrid/test", schema_base_url="http://h")
        ce = from_kafka_message(list(rec.headers), rec.key, rec.value)
        assert (ce.id, ce.type, ce.subject, ce.sequence) == (str(ev.id), ev.type, "ledger-1", 3)
        assert ce.time == ev.recorded_at
        assert ce.data == dict(ev.data)
        assert ce.traceparent == ev.metadata["traceparent"]

    @pytest.mark.parametrize(
        "headers,value,why",
        [
            ([], b"{}", "missing CloudEvents headers"),
            ([("ce_specversion", b"0.3"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t.v1")], b"{}", "specversion"),
            ([("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t.v1")], b"{not json", "not JSON"),
            ([("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t.v1"), ("ce_time", b"yesterday")], b"{}", "ce_time"),
            ([("ce_specversion", b"1.0"), ("ce_id", b"\xff"), ("ce_source", b"/s"), ("ce_type", b"t.v1")], b"{}", "UTF-8"),
        ],
    )
    def test_records_that_are_not_cloudevents_are_refused_with_the_reason(self, headers, value, why):
        with pytest.raises(MalformedEvent, match=why):
            from_kafka_message(headers, b"k", value)

    def test_naive_times_are_refused(self):
        with pytest.raises(ValueError):
            format_time(datetime(2026, 1, 1))


class TestContracts:
    def test_every_failing_field_is_named(self):
        c = Contracts(FIXTURES)
        with pytest.raises(SchemaViolation) as exc:
            c.validate("civicgrid.test.ledger.credited.v1", {"amount": 0, "extra": 1})
        pointers = {e.pointer for e in exc.value.errors}
        assert "/amount" in pointers and "" in pointers  # bad value, and missing/unknown at the root
        assert len(exc.value.errors) == 3

    def test_valid_data_passes(self):
        Contracts(FIXTURES).validate("civicgrid.test.ledger.credited.v1", {"amount": 1, "memo": "x"})

    def test_formats_are_checked(self):
        with pytest.raises(SchemaViolation, match="opened_on"):
            Contracts(FIXTURES).validate("civicgrid.test.ledger.opened.v1", {"owner": "a", "opened_on": "31/12/2026"})

    def test_topic_routing_comes_from_the_asyncapi_document(self):
        c = Contracts(FIXTURES)
        assert c.topic_for("civicgrid.test.ledger.opened.v1") == "test.ledger"
        with pytest.raises(UnknownEventType):
            c.topic_for("civicgrid.test.ledger.closed.v1")
        with pytest.raises(UnknownEventType):
            c.schema("civicgrid.test.ledger.closed.v1")
