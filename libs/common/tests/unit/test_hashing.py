"""The hash-chain recipe (eventstore/hashing.py) as an auditor would recompute it: RFC 8785
canonical JSON written out by hand here, SHA-256 from hashlib."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from uuid import UUID

import pytest

from civicgrid_common.eventstore.hashing import UnhashableEvent, canonical_content, chain_hash

EVENT = dict(
    id=UUID("0190f5d2-8b4c-7cde-8f00-0123456789ab"),
    stream_id="L-1",
    stream_type="ledger",
    version=2,
    schema_revision=1,
    type="civicgrid.test.ledger.credited.v1",
    data={"memo": "补办 ok", "amount": 5},
    metadata={"actor": "u-7"},
    recorded_at=datetime(2026, 11, 23, 18, 52, 7, 123456, tzinfo=timezone.utc),
)

# The same content written out by hand: keys sorted, no whitespace, UTF-8, time with 6 digits and Z.
BY_HAND = (
    '{"data":{"amount":5,"memo":"补办 ok"},"id":"0190f5d2-8b4c-7cde-8f00-0123456789ab",'
    '"metadata":{"actor":"u-7"},"recorded_at":"2026-11-23T18:52:07.123456Z","schema_revision":1,'
    '"stream_id":"L-1","stream_type":"ledger","type":"civicgrid.test.ledger.credited.v1","version":2}'
).encode("utf-8")


def test_canonical_content_is_rfc8785_of_the_documented_fields():
    assert canonical_content(**EVENT) == BY_HAND


def test_hash_is_sha256_of_content_then_previous_hash():
    prev = "ab" * 32
    assert chain_hash(BY_HAND, prev) == hashlib.sha256(BY_HAND + prev.encode("ascii")).hexdigest()
    assert chain_hash(BY_HAND, None) == hashlib.sha256(BY_HAND).hexdigest()


def test_key_order_and_time_zone_do_not_change_the_content():
    shuffled = {**EVENT, "data": {"amount": 5, "memo": "补办 ok"}}
    beijing = timezone(timedelta(hours=8))
    in_beijing = {**EVENT, "recorded_at": EVENT["recorded_at"].astimezone(beijing)}
    assert canonical_content(**shuffled) == canonical_content(**in_beijing) == BY_HAND


def test_numbers_use_ecmascript_form():
    content = canonical_content(**{**EVENT, "data": {"a": 1.0, "b": 1e21, "c": 0.1}})
    assert b'"data":{"a":1,"b":1e+21,"c":0.1}' in content


@pytest.mark.parametrize(
    "change",
    [
        {"version": 3},
        {"schema_revision": 2},
        {"data": {"memo": "补办 ok", "amount": 6}},
        {"metadata": {"actor": "u-8"}},
        {"recorded_at": EVENT["recorded_at"] + timedelta(microseconds=1)},
        {"stream_id": "L-2"},
    ],
)
def test_any_changed_field_changes_the_hash(change):
    assert chain_hash(canonical_content(**{**EVENT, **change}), None) != chain_hash(BY_HAND, None)


def test_integers_beyond_double_precision_are_refused_with_a_clear_error():
    with pytest.raises(UnhashableEvent, match="canonical JSON"):
        canonical_content(**{**EVENT, "data": {"amount": 2**60}})
