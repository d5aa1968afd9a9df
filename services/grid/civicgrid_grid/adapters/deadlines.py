"""Incidents' time limits on durable timers (civicgrid_common.timers): for each limit running
(create, dispatch, handling, verification: `Incident.deadlines()`), a warning when
`warning_share` of its time has passed and an overdue timer at its due instant.

Keys name the incident, the limit and its due instant, so a rework's new verification is a new
key; every other unfired timer of the incident is cancelled in the transaction of the event that
made it moot. One that fires anyway changes nothing (`Incident.deadline_reached`)."""
from __future__ import annotations

from datetime import datetime
from typing import Sequence

import asyncpg

from civicgrid_common.events import StoredEvent
from civicgrid_common.timers import cancel_unless, schedule

from civicgrid_grid.domain.incident import Incident

OWNER = "grid"
KINDS = ("warning", "overdue")
MISSING_CHECK = "missing_check"


def _start(i: Incident, limit: str) -> datetime | None:
    return {"create": i.reported_at, "dispatch": i.reported_at, "handling": i.dispatched_at,
            "verification": i.fed_back_at}[limit]


class IncidentDeadlineProjector:
    stream_types = (Incident.stream_type,)

    def __init__(self, warning_share: float = 0.8) -> None:
        if not 0 < warning_share < 1:
            raise ValueError("warning_share lies between 0 and 1")
        self.warning_share = warning_share

    async def begin(self, conn: asyncpg.Connection) -> None:
        """Nothing to lock: an incident's timers are written under its stream's append."""

    async def project(self, conn: asyncpg.Connection, i: Incident, stored: Sequence[StoredEvent]) -> None:
        wanted: dict[str, tuple[str, str, datetime]] = {}
        for limit, due in i.deadlines().items():
            base = f"incident/{i.id}/{limit}/{due.isoformat()}"
            start = _start(i, limit) or due
            wanted[f"{base}/warning"] = (limit, "warning", start + (due - start) * self.warning_share)
            wanted[f"{base}/overdue"] = (limit, "overdue", due)
        await cancel_unless(conn, owner=OWNER, prefix=f"incident/{i.id}/", keep=wanted.keys())
        for key, (limit, kind, at) in wanted.items():
            await schedule(conn, owner=OWNER, key=key, due_at=at, kind=kind,
                           payload={"incident_id": i.id, "limit": limit, "due": key.split("/")[3]})


async def schedule_missing_check(conn: asyncpg.Connection, check_at: datetime, day: str) -> None:
    await schedule(conn, owner=OWNER, key=f"missing-check/{day}", due_at=check_at, kind=MISSING_CHECK,
                   payload={"date": day, "check_at": check_at.isoformat()})


async def schedule_community_check(conn: asyncpg.Connection, check_at: datetime, day: str, community: str) -> None:
    await schedule(conn, owner=OWNER, key=f"missing-check/{day}/{community}", due_at=check_at, kind=MISSING_CHECK,
                   payload={"date": day, "check_at": check_at.isoformat(), "community": community})
