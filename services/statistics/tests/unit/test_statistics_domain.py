"""Statistics' pure domain: which surge a full window belongs to, the alert log, facts and figures.

No database and no broker: the integration tests (tests/integration) show the same rules on
the real stack; these pin the decisions themselves.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from civicgrid_common.calendar import WorkingCalendar

from civicgrid_statistics.domain.alerts import (
    RAISED,
    AlertKey,
    AlertLog,
    Span,
    WindowRule,
    complaint_key,
    decide_surge,
)
from civicgrid_statistics.domain.facts import fact_of, kind_of
from civicgrid_statistics.domain.figures import handling_days, percentile, rate

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def test_a_first_full_window_is_a_new_surge() -> None:
    decision = decide_surge([], T0, T0 + HOUR, HOUR)
    assert decision.raise_alert and decision.span is None and decision.absorbed == ()


def test_a_window_touching_a_surge_widens_it_and_raises_nothing() -> None:
    surge = Span(alert=1, start=T0, until=T0 + HOUR)
    decision = decide_surge([surge], T0 + 2 * HOUR, T0 + 3 * HOUR, HOUR)
    assert not decision.raise_alert
    assert decision.span == Span(1, T0, T0 + 3 * HOUR)


def test_a_window_a_full_window_length_apart_is_another_surge() -> None:
    surge = Span(alert=1, start=T0, until=T0 + HOUR)
    assert decide_surge([surge], T0 + 2 * HOUR + timedelta(seconds=1), T0 + 3 * HOUR, HOUR).raise_alert


def test_a_late_window_of_an_earlier_surge_finds_its_own_surge() -> None:
    # Surge 2 was raised after surge 1; a late event of surge 1 arrives afterwards.
    first, second = Span(1, T0, T0 + HOUR), Span(2, T0 + 5 * HOUR, T0 + 6 * HOUR)
    decision = decide_surge([second, first], T0 - timedelta(minutes=30), T0 + timedelta(minutes=30), HOUR)
    assert not decision.raise_alert
    assert decision.span == Span(1, T0 - timedelta(minutes=30), T0 + HOUR) and decision.absorbed == ()


def test_late_events_bridging_two_surges_merge_them_into_the_first() -> None:
    first, second = Span(1, T0, T0 + HOUR), Span(2, T0 + 3 * HOUR, T0 + 4 * HOUR)
    decision = decide_surge([first, second], T0 + HOUR + timedelta(minutes=30), T0 + 2 * HOUR + timedelta(minutes=30),
                            HOUR)
    assert not decision.raise_alert
    assert decision.span == Span(1, T0, T0 + 4 * HOUR) and decision.absorbed == (second,)


def test_a_rule_needs_a_threshold_and_a_window() -> None:
    with pytest.raises(ValueError):
        WindowRule("complaint_surge", 0, HOUR)
    with pytest.raises(ValueError):
        WindowRule("complaint_surge", 3, timedelta(0))


def test_the_alert_log_records_each_raised_alert_in_its_own_stream() -> None:
    key = AlertKey("complaint_surge", "320104001001", "public_order")
    log = AlertLog(key.stream_id)
    log.raise_alert(key, WindowRule("complaint_surge", 3, HOUR), count=3, window_start=T0, window_end=T0 + HOUR,
                    triggering_event="e-3")
    [event] = log.pending_events
    assert event.type == RAISED and log.raised == 1
    assert event.data["window_minutes"] == 60 and event.data["category"] == "public_order"
    with pytest.raises(ValueError):
        log.raise_alert(AlertKey("overdue_run", "320104001001", None), WindowRule("overdue_run", 2, HOUR), count=2,
                        window_start=T0, window_end=T0 + HOUR, triggering_event="e-4")


def test_a_complaint_fact_keys_its_community_and_category() -> None:
    fact = fact_of("e-1", "civicgrid.intake.complaint.received.v1", "cp-1", T0,
                   {"jurisdiction": "320104001001", "category": "public_order", "description": "不计入"})
    assert fact is not None and "description" not in fact.data
    assert complaint_key(fact) == AlertKey("complaint_surge", "320104001001", "public_order")


def test_an_event_statistics_does_not_know_counts_for_nothing() -> None:
    assert kind_of("civicgrid.intake.case.accepted.v1") == "intake.case.accepted"
    assert kind_of("civicgrid.intake.case.accepted.v9") is None
    assert kind_of("not a type") is None
    assert fact_of("e-2", "civicgrid.intake.case.accepted.v9", "c-1", T0, {}) is None
    assert fact_of("e-3", "civicgrid.intake.case.accepted.v1", "c-1", T0, "not a mapping") is None


def test_figures_divide_and_interpolate_as_postgresql_does() -> None:
    assert rate(1, 3) == 0.3333 and rate(1, 0) is None
    assert percentile([], 0.5) is None
    assert percentile([1, 2, 3, 4], 0.5) == 2.5 and percentile([5], 0.9) == 5.0


def test_handling_days_count_working_days_only() -> None:
    # Friday 2026-11-27 to Monday 2026-11-30: the weekend does not count.
    assert handling_days([(date(2026, 11, 27), date(2026, 11, 30))], WorkingCalendar()) == [1]
