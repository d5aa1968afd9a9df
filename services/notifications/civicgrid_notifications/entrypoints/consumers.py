"""What notifications consumes: the events of the topics in `source_topics` (approval's
approvals, the departments' task topics, grid's reports, statistics' alerts), each handled in
the consumer's inbox transaction, so an event redelivered after a crash tells no one twice."""
from __future__ import annotations

import asyncpg

from civicgrid_common.cloudevents import CloudEvent
from civicgrid_common.consumer.runtime import Handler

from civicgrid_notifications.application.notify import NotificationService


def events_handler(notifications: NotificationService) -> Handler:
    async def handle(conn: asyncpg.Connection, event: CloudEvent) -> None:
        await notifications.on_event(conn, event)

    return handle
