"""Quiet hours: a non-urgent SMS or WeChat message in the night waits until morning, China time;
urgent ones, inbox items and webhooks never wait."""
from __future__ import annotations

from datetime import datetime, time, timezone

import pytest

from civicgrid_common.calendar.working_days import CHINA_TZ

from civicgrid_notifications.config import NotificationsSettings
from civicgrid_notifications.domain.quiet_hours import QuietHours

NIGHT = QuietHours()  # 22:00-08:00, the default


def china(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=CHINA_TZ)


@pytest.mark.parametrize("at, until", [
    (china(4, 22, 0), china(5, 8, 0)),   # from 22:00 on: the next morning
    (china(4, 23, 59), china(5, 8, 0)),
    (china(5, 0, 30), china(5, 8, 0)),   # after midnight: this morning
    (china(5, 7, 59), china(5, 8, 0)),
    (china(4, 8, 0), None),              # 08:00 is morning already
    (china(4, 21, 59), None),
    (china(4, 12, 0), None),
])
def test_a_message_in_the_night_waits_until_morning(at: datetime, until: datetime | None) -> None:
    held = NIGHT.held_until(at, channel="sms", urgent=False)
    assert held == (until.astimezone(timezone.utc) if until else None)
    assert NIGHT.held_until(at, channel="wechat", urgent=False) == held


def test_the_day_is_chinas_not_the_servers() -> None:
    # 15:30 UTC is 23:30 in China: held until 08:00 China time, 00:00 UTC.
    at = datetime(2026, 3, 4, 15, 30, tzinfo=timezone.utc)
    assert NIGHT.held_until(at, channel="sms", urgent=False) == datetime(2026, 3, 5, 0, 0, tzinfo=timezone.utc)


def test_urgent_messages_inbox_items_and_webhooks_never_wait() -> None:
    night = china(4, 23, 0)
    assert NIGHT.held_until(night, channel="sms", urgent=True) is None
    for channel in ("in_app", "webhook", "email"):
        assert NIGHT.held_until(night, channel=channel, urgent=False) is None


def test_quiet_hours_within_one_day_and_none() -> None:
    lunch = QuietHours.parse("12:00-14:00")
    assert lunch == QuietHours(time(12), time(14))
    assert lunch.held_until(china(4, 13, 0), channel="sms", urgent=False) == china(4, 14, 0).astimezone(timezone.utc)
    assert lunch.held_until(china(4, 23, 0), channel="sms", urgent=False) is None
    assert QuietHours.parse("") is None


@pytest.mark.parametrize("text", ["22-08", "24:00-08:00", "22:00-22:00", "22:00 - 08:00", "night"])
def test_bad_quiet_hours_are_refused_at_start_up(text: str) -> None:
    with pytest.raises(ValueError, match="quiet hours"):
        NotificationsSettings(quiet_hours=text)
