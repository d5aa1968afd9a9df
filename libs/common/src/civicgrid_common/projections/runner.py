"""Keeping a projection up to date: apply each batch and advance its checkpoint in one transaction.

The checkpoint lives in PostgreSQL next to the rows, so there is no consumer group and no
inbox: the runner assigns itself every partition of its topics, seeks to the stored offsets,
and a crash at any point either keeps a batch with its checkpoint or loses both.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Iterable

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from civicgrid_common.cloudevents import CloudEvent, MalformedEvent, from_kafka_message
from civicgrid_common.db import install_schema
from civicgrid_common.kafka import make_consumer
from civicgrid_common.projections import metrics, store
from civicgrid_common.projections.protocol import Projection, ident
from civicgrid_common.settings import PlatformSettings

log = logging.getLogger(__name__)

Batch = dict[TopicPartition, list[ConsumerRecord]]


async def install(pool: asyncpg.Pool, projection: Projection) -> None:
    ident(f"proj_{projection.name}_v1")  # refuses a name that cannot become a schema name
    await install_schema(pool, store.DDL)


async def ensure_active_version(pool: asyncpg.Pool, projection: Projection) -> int:
    """The active version, creating version 1 (tables and views) if the projection is new."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            # Two replicas starting together must not both create version 1.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", store.lock_key(projection.name))
            version = await store.active_version(conn, projection.name)
            if version is None:
                version = await store.next_version(conn, projection.name)
                await store.create_version(conn, projection, version)
                await store.activate(conn, projection.name, version)
    metrics.ACTIVE_VERSION.labels(projection.name).set(version)
    return version


async def topic_partitions(settings: PlatformSettings, topics: Iterable[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id=f"{settings.client_id}-proj")
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    tps = []
    for topic in described:
        if topic["error_code"]:
            raise ValueError(f"topic {topic['topic']!r} cannot be read (Kafka error {topic['error_code']})")
        tps += [TopicPartition(topic["topic"], p["partition"]) for p in topic["partitions"]]
    return sorted(tps)


async def assigned_consumer(settings: PlatformSettings, tps: list[TopicPartition]) -> AIOKafkaConsumer:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    consumer.assign(tps)
    return consumer


async def seek_to(consumer: AIOKafkaConsumer, tps: list[TopicPartition], checkpoints: store.Checkpoints) -> None:
    fresh = [tp for tp in tps if tp not in checkpoints]
    if fresh:
        await consumer.seek_to_beginning(*fresh)
    for tp in tps:
        if tp in checkpoints:
            consumer.seek(tp, checkpoints[tp])


async def apply_batch(
    conn: asyncpg.Connection, projection: Projection, version: int, batch: Batch,
    checkpoints: store.Checkpoints, limit: store.Checkpoints | None = None,
) -> tuple[store.Checkpoints, int]:
    """Apply the records not yet covered by `checkpoints` (and below `limit`, if given) to
    `version`, and write the new checkpoints; inside the caller's transaction.

    Returns the advanced checkpoints and how many records were applied."""
    schema = store.version_schema(projection.name, version)
    advanced: store.Checkpoints = {}
    events: list[CloudEvent] = []
    for tp, records in batch.items():
        for record in records:
            if record.offset < checkpoints.get(tp, 0):
                continue  # already in this version (a re-fetch after a crash or a seek)
            if limit is not None and record.offset >= limit.get(tp, 0):
                break
            try:
                event = from_kafka_message(record.headers, record.key, record.value)
            except MalformedEvent as exc:
                # Skipped the same way by every version, so rebuilds still compare equal.
                log.error("projection %s: skipping %s@%d, not a CloudEvent: %s", projection.name, tp, record.offset, exc)
                metrics.SKIPPED.labels(projection.name, tp.topic).inc()
            else:
                events.append(event)
            advanced[tp] = record.offset + 1
    events = await _not_yet_applied(conn, projection.name, version, events)
    # A projection may take the whole batch at once (e.g. one pipelined executemany instead of
    # a round trip per event); per partition the order of `events` is the log's order.
    apply_many = getattr(projection, "apply_many", None)
    if apply_many is not None:
        await apply_many(conn, schema, events)
    else:
        for event in events:
            await projection.apply(conn, schema, event)
    # Projection code that caught a database error leaves the transaction aborted, and the
    # COMMIT would silently roll back the rows and the checkpoint; this raises instead.
    await conn.execute("SELECT 1")
    applied = len(events)
    if advanced:
        await store.write_checkpoints(conn, projection.name, version, advanced)
    return advanced, applied


async def _not_yet_applied(
    conn: asyncpg.Connection, name: str, version: int, events: list[CloudEvent]
) -> list[CloudEvent]:
    """Effectively once by event id, not only by offset: a duplicate published by the
    at-least-once relay is skipped, here and in every rebuild alike."""
    if not events:
        return events
    fresh = await store.first_sightings(conn, name, version, [e.id for e in events])
    kept: list[CloudEvent] = []
    for event in events:
        if event.id in fresh:
            fresh.discard(event.id)  # a second copy within the same batch is a duplicate too
            kept.append(event)
    return kept


def publish_positions(name: str, version: int, positions: store.Checkpoints) -> None:
    for tp, offset in positions.items():
        metrics.POSITION.labels(name, str(version), tp.topic, str(tp.partition)).set(offset)


class _VersionChanged(Exception):
    """The active version moved (a rebuild swapped) while the runner waited for its lock."""


class ProjectionRunner:
    def __init__(
        self,
        settings: PlatformSettings,
        pool: asyncpg.Pool,
        projection: Projection,
        topics: Iterable[str],
        *,
        poll_timeout: float = 0.5,
        max_records: int = 500,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.projection = projection
        self.topics = list(topics)
        if not self.topics:
            raise ValueError("a projection needs at least one topic")
        self.poll_timeout = poll_timeout
        self.max_records = max_records
        self.version: int | None = None
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._started = False
        self._failures = 0  # consecutive failed batches, for the retry backoff

    async def run(self) -> None:
        self._started = True
        self._stopped.clear()
        try:
            await install(self.pool, self.projection)
            self.version = await ensure_active_version(self.pool, self.projection)
            tps = await topic_partitions(self.settings, self.topics)
            consumer = await assigned_consumer(self.settings, tps)
            try:
                await self._seek_to_version(consumer, tps)
                while not self._stopping.is_set():
                    await self._step(consumer, tps)
            finally:
                await consumer.stop()
        finally:
            self._stopped.set()

    async def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._started:
            await asyncio.wait_for(self._stopped.wait(), timeout)

    async def _seek_to_version(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        assert self.version is not None
        async with self.pool.acquire() as conn:
            checkpoints = await store.read_checkpoints(conn, self.projection.name, self.version)
        await seek_to(consumer, tps, checkpoints)
        publish_positions(self.projection.name, self.version, checkpoints)

    async def _step(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        try:
            batch = await consumer.getmany(timeout_ms=int(self.poll_timeout * 1000), max_records=self.max_records)
        except KafkaError as exc:
            log.warning("projection %s: poll failed (%r)", self.projection.name, exc)
            await asyncio.sleep(1.0)
            return
        if not batch:
            return
        try:
            await self._apply(batch)
            self._failures = 0
        except _VersionChanged:
            # Start over from the new version's checkpoints (a rebuild left them exactly where
            # ours were, so this only re-fetches the batch in hand).
            await self._seek_to_version(consumer, tps)
        except (asyncpg.PostgresError, OSError) as exc:
            # Nothing of the batch was kept (one transaction): wait, then fetch it again from
            # the checkpoints. A projection must not skip an event, so it retries rather than
            # moving on; a bug in apply() shows up here over and over, loudly.
            self._failures += 1
            delay = min(30.0, 0.5 * 2 ** min(self._failures, 6))
            log.error("projection %s: batch failed (%r), retry %d in %.1fs",
                      self.projection.name, exc, self._failures, delay)
            await asyncio.sleep(delay)
            await self._seek_to_version(consumer, tps)

    async def _apply(self, batch: Batch) -> None:
        name = self.projection.name
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                # A rebuild takes this lock to hold us at a batch boundary while it catches up.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", store.lock_key(name))
                active = await store.active_version(conn, name)
                if active != self.version:
                    log.info("projection %s: active version is now %s (was %s)", name, active, self.version)
                    self.version = active
                    metrics.ACTIVE_VERSION.labels(name).set(active)
                    raise _VersionChanged()
                checkpoints = await store.read_checkpoints(conn, name, active)
                advanced, _ = await apply_batch(conn, self.projection, active, batch, checkpoints)
        publish_positions(name, active, advanced)
