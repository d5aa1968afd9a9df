"""Quiet hours (免打扰): a message that would buzz a person's phone (SMS, WeChat) in the night is
held back until morning, China time; an urgent one (a threat to life or property, the 2-hour
class) passes at once. An inbox item or a department's webhook buzzes no one and is never held.
Pure: no I/O."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from civicgrid_common.calendar.working_days import CHINA_TZ

# The channels that reach a person's phone.
HELD_CHANNELS = frozenset({"sms", "wechat"})
_SPAN = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$")


@dataclass(frozen=True)
class QuietHours:
    """From `start` to `end`, China time; across midnight when `start` is after `end` (22:00-08:00)."""

    start: time = time(22, 0)
    end: time = time(8, 0)

    @classmethod
    def parse(cls, text: str) -> "QuietHours | None":
        """"22:00-08:00"; "" for none. ValueError for anything else."""
        if text == "":
            return None
        m = _SPAN.match(text)
        if m is None:
            raise ValueError(f"quiet hours are HH:MM-HH:MM (China time) or empty, not {text!r}")
        start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
        if start == end:
            raise ValueError("quiet hours that start when they end are empty: give none instead")
        return cls(start, end)

    def held_until(self, at: datetime, *, channel: str, urgent: bool) -> datetime | None:
        """When a message on `channel` that would leave at `at` may leave: None (at once) when it
        is urgent, reaches no phone, or `at` lies outside the quiet hours; else the instant they end."""
        if urgent or channel not in HELD_CHANNELS:
            return None
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        local = at.astimezone(CHINA_TZ)
        now = local.time()
        across_midnight = self.start > self.end
        quiet = (now >= self.start or now < self.end) if across_midnight else (self.start <= now < self.end)
        if not quiet:
            return None
        day = local.date() + timedelta(days=1) if across_midnight and now >= self.start else local.date()
        return datetime.combine(day, self.end, tzinfo=CHINA_TZ).astimezone(timezone.utc)
