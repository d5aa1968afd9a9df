"""The Aggregate base: commands emit, state changes only by applying events, replay and
snapshots rebuild the same state. Pure: no database."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pytest

from civicgrid_common.aggregate import Aggregate, OutOfOrderEvent

from ledger_kit import CREDITED, OPENED, Ledger


@dataclass(frozen=True)
class Stored:
    type: str
    data: Mapping[str, Any]
    version: int


def stored(ledger: Ledger, start: int = 1) -> list[Stored]:
    return [Stored(e.type, e.data, v) for v, e in enumerate(ledger.pending_events, start=start)]


def test_commands_apply_their_events_at_once_and_queue_them():
    ledger = Ledger("L-1")
    ledger.open("王芳")
    ledger.credit(5)
    ledger.credit(7)
    assert (ledger.owner, ledger.balance, ledger.version) == ("王芳", 12, 3)
    assert [e.type for e in ledger.pending_events] == [OPENED, CREDITED, CREDITED]
    assert ledger.stored_version == 0


def test_a_refused_command_emits_nothing():
    ledger = Ledger("L-1")
    with pytest.raises(ValueError, match="not open"):
        ledger.credit(5)
    ledger.open("a")
    with pytest.raises(ValueError, match="positive"):
        ledger.credit(0)
    assert ledger.version == 1 and len(ledger.pending_events) == 1


def test_mark_saved_moves_stored_version():
    ledger = Ledger("L-1")
    ledger.open("a")
    ledger.credit(1)
    ledger.mark_saved()
    ledger.credit(2)
    assert ledger.pending_events[0].data["amount"] == 2
    assert (ledger.stored_version, ledger.version) == (2, 3)


def test_replay_rebuilds_the_same_state():
    original = Ledger("L-1")
    original.open("a")
    for amount in (3, 4, 5):
        original.credit(amount)
    rebuilt = Ledger.replay("L-1", stored(original))
    assert (rebuilt.owner, rebuilt.balance, rebuilt.version) == ("a", 12, 4)
    assert rebuilt.pending_events == ()


def test_replay_refuses_a_gap_or_a_repeat():
    original = Ledger("L-1")
    original.open("a")
    original.credit(1)
    original.credit(2)
    events = stored(original)
    with pytest.raises(OutOfOrderEvent):
        Ledger.replay("L-1", [events[0], events[2]])
    with pytest.raises(OutOfOrderEvent):
        Ledger.replay("L-1", [events[0], events[0]])


def test_snapshot_plus_later_events_equals_full_replay():
    original = Ledger("L-1")
    original.open("a")
    for amount in range(1, 10):
        original.credit(amount)
    events = stored(original)
    at_five = Ledger.replay("L-1", events[:5])
    restored = Ledger.from_snapshot("L-1", at_five.snapshot_state(), at_five.version)
    resumed = Ledger.replay("L-1", events[5:], start=restored)
    full = Ledger.replay("L-1", events)
    assert resumed.snapshot_state() == full.snapshot_state() == {"owner": "a", "balance": 45}
    assert resumed.version == full.version == 10


def test_snapshot_support_is_detected():
    class Plain(Aggregate):
        stream_type = "plain"

    assert Ledger.supports_snapshots()
    assert not Plain.supports_snapshots()
    with pytest.raises(NotImplementedError):
        Plain("x").snapshot_state()
