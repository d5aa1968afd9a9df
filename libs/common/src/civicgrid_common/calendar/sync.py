"""How every service keeps its copy of the district's calendar: the owner applies its own
calendar events inline (`CalendarProjector`, a unit-of-work projector), the others from the
owner's topic (`calendar_events_handler`, an EventConsumer handler: effectively once, through
its inbox); and each reports, on /metrics, the years whose bridging and swapped working days
are still missing (`CalendarWatch`, a runner)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any, Awaitable, Callable, Sequence

import asyncpg
from prometheus_client import Gauge

from civicgrid_common.calendar.contract import CALENDAR_STREAM_TYPE
from civicgrid_common.calendar.overrides import apply_calendar_event, year_statuses
from civicgrid_common.calendar.working_days import CHINA_TZ
from civicgrid_common.cloudevents import CloudEvent
from civicgrid_common.events import StoredEvent

log = logging.getLogger(__name__)

SCHEDULE_MISSING = Gauge(
    "civicgrid_calendar_schedule_missing",
    "1 for a year (this one and the next) whose holidays are known by rule only and whose bridging and "
    "swapped working days have not been entered as overrides yet; 0 once they are, or the package has them",
    ["year"],
)


class CalendarProjector:
    """The owner's inline projection of its calendar events onto its own calendar tables."""

    stream_types = (CALENDAR_STREAM_TYPE,)

    async def begin(self, conn: asyncpg.Connection) -> None:
        """Nothing to lock: one row per day or year, upserted."""

    async def project(self, conn: asyncpg.Connection, aggregate: Any, stored: Sequence[StoredEvent]) -> None:
        for event in stored:
            await apply_calendar_event(conn, event.type, event.data)


def calendar_events_handler() -> Callable[[asyncpg.Connection, CloudEvent], Awaitable[None]]:
    """For the consumer of the owner's calendar topic, in the consumer's inbox transaction."""
    async def handle(conn: asyncpg.Connection, event: CloudEvent) -> None:
        if not await apply_calendar_event(conn, event.type, event.data or {}):
            log.info("calendar event %s of type %s is not one this service applies; skipped", event.id, event.type)

    return handle


class CalendarWatch:
    """A runner: every `interval` seconds, the missing-schedule gauge of this year and the next."""

    name = "calendar-watch"

    def __init__(self, pool: asyncpg.Pool, *, interval: float = 60.0) -> None:
        self.pool = pool
        self.interval = interval
        self._stopping = asyncio.Event()

    async def refresh(self) -> None:
        this_year = datetime.now(CHINA_TZ).year
        for status in await year_statuses(self.pool, this_year, this_year + 1):
            SCHEDULE_MISSING.labels(str(status.year)).set(1 if status.missing else 0)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.refresh()
            except (asyncpg.PostgresError, OSError) as exc:  # the database is away: report next time
                log.warning("calendar watch could not read the schedules: %r", exc)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)

    def stop(self) -> None:
        self._stopping.set()
