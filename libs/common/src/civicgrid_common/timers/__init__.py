"""Durable timers: deadlines that survive restarts, each fired exactly once.

    await install_timers(pool)            # idempotent DDL: table civicgrid_timers
    # in the transaction of the state change that needs the timer:
    await schedule(conn, owner="approval", key=f"approval/{id}/step/{n}/overdue",
                   due_at=due, kind="overdue", payload={"approval_id": id})
    await cancel(conn, owner="approval", key=...)           # True if an unfired one was removed
    await retry(conn, owner="approval", key=...)            # re-arm a parked one (operators)

    async def on_timer(conn, timer: Timer) -> None: ...     # runs in the firing transaction
    worker = TimerWorker(pool, owner="approval", handler=on_timer)
    await worker.run()  # until await worker.stop(); or one pass: await worker.fire_due()

See scheduling.py for what scheduling a fired key does (it is refused), worker.py for the
guarantees, metrics.py for what /metrics shows. Platform code: no domain in here.
"""
from civicgrid_common.timers.schema import TIMERS_DDL, install_timers
from civicgrid_common.timers.scheduling import (
    CHANNEL, Timer, TimerRecord, cancel, cancel_unless, lookup, retry, schedule,
)
from civicgrid_common.timers.worker import Handler, TimerWorker

__all__ = [
    "CHANNEL", "Handler", "TIMERS_DDL", "Timer", "TimerRecord", "TimerWorker", "cancel", "cancel_unless", "install_timers",
    "lookup", "retry", "schedule",
]
