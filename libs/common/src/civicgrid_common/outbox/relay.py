"""The outbox relay: publishes outbox rows to Kafka in commit-safe order, at least once.

How it keeps its promises:

- **Never skips** a row whose transaction commits after a later-numbered one: rows are read
  in (tx, position) order and only from transactions older than the oldest one still running
  (`tx < pg_snapshot_xmin(pg_current_snapshot())`). Such a transaction has finished, so no
  row can later appear before the checkpoint. (Prior art: Oskar Dudycz, "How Postgres
  sequences issues can impact your messaging guarantees", event-driven.io, 2022.) The price:
  a long-open transaction anywhere on the server delays publishing until it ends.
- **Never loses** a row: the checkpoint (tx, position) lives in PostgreSQL and moves only
  after Kafka acknowledged the whole batch (idempotent producer, acks=all). Killed at any
  instant, the next relay resends from the checkpoint: at-least-once; consumers dedupe by
  event id (ce_id).
- **Never reorders** within a key: records are sent in commit order with key = aggregate id,
  and only one relay per database publishes (a session advisory lock; a second replica waits
  and takes over when the first dies, because PostgreSQL releases the lock with its session).
  The relay therefore needs a session of its own: behind PgBouncer, connect it in session
  pooling mode, never transaction pooling.

Standalone: `python -m civicgrid_common.outbox.relay` with settings from CIVICGRID_* env
(see RelaySettings), stopped cleanly by SIGTERM or SIGINT.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from collections import deque
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaProducer

from civicgrid_common.db import create_pool, install_schema
from civicgrid_common.kafka import make_producer
from civicgrid_common.outbox.metrics import OUTBOX_LAG, OUTBOX_OLDEST_AGE, OUTBOX_PUBLISHED, RELAY_ERRORS
from civicgrid_common.outbox.records import headers_from_json
from civicgrid_common.outbox.schema import OUTBOX_DDL
from civicgrid_common.settings import PlatformSettings

log = logging.getLogger(__name__)

# Advisory lock namespace (first key); the second key is hashtext(relay name).
_LOCK_CLASS = 0x6F757462  # "outb"


class RelaySettings(PlatformSettings):
    """Settings of the standalone relay (env CIVICGRID_OUTBOX_*)."""

    outbox_relay_name: str = "default"
    outbox_batch_size: int = 500
    outbox_poll_interval: float = 0.2
    # Published rows older than this are deleted; None keeps them.
    outbox_retention_seconds: float | None = 7 * 24 * 3600.0
    # Serve Prometheus metrics on this port (None: not served; services serve /metrics).
    outbox_metrics_port: int | None = None


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: PlatformSettings,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        name: str = "default",
        retention: timedelta | None = timedelta(days=7),
        prune_interval: float = 60.0,
        retry_backoff: float = 1.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.pool = pool
        self.settings = settings
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.name = name
        self.retention = retention
        self.prune_interval = prune_interval
        self.retry_backoff = retry_backoff
        self._stopping = asyncio.Event()
        # Observable progress, for health checks and tests: the checkpoint as stored.
        self.checkpoint: tuple[int, int] = (0, 0)
        self.polls = 0
        self.holds_lock = False

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Publish until stop(); any failure restarts from the stored checkpoint."""
        self._stopping.clear()
        while not self._stopping.is_set():
            try:
                await self._run_once()
            except Exception as exc:  # noqa: BLE001 - broker, database or network: all handled alike
                # Whatever failed (broker away, connection lost, lock lost), nothing past the
                # checkpoint is assumed published: start over from it after a pause.
                RELAY_ERRORS.labels(self.name).inc()
                log.warning("outbox relay %s failed, restarting from its checkpoint: %r", self.name, exc)
                await self._sleep(self.retry_backoff)

    async def _run_once(self) -> None:
        async with self.pool.acquire() as conn:
            if not await self._acquire_lock(conn):
                return
            try:
                producer = make_producer(self.settings)
                await producer.start()
                try:
                    await self._publish_loop(conn, producer)
                finally:
                    await producer.stop()
            finally:
                self.holds_lock = False
                if not conn.is_closed():
                    await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_CLASS, self.name)

    async def _acquire_lock(self, conn: asyncpg.Connection) -> bool:
        waiting_logged = False
        while not self._stopping.is_set():
            if await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", _LOCK_CLASS, self.name):
                self.holds_lock = True
                log.info("outbox relay %s is the active publisher", self.name)
                return True
            if not waiting_logged:
                log.info("outbox relay %s: another replica publishes; waiting for its lock", self.name)
                waiting_logged = True
            await self._sleep(self.poll_interval)
        return False

    async def _publish_loop(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> None:
        self.checkpoint = await self._load_checkpoint(conn)
        # Pipelining: the next batch is read and sent while the previous one's acks are still
        # on their way. `sent` runs ahead of the checkpoint; the checkpoint only ever moves to
        # the end of a batch whose every record Kafka acknowledged, in order. After a failure
        # run() starts over from the stored checkpoint and resends whatever was in flight.
        sent = self.checkpoint
        in_flight: deque[tuple[tuple[int, int], asyncio.Future, int]] = deque()
        last_prune = last_lag_check = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping.is_set():
                rows = await self._next_batch(conn, after=sent)
                self.polls += 1
                if rows:
                    acks = await self._send(producer, rows)
                    sent = (int(rows[-1]["tx"]), rows[-1]["position"])
                    in_flight.append((sent, acks, len(rows)))
                # Keep at most one batch unacknowledged while reading the next; settle all when idle.
                while len(in_flight) > (1 if rows else 0):
                    await self._settle(conn, *in_flight.popleft())
                # Counting the backlog costs a scan: do it at most once a second, not per batch.
                if loop.time() - last_lag_check >= 1.0:
                    await self._observe_lag(conn)
                    last_lag_check = loop.time()
                if self.retention is not None and loop.time() - last_prune >= self.prune_interval:
                    await self._prune(conn)
                    last_prune = loop.time()
                if len(rows) < self.batch_size:
                    await self._sleep(self.poll_interval)
            while in_flight:  # a clean stop checkpoints what was sent
                await self._settle(conn, *in_flight.popleft())
        finally:
            for _, acks, _ in in_flight:
                acks.cancel()

    async def _settle(self, conn: asyncpg.Connection, end: tuple[int, int], acks: asyncio.Future, count: int) -> None:
        await acks  # raises if any record of the batch was refused: run() restarts from the checkpoint
        await self._save_checkpoint(conn, end)
        # Only once stored: `checkpoint` is what a restart would resume from, never ahead of it
        # (a reader seeing it reach the end used to find the table's row still behind).
        self.checkpoint = end
        OUTBOX_PUBLISHED.labels(self.name).inc(count)

    async def _next_batch(self, conn: asyncpg.Connection, after: tuple[int, int]) -> list[asyncpg.Record]:
        tx, position = after
        return await conn.fetch(
            """
            SELECT position, tx, topic, key, value, headers::text AS headers
            FROM outbox
            WHERE (tx, position) > ($1::xid8, $2::bigint)
              AND tx < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY tx, position
            LIMIT $3
            """,
            tx,
            position,
            self.batch_size,
        )

    async def _send(self, producer: AIOKafkaProducer, rows: list[asyncpg.Record]) -> asyncio.Future:
        """Queue every record in order; return one future for all their acks."""
        acks = []
        for row in rows:
            # send() queues in order; the idempotent producer keeps that order per partition.
            acks.append(
                await producer.send(
                    row["topic"], value=row["value"], key=row["key"], headers=headers_from_json(row["headers"])
                )
            )
        return asyncio.gather(*acks)

    async def _load_checkpoint(self, conn: asyncpg.Connection) -> tuple[int, int]:
        row = await conn.fetchrow("SELECT tx, position FROM outbox_checkpoint WHERE relay = $1", self.name)
        return (int(row["tx"]), row["position"]) if row else (0, 0)

    async def _save_checkpoint(self, conn: asyncpg.Connection, checkpoint: tuple[int, int]) -> None:
        tx, position = checkpoint
        await conn.execute(
            """
            INSERT INTO outbox_checkpoint (relay, tx, position) VALUES ($1, $2::xid8, $3)
            ON CONFLICT (relay) DO UPDATE SET tx = EXCLUDED.tx, position = EXCLUDED.position, updated_at = now()
            """,
            self.name,
            tx,
            position,
        )

    async def _observe_lag(self, conn: asyncpg.Connection) -> None:
        tx, position = self.checkpoint
        row = await conn.fetchrow(
            """
            SELECT count(*) AS waiting, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age
            FROM outbox WHERE (tx, position) > ($1::xid8, $2::bigint)
            """,
            tx,
            position,
        )
        OUTBOX_LAG.labels(self.name).set(row["waiting"])
        OUTBOX_OLDEST_AGE.labels(self.name).set(float(row["age"]))

    async def _prune(self, conn: asyncpg.Connection) -> None:
        """Delete rows Kafka acknowledged (at or before the checkpoint) older than the retention."""
        assert self.retention is not None
        tx, position = self.checkpoint
        deleted = await conn.execute(
            """
            DELETE FROM outbox
            WHERE (tx, position) <= ($1::xid8, $2::bigint) AND created_at < now() - $3::interval
            """,
            tx,
            position,
            self.retention,
        )
        log.debug("outbox relay %s pruned: %s", self.name, deleted)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once on stop()."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass


async def serve(settings: RelaySettings) -> None:
    """Run one relay process until SIGTERM/SIGINT."""
    pool = await create_pool(settings)
    try:
        # The relay may start before its service: make sure the outbox tables exist.
        await install_schema(pool, [OUTBOX_DDL])
        retention = settings.outbox_retention_seconds
        relay = OutboxRelay(
            pool,
            settings,
            batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval,
            name=settings.outbox_relay_name,
            retention=timedelta(seconds=retention) if retention is not None else None,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, relay.stop)
        await relay.run()
    finally:
        await pool.close()


def main() -> None:
    settings = RelaySettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.outbox_metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(settings.outbox_metrics_port, addr=settings.http_host)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
