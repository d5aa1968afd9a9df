"""People's preferences and their digests (pure): the choice read field by field, periods
aligned to midnight China time, a digest per period once, what it says."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from civicgrid_common.calendar.working_days import CHINA_TZ

from civicgrid_notifications.domain.preferences import (
    DIGEST_COMPILED, PREFERENCES_SET, Choice, InApp, Preferences, PreferencesRejected, digest_message,
    is_period_end, next_period_end, parse_choice,
)


def china(h: int, m: int = 0, day: int = 4) -> datetime:
    return datetime(2026, 3, day, h, m, tzinfo=CHINA_TZ).astimezone(timezone.utc)


def test_a_choice_is_read_with_its_default_period():
    assert parse_choice({"in_app": {"delivery": "digest"}}) == Choice(InApp.DIGEST, 60)
    assert parse_choice({"in_app": {"delivery": "immediate", "every_minutes": 15}}) == Choice(InApp.IMMEDIATE, 15)


def test_a_bad_choice_is_refused_member_by_member():
    with pytest.raises(PreferencesRejected) as refused:
        parse_choice({"sms": {}, "in_app": {"delivery": "hourly", "every_minutes": 45, "colour": "red"}})
    assert {e["pointer"] for e in refused.value.errors} == {
        "#/sms", "#/in_app/delivery", "#/in_app/every_minutes", "#/in_app/colour"}
    with pytest.raises(PreferencesRejected) as refused:
        parse_choice({"in_app": {"delivery": "digest", "every_minutes": True}})  # true is not 1
    assert [e["pointer"] for e in refused.value.errors] == ["#/in_app/every_minutes"]
    with pytest.raises(PreferencesRejected):
        parse_choice({})


@pytest.mark.parametrize(("at", "every", "end"), [
    (china(10, 15), 60, china(11)),
    (china(11), 60, china(12)),  # a boundary itself belongs to the period it ends
    (china(10, 15), 15, china(10, 30)),
    (china(23, 59), 120, china(0, day=5)),
    (china(7), 1440, china(0, day=5)),  # a day's digest at midnight China time, not UTC's
    (china(9, 59), 480, china(16)),
])
def test_periods_fall_from_midnight_china_time(at, every, end):
    assert next_period_end(at, every) == end
    assert is_period_end(end, every) and not is_period_end(end + timedelta(minutes=1), every)


def test_choosing_records_an_event_only_when_something_changed():
    p = Preferences(Preferences.stream_for("reviewer-wang"))
    assert p.subject == "reviewer-wang" and not p.digests and p.digest_since is None
    assert p.choose(Choice(InApp.DIGEST), roles=["community_reviewer"], jurisdictions=["320104001001"], at=china(10, 15))
    assert p.digests and p.digest_since == china(10, 15)
    assert not p.choose(Choice(InApp.DIGEST), roles=["community_reviewer"], jurisdictions=["320104001001"],
                        at=china(10, 20))
    # a new token's scope is a change; the digest still gathers from when digests were chosen
    assert p.choose(Choice(InApp.DIGEST, 30), roles=["community_reviewer", "leader"], jurisdictions=["320104001001"],
                    at=china(10, 40))
    assert p.digest_since == china(10, 15) and p.roles == ("community_reviewer", "leader")
    assert [e.type for e in p.pending_events] == [PREFERENCES_SET, PREFERENCES_SET]
    assert p.choose(Choice(InApp.IMMEDIATE), roles=["leader"], jurisdictions=["320104"], at=china(11))
    assert not p.digests and p.digest_since is None and p.digest_window(china(11, 30)) is None


def test_a_digest_is_compiled_once_per_period_of_the_current_choice():
    p = Preferences(Preferences.stream_for("reviewer-wang"))
    p.choose(Choice(InApp.DIGEST), roles=["community_reviewer"], jurisdictions=["320104001001"], at=china(10, 15))
    assert p.digest_window(china(11)) == (china(10, 15), china(11))
    assert p.digest_window(china(11, 30)) is None  # not a boundary of an hourly digest
    event = p.compile_digest(china(11), [7, 9], 2, at=china(11, 0))
    assert event.type == DIGEST_COMPILED and event.data["items"] == [7, 9] and event.data["total"] == 2
    assert p.digest_window(china(11)) is None  # once
    assert p.digest_window(china(12)) == (china(11), china(12))
    with pytest.raises(ValueError):
        p.compile_digest(china(11), [7], 1, at=china(11, 1))
    with pytest.raises(ValueError):
        p.compile_digest(china(12), [], 0, at=china(12))

    again = Preferences.replay(p.id, [_stored(e, n) for n, e in enumerate(p.pending_events, start=1)])
    assert (again.choice, again.roles, again.digest_since) == (p.choice, p.roles, p.digest_since)


def test_a_digest_says_how_many_from_when_and_the_first_titles():
    titles = [f"新待审事项 QH-{n:04d}" for n in range(12)]
    message = digest_message(titles, 14, china(10, 15), china(11))
    assert message["title"] == "消息摘要：10:15–11:00 有 14 条新消息"
    assert message["body"].startswith("新待审事项 QH-0000；新待审事项 QH-0001") and message["body"].endswith("；等 14 条")
    assert "QH-0010" not in message["body"]  # ten shown
    assert digest_message(["一条" * 50], 1, china(23), china(0, day=5))["title"].startswith("消息摘要：03-04 23:00–00:00")
    assert len(digest_message(["一条" * 50], 1, china(10), china(11))["body"]) <= 61


def _stored(event, version):
    from civicgrid_common.events import StoredEvent
    return StoredEvent(id=event.id, stream_id="preferences:reviewer-wang", stream_type="notification_preferences",
                       version=version, position=version, type=event.type, data=event.data, metadata={},
                       recorded_at=datetime.now(timezone.utc), hash="", prev_hash=None)
