"""The district's working-day calendar as grid reads it: intake's overrides as grid's copy holds
them (civicgrid.intake.calendar, applied by the calendar consumer), cached for a few seconds.

Every daily report and every dispatch asks whether a day is a working day; reading the copy's
tables each time cost two round trips per report (measured: load-tests/bench_grid_report.py).
An override is set days or weeks ahead of the day it changes, so an answer up to
`ttl_seconds` old is the same answer."""
from __future__ import annotations

import asyncio
import time

import asyncpg

from civicgrid_common.calendar.overrides import load_calendar
from civicgrid_common.calendar.working_days import WorkingCalendar


class CachedCalendar:
    def __init__(self, pool: asyncpg.Pool, *, ttl_seconds: float = 5.0) -> None:
        self.pool = pool
        self.ttl_seconds = ttl_seconds
        self._calendar: WorkingCalendar | None = None
        self._loaded = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> WorkingCalendar:
        if self._calendar is not None and time.monotonic() - self._loaded < self.ttl_seconds:
            return self._calendar
        async with self._lock:
            if self._calendar is None or time.monotonic() - self._loaded >= self.ttl_seconds:
                self._calendar = await load_calendar(self.pool)
                self._loaded = time.monotonic()
        return self._calendar
