"""Deadlines on durable timers (civicgrid_common.timers): for the current task of a running
approval, a warning when `warning_share` of its time limit in working days has passed and an
overdue timer when its due date has passed (the start of the next day, China time).

The time limit is counted on the working-day calendar, as its due date is: the working days
after the day the clock (re)started, up to the due date. The warning falls when `warning_share`
of them have passed, each working day counting as its 24 hours; weekends, holidays and the
overrides set through /v1/calendar count for nothing. With 5 working days and 0.8 the warning
falls at the end of the 4th working day, not at 80% of the wall-clock time to the due date.

Keys name the approval, the task and its due date, so an extension, a resume after a
supplement or a new task is a new key: a timer that fired stays fired for its own deadline
only. Timers of a deadline that no longer holds (the task moved on, the clock stopped for a
supplement, the date moved) are cancelled in the same transaction as the event that made
them obsolete; one that fires anyway finds its task no longer current and changes nothing.
"""
from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Awaitable, Callable, Sequence

import asyncpg

from civicgrid_common.calendar.working_days import CHINA_TZ, WorkingCalendar, local_date
from civicgrid_common.events import StoredEvent
from civicgrid_common.timers import cancel_unless, schedule

from civicgrid_approval.domain.approval import Approval, Status

OWNER = "approval"
KINDS = ("warning", "overdue")


def deadline_keys(approval_id: str, task: str, due_date: str) -> dict[str, str]:
    return {kind: f"approval/{approval_id}/{task}/{due_date}/{kind}" for kind in KINDS}


def overdue_at(due_date: str) -> datetime:
    return datetime.combine(date.fromisoformat(due_date) + timedelta(days=1), time(0), CHINA_TZ)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), CHINA_TZ)


def warning_at(started: datetime, due_date: str, share: float, calendar: WorkingCalendar) -> datetime:
    """When `share` of the working days after `started`'s day up to `due_date` have passed."""
    day = local_date(started)
    # Counted, not listed: the k-th of these days is the k-th working day after `day`.
    working_days = max(0, calendar.working_days_between(day, date.fromisoformat(due_date)))
    if not working_days:  # no working day left before the due date (an extension onto a holiday): wall clock
        return started + (overdue_at(due_date) - started) * share
    passed = share * working_days
    whole = math.floor(passed)
    if passed == whole:  # the end of the last whole working day
        return _start_of(calendar.nth_working_day_after(day, whole) + timedelta(days=1))
    return _start_of(calendar.nth_working_day_after(day, whole + 1)) + timedelta(days=1) * (passed - whole)


class DeadlineProjector:
    """The unit of work's projector of an approval onto its deadline timers: the current
    task's warning and overdue timers are armed, every other unfired timer of the approval is
    cancelled, in the transaction of the events that changed its deadline. Reconciling from the
    aggregate, not from what a command remembers, keeps every command, retry and consumer right."""

    stream_types = (Approval.stream_type,)

    def __init__(self, calendar: Callable[[], Awaitable[WorkingCalendar]], warning_share: float = 0.8) -> None:
        if not 0 < warning_share < 1:
            raise ValueError("warning_share lies between 0 and 1")
        self.calendar = calendar
        self.warning_share = warning_share

    def due_times(self, a: Approval, calendar: WorkingCalendar) -> dict[str, datetime]:
        started = datetime.fromisoformat(a.clock_started_at)
        return {"warning": warning_at(started, a.due_date, self.warning_share, calendar),
                "overdue": overdue_at(a.due_date)}

    async def begin(self, conn: asyncpg.Connection) -> None:
        """Nothing to lock: an approval's timers are written under its stream's append."""

    async def project(self, conn: asyncpg.Connection, a: Approval, stored: Sequence[StoredEvent]) -> None:
        wanted = deadline_keys(a.id, a.task.key, a.due_date) if a.status is Status.RUNNING else {}
        await cancel_unless(conn, owner=OWNER, prefix=f"approval/{a.id}/", keep=wanted.values())
        if wanted:
            at = self.due_times(a, await self.calendar())
            for kind, key in wanted.items():
                await schedule(conn, owner=OWNER, key=key, due_at=at[kind], kind=kind,
                               payload={"approval_id": a.id, "task": a.task.key, "due_date": a.due_date})

