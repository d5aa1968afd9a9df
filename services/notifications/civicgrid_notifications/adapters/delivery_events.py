"""Each delivery's steps as events (civicgrid.notifications.notification.*.v1 on
civicgrid.notifications.deliveries), appended to the delivery's own stream in the transaction
that records the step in the ledger, so a step is published once, whatever crashes when.

A step carries kinds, channels, departments and instants only: the recipient's kind (never the
person), the department a webhook went to, the status code answered (never the channel's error
text, which may echo an address).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

import asyncpg

from civicgrid_common.events import NewEvent
from civicgrid_common.eventstore import EventStore

STREAM_TYPE = "notification_delivery"
SENT = "civicgrid.notifications.notification.sent.v1"
DELIVERED = "civicgrid.notifications.notification.delivered.v1"
FAILED = "civicgrid.notifications.notification.failed.v1"
DEAD_LETTERED = "civicgrid.notifications.notification.dead_lettered.v1"


def stream_of(delivery_id: str) -> str:
    return f"notification-delivery:{delivery_id}"


def instant(t: datetime) -> str:
    """An instant as the steps carry it: ISO 8601 in UTC with Z."""
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def step_data(district: str, delivery: Mapping[str, Any], at: datetime, **extra: Any) -> dict[str, Any]:
    """What every step says of its delivery (a ledger row: id, channel, recipient, rule_id,
    event_id, event_type, created_at), and the step's own fields."""
    kind, _, who = delivery["recipient"].partition(":")
    return {"district": district, "delivery_id": delivery["id"], "channel": delivery["channel"], "recipient_kind": kind,
            "department": who if kind == "department" else None, "rule_id": delivery["rule_id"],
            "cause_id": delivery["event_id"], "cause_type": delivery["event_type"], "at": instant(at), **extra}


async def emit(conn: asyncpg.Connection, store: EventStore, delivery: Mapping[str, Any], version: int,
               steps: list[tuple[str, dict[str, Any]]]) -> int:
    """Append `steps` (type, data) to the delivery's stream after `version` (none: nothing);
    the new version. The ledger row counts them in the same transaction."""
    if not steps:
        return version
    await store.append(stream_of(delivery["id"]), STREAM_TYPE, version,
                       [NewEvent(event_type, data) for event_type, data in steps], conn=conn)
    return version + len(steps)
