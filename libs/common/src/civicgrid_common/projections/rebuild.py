"""Rebuilding a projection from the log into a fresh version, and swapping it in if it is equal.

1. Create version N+1 in its own schema and replay every topic from the beginning into it,
   chasing the live version's checkpoints (never passing them) while the live runner keeps going.
2. Take the projection's advisory lock: the live runner finishes its batch in hand and then
   waits, so its checkpoints stand still. Replay exactly up to them.
3. Compare checksums. Equal: point the registry and the reader views at N+1 in one
   transaction, then release the lock; the live runner notices and continues on N+1.
   Not equal: leave the live version as it is, mark N+1 rejected, and say so.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Iterable

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from civicgrid_common.projections import metrics, store
from civicgrid_common.projections.protocol import Projection
from civicgrid_common.projections.runner import (
    apply_batch, assigned_consumer, install, publish_positions, seek_to, topic_partitions,
)
from civicgrid_common.settings import PlatformSettings

log = logging.getLogger(__name__)


class RebuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class RebuildReport:
    equal: bool
    live_checksum: str
    rebuilt_checksum: str
    events: int  # events applied to the new version
    seconds: float
    new_version: int
    live_version: int
    swapped: bool
    checkpoints: dict[str, int] = field(default_factory=dict)  # "topic:partition" -> next offset

    def describe(self) -> str:
        if self.equal:
            return (f"version {self.new_version} equals version {self.live_version} "
                    f"({self.events} events in {self.seconds:.1f}s) and is now active")
        return (f"version {self.new_version} differs from live version {self.live_version}: "
                f"{self.rebuilt_checksum} != {self.live_checksum}; not swapped")


class _Replayer:
    """Applies the log to the new version, up to given targets and never past them."""

    def __init__(self, pool: asyncpg.Pool, projection: Projection, version: int,
                 consumer: AIOKafkaConsumer, tps: list[TopicPartition], poll_timeout: float) -> None:
        self.pool, self.projection, self.version = pool, projection, version
        self.consumer, self.tps, self.poll_timeout = consumer, tps, poll_timeout
        self.positions: store.Checkpoints = {}
        self.events = 0

    def behind(self, target: store.Checkpoints) -> list[TopicPartition]:
        return [tp for tp in self.tps if self.positions.get(tp, 0) < target.get(tp, 0)]

    async def catch_up(self, target: store.Checkpoints, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while lagging := self.behind(target):
            if time.monotonic() > deadline:
                raise RebuildError(f"rebuild of {self.projection.name} could not reach {target} "
                                   f"within {timeout}s (at {self.positions})")
            batch = await self.consumer.getmany(*lagging, timeout_ms=int(self.poll_timeout * 1000))
            if not batch:
                continue
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    advanced, applied = await apply_batch(
                        conn, self.projection, self.version, batch, self.positions, limit=target)
            self.positions.update(advanced)
            self.events += applied
            # Records fetched past the target belong to a later round: fetch them again then.
            for tp, records in batch.items():
                if records and records[-1].offset >= target.get(tp, 0):
                    self.consumer.seek(tp, max(self.positions.get(tp, 0), target.get(tp, 0)))
            publish_positions(self.projection.name, self.version, advanced)


async def rebuild(
    settings: PlatformSettings,
    pool: asyncpg.Pool,
    projection: Projection,
    topics: Iterable[str],
    *,
    chase_rounds: int = 5,
    catch_up_timeout: float = 300.0,
    poll_timeout: float = 0.5,
) -> RebuildReport:
    started = time.monotonic()
    name = projection.name
    await install(pool, projection)
    async with pool.acquire() as conn:
        live = await store.active_version(conn, name)
        if live is None:
            raise RebuildError(f"projection {name} has no live version to compare with; run it first")
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", store.lock_key(name))
            new = await store.next_version(conn, name)
            await store.create_version(conn, projection, new)
    log.info("projection %s: rebuilding into version %d next to live version %d", name, new, live)

    tps = await topic_partitions(settings, topics)
    consumer = await assigned_consumer(settings, tps)
    try:
        await seek_to(consumer, tps, {})
        replayer = _Replayer(pool, projection, new, consumer, tps, poll_timeout)

        # Chase the live version without disturbing it; each round closes most of the gap.
        for _ in range(chase_rounds):
            async with pool.acquire() as conn:
                target = await store.read_checkpoints(conn, name, live)
            await replayer.catch_up(target, catch_up_timeout)
            async with pool.acquire() as conn:
                if not replayer.behind(await store.read_checkpoints(conn, name, live)):
                    break

        # Hold the live runner at a batch boundary and finish exactly at its checkpoints.
        async with pool.acquire() as hold:
            await hold.execute("SELECT pg_advisory_lock($1)", store.lock_key(name))
            try:
                return await _finish(pool, projection, live, new, replayer, catch_up_timeout, started)
            finally:
                await hold.execute("SELECT pg_advisory_unlock($1)", store.lock_key(name))
    finally:
        await consumer.stop()


async def _finish(pool: asyncpg.Pool, projection: Projection, live: int, new: int, replayer: _Replayer,
                  timeout: float, started: float) -> RebuildReport:
    name = projection.name
    async with pool.acquire() as conn:
        if await store.active_version(conn, name) != live:
            raise RebuildError(f"projection {name} was swapped by someone else during the rebuild")
        target = await store.read_checkpoints(conn, name, live)
    await replayer.catch_up(target, timeout)
    async with pool.acquire() as conn:
        live_sum = await projection.checksum(conn, store.version_schema(name, live))
        new_sum = await projection.checksum(conn, store.version_schema(name, new))
        equal = live_sum == new_sum and replayer.positions == target
        if equal:
            await store.activate(conn, name, new)
            metrics.ACTIVE_VERSION.labels(name).set(new)
        else:
            await store.reject(conn, name, new)
    report = RebuildReport(
        equal=equal, live_checksum=live_sum, rebuilt_checksum=new_sum, events=replayer.events,
        seconds=time.monotonic() - started, new_version=new, live_version=live, swapped=equal,
        checkpoints={f"{tp.topic}:{tp.partition}": off for tp, off in sorted(target.items())},
    )
    (log.info if equal else log.error)("projection %s: %s", name, report.describe())
    return report
