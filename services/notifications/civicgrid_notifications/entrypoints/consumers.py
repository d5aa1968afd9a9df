"""What notifications consumes: the events of the topics in `source_topics` (approval's
approvals, the departments' task topics, grid's reports, statistics' alerts), each handled in
the consumer's inbox transaction, so an event redelivered after a crash tells no one twice; and
the digest timers, each in its firing transaction."""
from __future__ import annotations

from datetime import datetime

import asyncpg

from civicgrid_common.cloudevents import CloudEvent
from civicgrid_common.consumer.runtime import Handler
from civicgrid_common.timers import Timer

from civicgrid_notifications.application.notify import NotificationService
from civicgrid_notifications.application.preferences import DIGEST_DUE, PreferenceService


def events_handler(notifications: NotificationService) -> Handler:
    async def handle(conn: asyncpg.Connection, event: CloudEvent) -> None:
        await notifications.on_event(conn, event)

    return handle


def timers_handler(preferences: PreferenceService):
    """The TimerWorker's handler: a person's digest, in the transaction that marks its timer fired."""
    async def on_timer(conn: asyncpg.Connection, timer: Timer) -> None:
        if timer.kind != DIGEST_DUE:
            raise ValueError(f"notifications has no timer of kind {timer.kind!r}")
        p = timer.payload
        await preferences.transactions.within(
            conn, preferences.digest_due(p["subject"], datetime.fromisoformat(p["period_end"])))

    return on_timer
