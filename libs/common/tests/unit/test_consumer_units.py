"""Pure logic of the consumer runtime: backoff schedule, dead-letter headers, stall decisions."""
from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from civicgrid_common.consumer.backoff import Backoff
from civicgrid_common.consumer.deadletter import (
    MAX_ERROR_MESSAGE_CHARS,
    FailedRecord,
    dead_letter_headers,
    read_dlq_headers,
)
from civicgrid_common.consumer.watchdog import (
    LAG_WITHOUT_PROGRESS,
    PARTITIONS_UNASSIGNED,
    Observation,
    StallDetector,
)


# --- backoff ---------------------------------------------------------------------------------

def test_backoff_ceilings_double_until_the_maximum():
    b = Backoff(initial=0.5, maximum=3.0)
    assert [b.ceiling(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_backoff_delay_is_jittered_within_half_to_full_ceiling():
    b = Backoff(initial=1.0, maximum=8.0)
    rng = random.Random(7)
    for retry in range(1, 10):
        delays = {b.delay(retry, rng) for _ in range(50)}
        top = b.ceiling(retry)
        assert all(top / 2 <= d <= top for d in delays)
        assert len(delays) > 1  # actually jittered, not a constant


def test_backoff_survives_absurd_retry_numbers():
    assert Backoff(initial=0.1, maximum=5.0).ceiling(10_000) == 5.0


@pytest.mark.parametrize("initial,maximum,multiplier", [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_backoff_refuses_nonsense(initial, maximum, multiplier):
    with pytest.raises(ValueError):
        Backoff(initial=initial, maximum=maximum, multiplier=multiplier)


def test_backoff_of_accepts_a_pair():
    assert Backoff.of((0.3, 4.0)) == Backoff(initial=0.3, maximum=4.0)


# --- dead-letter headers ---------------------------------------------------------------------

def _record(headers=()):
    return FailedRecord(topic="civicgrid.intake.cases", partition=2, offset=41, key=b"case-1",
                        value=b'{"a":1}', headers=tuple(headers))


def test_dead_letter_headers_keep_the_originals_and_add_the_error():
    original = [("ce_id", b"0190-abc"), ("ce_type", b"x.y.v1")]
    when = datetime(2026, 3, 1, 8, 30, 0, 123000, tzinfo=timezone.utc)
    headers = dead_letter_headers(_record(original), consumer_group="notifications",
                                  error=KeyError("no such grid"), attempts=5, failed_at=when)
    assert headers[:2] == original
    assert read_dlq_headers(headers) == {
        "original-topic": "civicgrid.intake.cases",
        "original-partition": "2",
        "original-offset": "41",
        "consumer-group": "notifications",
        "error-type": "builtins.KeyError",
        "error-message": "'no such grid'",
        "attempts": "5",
        "failed-at": "2026-03-01T08:30:00.123Z",
    }


def test_dead_letter_headers_replace_those_of_an_earlier_trip():
    stale = [("ce_id", b"1"), ("x-dlq-error-type", b"old"), ("X-DLQ-attempts", b"9")]
    headers = dead_letter_headers(_record(stale), consumer_group="g", error=RuntimeError("new"), attempts=1)
    names = [n.lower() for n, _ in headers]
    assert names.count("x-dlq-error-type") == 1 and names.count("x-dlq-attempts") == 1
    assert read_dlq_headers(headers)["error-type"] == "builtins.RuntimeError"


def test_dead_letter_error_message_is_bounded():
    headers = dead_letter_headers(_record(), consumer_group="g", error=ValueError("x" * 50_000), attempts=1)
    assert len(read_dlq_headers(headers)["error-message"]) == MAX_ERROR_MESSAGE_CHARS


def test_dead_letter_message_of_a_silent_exception_is_its_repr():
    headers = dead_letter_headers(_record(), consumer_group="g", error=TimeoutError(), attempts=3)
    assert read_dlq_headers(headers)["error-message"] == "TimeoutError()"


# --- stall detection ---------------------------------------------------------------------------

def test_lag_without_progress_is_a_stall_only_after_the_grace_period():
    d = StallDetector(stall_after=30, now=0)
    assert d.check(Observation(now=29, assigned_partitions=3, lag=5)) is None
    assert d.check(Observation(now=31, assigned_partitions=3, lag=5)) == LAG_WITHOUT_PROGRESS


def test_progress_resets_the_clock():
    d = StallDetector(stall_after=30, now=0)
    d.progress(20)
    assert d.check(Observation(now=45, assigned_partitions=1, lag=5)) is None
    assert d.check(Observation(now=51, assigned_partitions=1, lag=5)) == LAG_WITHOUT_PROGRESS


def test_caught_up_consumer_is_never_stalled():
    d = StallDetector(stall_after=30, now=0)
    assert d.check(Observation(now=1000, assigned_partitions=2, lag=0)) is None
    # being caught up counts as progress
    assert d.check(Observation(now=1010, assigned_partitions=2, lag=4)) is None


def test_unknown_lag_does_not_trigger_recovery():
    d = StallDetector(stall_after=30, now=0)
    assert d.check(Observation(now=1000, assigned_partitions=2, lag=None)) is None


def test_empty_assignment_is_a_stall_only_when_partitions_are_unheld():
    d = StallDetector(stall_after=30, now=0)
    # another member holds everything: idle is fine
    assert d.check(Observation(now=100, assigned_partitions=0, lag=None,
                               partitions_held_by_group=3, partitions_total=3)) is None
    assert d.check(Observation(now=100, assigned_partitions=0, lag=None,
                               partitions_held_by_group=1, partitions_total=3)) == PARTITIONS_UNASSIGNED
    # the group could not be asked: no decision
    assert d.check(Observation(now=100, assigned_partitions=0, lag=None)) is None


def test_stall_after_must_be_positive():
    with pytest.raises(ValueError):
        StallDetector(stall_after=0, now=0)
