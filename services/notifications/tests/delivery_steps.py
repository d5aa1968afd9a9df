"""What a delivery's stream holds: its steps as (step, data), read from the event store."""
from __future__ import annotations

from civicgrid_notifications.adapters.delivery_events import stream_of


async def steps_of(store, delivery_id: str) -> list[tuple[str, dict]]:
    return [(e.type.split(".")[3], dict(e.data)) for e in await store.read_stream(stream_of(delivery_id))]


async def published_steps(pool) -> list[str]:
    """The steps waiting in the outbox for civicgrid.notifications.deliveries, by type."""
    rows = await pool.fetch("SELECT e.type FROM outbox o JOIN events e ON e.id = o.event_id "
                            "WHERE o.topic = 'civicgrid.notifications.deliveries' ORDER BY e.position")
    return [r["type"].split(".")[3] for r in rows]
