"""The timer worker: fires an owner's due timers, each exactly once, across crashes and replicas.

How it keeps its promises:

- **One transaction per timer.** A due timer is claimed with `SELECT ... FOR UPDATE SKIP
  LOCKED`, marked fired, and handed to the handler on the same connection in the same
  transaction. The handler's effect and the fired mark commit together: a crash at any
  instant leaves both or neither, and a timer left unfired is found again by the next pass of
  any worker. No timer lost, none fired twice.
- **Replicas** may run side by side: the row lock makes the others skip a timer being fired,
  and once it commits its status is no longer pending.
- **Callers in flight.** A timer being rescheduled or cancelled by an uncommitted transaction
  is locked, so it is skipped too; it fires (or not) as that transaction decides. Inside the
  handler the timer already counts as fired: scheduling its own key again is refused and
  cancelling it finds nothing, exactly as it will look after the commit.
- **A handler that raises** (or swallows a database error, which would leave the transaction
  aborted) runs inside a savepoint: its effect and the fired mark are rolled back, the failed
  attempt is recorded while the row is still locked (so no other worker retries it before its
  backoff), and the timer is tried again after a jittered exponential backoff. After
  `max_attempts` failed runs it is parked (status failed, last_error kept): visible in
  `civicgrid_timers_parked`, not retried, blocking nobody. `retry` (or scheduling the key with
  another due time or payload) re-arms it.
- **Waking.** The worker sleeps until the next timer is due, at most `poll_interval`; `schedule`
  sends a NOTIFY on commit, which wakes it at once when a timer is due sooner than that.
  Without the notification (say behind a transaction-pooling PgBouncer) it still polls.

`clock` decides what "due" means (tests pass a fake one); database time is not used for it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

import asyncpg

from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.consumer.backoff import Backoff
from civicgrid_common.timers import metrics
from civicgrid_common.timers.scheduling import _COLUMNS, CHANNEL, FAILED, FIRED, PENDING, Timer, timer_from_row

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Timer], Awaitable[None]]


class TimerWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        owner: str,
        handler: Handler,
        poll_interval: float = 1.0,
        batch_size: int = 100,
        clock: Clock = utc_now,
        max_attempts: int = 10,
        backoff: Backoff | tuple[float, float] = (1.0, 300.0),
        listen: bool = True,
        name: str | None = None,
    ) -> None:
        """batch_size: a pass refreshes its gauges and looks at stop() after this many timers."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.pool = pool
        self.owner = owner
        self.handler = handler
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff = Backoff.of(backoff)
        self.listen = listen
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._wake = asyncio.Event()
        self._running = False
        self._listener: asyncpg.Connection | None = None
        self._next_at: datetime | None = None  # the earliest future attempt seen by the last pass
        self._sleep_until: datetime | None = None
        self.passes = 0  # passes run() finished, for health checks and tests

    # --- one pass --------------------------------------------------------------------------

    async def fire_due(self) -> int:
        """Fire every timer of this owner due at clock(), oldest first; return how many fired.

        Timers that another worker holds are left to it; a timer whose handler raised is not
        tried again in the same pass (its next attempt lies in the future)."""
        now = self.clock()
        if now.utcoffset() is None:
            raise ValueError(f"the clock must give timezone-aware datetimes, got {now!r}")
        fired = 0
        since_refresh = 0
        while not (self._running and self._stopping.is_set()):  # stop() ends run()'s pass early
            outcome = await self._fire_one(now)
            if outcome is None:
                break
            fired += outcome == FIRED
            since_refresh += 1
            if since_refresh >= self.batch_size:
                await self.refresh_metrics()
                since_refresh = 0
        await self.refresh_metrics()
        return fired

    async def _fire_one(self, now: datetime) -> str | None:
        """Claim and fire the most overdue timer; its outcome (fired, pending, failed) or None."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""
                SELECT {_COLUMNS} FROM civicgrid_timers
                WHERE owner = $1 AND status = '{PENDING}' AND next_attempt_at <= $2
                ORDER BY next_attempt_at, key
                LIMIT 1
                FOR UPDATE SKIP LOCKED
                """,
                self.owner, now,
            )
            if row is None:
                return None
            timer = timer_from_row(row)
            try:
                async with conn.transaction():  # a savepoint: a failing handler undoes only itself
                    await conn.execute(
                        f"UPDATE civicgrid_timers SET status = '{FIRED}', fired_at = $3, fired_by = $4 "
                        "WHERE owner = $1 AND key = $2",
                        timer.owner, timer.key, self.clock(), self.name,
                    )
                    await self.handler(conn, timer)
                    # A handler that caught a database error leaves the transaction aborted, and
                    # asyncpg would then roll back on leaving the block without a word: the timer
                    # would count as fired with no effect. This statement raises instead.
                    await conn.execute("SELECT 1")
            except Exception as exc:  # noqa: BLE001 - every handler failure is retried or parked
                return await self._record_failure(conn, timer, exc)
        metrics.TIMERS_FIRED.labels(self.owner, timer.kind).inc()
        return FIRED

    async def _record_failure(self, conn: asyncpg.Connection, timer: Timer, error: Exception) -> str:
        """Count the failed attempt and set the next one; park the timer after max_attempts."""
        failures = timer.attempts + 1
        parked = failures >= self.max_attempts
        retry_at = self.clock() + timedelta(seconds=self.backoff.delay(failures))
        await conn.execute(
            """
            UPDATE civicgrid_timers
            SET attempts = $3, last_error = $4, status = $5, next_attempt_at = $6
            WHERE owner = $1 AND key = $2
            """,
            timer.owner, timer.key, failures, f"{type(error).__name__}: {error}"[:2000],
            FAILED if parked else PENDING, retry_at,
        )
        outcome = FAILED if parked else PENDING
        metrics.TIMERS_FAILURES.labels(self.owner, timer.kind, "parked" if parked else "retry").inc()
        if parked:
            log.error("timer %s/%s (%s) failed %d times and is parked: %r",
                      timer.owner, timer.key, timer.kind, failures, error)
        else:
            log.warning("timer %s/%s (%s) failed (attempt %d of %d), next try at %s: %r",
                        timer.owner, timer.key, timer.kind, failures, self.max_attempts, retry_at.isoformat(), error)
        return outcome

    async def refresh_metrics(self) -> None:
        """Set the gauges (due, oldest due age, parked) and note when the next timer is due."""
        now = self.clock()
        row = await self.pool.fetchrow(
            f"""
            SELECT
              (SELECT count(*) FROM civicgrid_timers
                WHERE owner = $1 AND status = '{PENDING}' AND due_at <= $2) AS due,
              (SELECT min(due_at) FROM civicgrid_timers WHERE owner = $1 AND status = '{PENDING}') AS oldest,
              (SELECT count(*) FROM civicgrid_timers WHERE owner = $1 AND status = '{FAILED}') AS parked,
              (SELECT min(next_attempt_at) FROM civicgrid_timers
                WHERE owner = $1 AND status = '{PENDING}' AND next_attempt_at > $2) AS next_at
            """,
            self.owner, now,
        )
        metrics.TIMERS_DUE.labels(self.owner).set(row["due"])
        oldest = row["oldest"]
        metrics.TIMERS_OLDEST_DUE_AGE.labels(self.owner).set(
            max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        )
        metrics.TIMERS_PARKED.labels(self.owner).set(row["parked"])
        self._next_at = row["next_at"]

    # --- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Fire due timers until stop(); database failures are logged and retried."""
        self._stopping.clear()
        self._stopped.clear()
        self._running = True
        try:
            while not self._stopping.is_set():
                self._wake.clear()  # a NOTIFY during the pass wakes the next sleep at once
                try:
                    await self._ensure_listening()
                    await self.fire_due()
                    delay = self._until_next()
                    self.passes += 1
                except Exception as exc:  # noqa: BLE001 - database away, connection lost: poll again later
                    log.warning("timer worker %s (%s): pass failed, trying again: %r", self.owner, self.name, exc)
                    delay = self.poll_interval
                await self._sleep(delay)
        finally:
            await self._stop_listening()
            self._running = False
            self._stopped.set()

    async def stop(self, timeout: float = 30.0) -> None:
        """Ask run() to finish after the timer in hand, and wait until it has."""
        self._stopping.set()
        self._wake.set()
        if self._running:
            await asyncio.wait_for(self._stopped.wait(), timeout)

    def _until_next(self) -> float:
        if self._next_at is None:
            return self.poll_interval
        return min(self.poll_interval, max(0.0, (self._next_at - self.clock()).total_seconds()))

    async def _sleep(self, seconds: float) -> None:
        self._sleep_until = self.clock() + timedelta(seconds=seconds)
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        finally:
            self._sleep_until = None

    # --- LISTEN/NOTIFY ---------------------------------------------------------------------

    async def _ensure_listening(self) -> None:
        if not self.listen or self._listening():
            return
        if self.pool.get_max_size() < 2:
            # The listener keeps a connection for itself: with one, no pass could ever run.
            log.warning("timer worker %s: a pool of one connection cannot listen too; polling only", self.owner)
            self.listen = False
            return
        await self._stop_listening()
        conn = await self.pool.acquire()
        try:
            await conn.add_listener(CHANNEL, self._notified)
            # Lost (the server restarted, say): wake up, listen again and look for due timers.
            conn.add_termination_listener(self._listener_lost)
        except BaseException:
            await self.pool.release(conn)
            raise
        self._listener = conn

    def _listening(self) -> bool:
        try:
            return self._listener is not None and not self._listener.is_closed()
        except asyncpg.InterfaceError:  # the pool took the lost connection back already
            return False

    async def _stop_listening(self) -> None:
        conn, self._listener = self._listener, None
        if conn is None:
            return
        try:
            conn.remove_termination_listener(self._listener_lost)
            if not conn.is_closed():
                await conn.remove_listener(CHANNEL, self._notified)
        except Exception as exc:  # noqa: BLE001 - a lost connection is the pool's to replace
            log.debug("timer worker %s: removing its listener: %r", self.owner, exc)
        try:
            await self.pool.release(conn)  # the pool's reset also UNLISTENs
        except Exception as exc:  # noqa: BLE001 - released already when it was lost
            log.debug("timer worker %s: releasing its listening connection: %r", self.owner, exc)

    def _listener_lost(self, _conn: object) -> None:
        self._wake.set()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        owner, _, epoch = payload.rpartition(" ")
        if owner != self.owner:
            return
        try:
            due = datetime.fromtimestamp(float(epoch), timezone.utc)
        except ValueError:
            due = None
        if due is None or self._sleep_until is None or due < self._sleep_until:
            self._wake.set()
