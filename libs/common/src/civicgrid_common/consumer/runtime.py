"""The consumer runtime: a consumer group member that handles each event effectively once.

For every record, one PostgreSQL transaction claims the event id in the inbox and runs the
handler on the same connection; only after that commit is the Kafka offset committed. A crash
anywhere in between leads to a redelivery whose inbox claim fails, so the handler's effect is
never repeated. A handler that keeps failing is retried with backoff; after `max_attempts`
(or at once for a record that is not a CloudEvent) the record goes to the dead-letter topic
and the partition moves on. A watchdog recreates the Kafka consumer when it silently stops
making progress (see watchdog.py).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Iterable, Mapping

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord

from civicgrid_common.cloudevents import CloudEvent, MalformedEvent, from_kafka_message
from civicgrid_common.consumer import metrics
from civicgrid_common.consumer.backoff import Backoff
from civicgrid_common.consumer.deadletter import FailedRecord, dead_letter_headers
from civicgrid_common.consumer.inbox import DEAD_LETTERED, INBOX_DDL, already_seen, claim, poison_id
from civicgrid_common.consumer.tracing import handling_span
from civicgrid_common.consumer.watchdog import Observation, StallDetector, partitions_held
from civicgrid_common.db import install_schema
from civicgrid_common.kafka import make_consumer, make_producer
from civicgrid_common.settings import PlatformSettings

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, CloudEvent], Awaitable[None]]
# Called after an event's transaction committed and before its offset is committed.
CommittedHook = Callable[[CloudEvent], Awaitable[None] | None]

DEAD_LETTER_TOPIC = "civicgrid.deadletter"


class _Stopping(Exception):
    """Raised inside a batch when stop() interrupts a backoff wait."""


class PoisonEvent(Exception):
    """Raised by a handler for an event that no retry can ever make acceptable (a contract
    violation, a sender without the right, a reference to nothing): the transaction rolls back
    and the record goes to the dead-letter topic at once, without the retries and backoff that
    transient failures get (which would only hold the partition up)."""


class EventConsumer:
    def __init__(
        self,
        settings: PlatformSettings,
        pool: asyncpg.Pool,
        *,
        topics: Iterable[str],
        group_id: str,
        handler: Handler,
        max_attempts: int = 5,
        backoff: Backoff | tuple[float, float] = (0.2, 10.0),
        # Required: a consumer says where its dead letters go, so that no test (or tool) drops its
        # poison into the running system's shared civicgrid.deadletter by default.
        dead_letter_topic: str,
        stall_after: float = 60.0,
        watchdog_interval: float = 5.0,
        poll_timeout: float = 1.0,
        max_records: int = 100,
        kafka_timeout: float = 15.0,
        on_committed: CommittedHook | None = None,
        consumer_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.topics = list(topics)
        if not self.topics:
            raise ValueError("an EventConsumer needs at least one topic")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.settings = settings
        self.pool = pool
        self.group_id = group_id
        self.name = f"consumer-{group_id}"  # a runner's name (civicgrid_common.service)
        self.handler = handler
        self.max_attempts = max_attempts
        self.backoff = Backoff.of(backoff)
        self.dead_letter_topic = dead_letter_topic
        self.stall_after = stall_after
        self.watchdog_interval = watchdog_interval
        self.poll_timeout = poll_timeout
        self.max_records = max_records
        self.kafka_timeout = kafka_timeout
        self.on_committed = on_committed
        self.consumer_overrides = dict(consumer_overrides or {})

        self.recoveries = 0  # how often the watchdog recreated the Kafka consumer
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._running = False
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._assigned = asyncio.Event()
        self._batch_lock = asyncio.Lock()
        self._pending_offsets: dict[TopicPartition, int] = {}
        self._last_done: dict[TopicPartition, int] = {}  # next offset after the last finished record
        self._recover_reason: str | None = None
        self._detector = StallDetector(stall_after, time.monotonic())

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until stop() is called."""
        self._stopped.clear()
        self._running = True
        watchdog: asyncio.Task[None] | None = None
        try:
            await install_schema(self.pool, [INBOX_DDL])
            self._producer = make_producer(self.settings, client_id=f"{self.settings.client_id}-dlq")
            await self._producer.start()
            self._consumer = await self._start_consumer()
            watchdog = asyncio.create_task(self._watch(), name=f"watchdog-{self.group_id}")
            while not self._stopping.is_set():
                if self._recover_reason is not None:
                    await self._recover(self._recover_reason)
                await self._poll_once()
        except _Stopping:
            pass  # stop() while waiting for the broker to (re)start a consumer
        finally:
            if watchdog is not None:
                watchdog.cancel()
                await asyncio.gather(watchdog, return_exceptions=True)
            await self._close_clients()
            self._running = False
            self._stopped.set()

    async def stop(self, timeout: float = 30.0) -> None:
        """Ask run() to finish after the record in hand, and wait until it has."""
        self._stopping.set()
        if self._running:
            await asyncio.wait_for(self._stopped.wait(), timeout)

    async def wait_until_assigned(self, timeout: float) -> None:
        """For callers that must know the group has handed this member its partitions."""
        await asyncio.wait_for(self._assigned.wait(), timeout)

    async def _start_consumer(self) -> AIOKafkaConsumer:
        """A new group member, subscribed; retried until the broker answers or stop()."""
        attempt = 0
        while True:
            consumer = make_consumer(self.settings, group_id=self.group_id, **self.consumer_overrides)
            try:
                await asyncio.wait_for(consumer.start(), self.kafka_timeout)
                consumer.subscribe(self.topics, listener=_RebalanceListener(self))
                return consumer
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                await self._close_quietly(consumer)
                attempt += 1
                log.warning("consumer %s cannot start (%r); retrying", self.group_id, exc)
                await self._pause(self.backoff.delay(attempt))

    async def _recover(self, reason: str) -> None:
        log.warning(
            "consumer %s made no progress for %.0fs (%s): recreating its Kafka consumer",
            self.group_id, self._detector.idle_for(time.monotonic()), reason,
        )
        old, self._consumer = self._consumer, None
        self._assigned.clear()
        self._pending_offsets.clear()  # the new member resumes from the committed offsets
        if old is not None:
            await self._close_quietly(old)
        self._consumer = await self._start_consumer()
        self.recoveries += 1
        metrics.RECOVERIES.labels(self.group_id, reason).inc()
        self._detector.progress(time.monotonic())
        self._recover_reason = None

    async def _close_clients(self) -> None:
        for client in (self._consumer, self._producer, self._admin):
            if client is not None:
                await self._close_quietly(client)
        self._consumer = self._producer = self._admin = None

    async def _close_quietly(self, client: Any) -> None:
        # aiokafka's stop() can hang while no broker answers (aio-libs/aiokafka#659).
        closer = client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop()
        try:
            await asyncio.wait_for(closer, self.kafka_timeout)
        except Exception as exc:  # noqa: BLE001 - closing is best effort
            log.warning("closing a Kafka client of %s failed: %r", self.group_id, exc)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up (raising _Stopping) as soon as stop() is called."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            return
        raise _Stopping()

    # --- the poll loop ---------------------------------------------------------------------

    async def _poll_once(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            batch = await consumer.getmany(timeout_ms=int(self.poll_timeout * 1000), max_records=self.max_records)
        except KafkaError as exc:
            log.warning("consumer %s: poll failed (%r)", self.group_id, exc)
            await self._pause_unless_stopping(1.0)
            return
        if not batch:
            return
        async with self._batch_lock:
            try:
                await self._process_batch(consumer, batch)
            except _Stopping:
                pass  # stop() during a backoff: commit what is done, leave the rest for later
            await self._commit_pending(consumer)
        self._publish_lag(consumer, batch)

    def _publish_lag(self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Lag from the high-water mark the last fetch reported (no extra request)."""
        for tp, records in batch.items():
            highwater = consumer.highwater(tp)
            if highwater is not None and records:
                done = self._last_done.get(tp, records[0].offset)
                metrics.CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(max(0, highwater - done))

    async def _pause_unless_stopping(self, seconds: float) -> None:
        try:
            await self._pause(seconds)
        except _Stopping:
            pass

    async def _process_batch(
        self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        for tp, records in batch.items():
            for i, record in enumerate(records):
                try:
                    await self._process(record)
                except _Stopping:
                    raise
                except Exception as exc:  # noqa: BLE001 - e.g. the DLQ or the database is down
                    # Records past this one were fetched but not handled: rewind so the next
                    # poll returns them again instead of skipping them.
                    log.error("consumer %s: abandoning the rest of %s at offset %d: %r",
                              self.group_id, tp, record.offset, exc)
                    self._rewind(consumer, batch, tp, records[i].offset)
                    await self._pause_unless_stopping(1.0)
                    return
                self._pending_offsets[tp] = self._last_done[tp] = record.offset + 1
                self._detector.progress(time.monotonic())
                metrics.LAST_PROGRESS.labels(self.group_id).set(time.time())

    def _rewind(
        self,
        consumer: AIOKafkaConsumer,
        batch: dict[TopicPartition, list[ConsumerRecord]],
        failed_tp: TopicPartition,
        failed_offset: int,
    ) -> None:
        seen_failed = False
        for tp, records in batch.items():
            if tp == failed_tp:
                consumer.seek(tp, failed_offset)
                seen_failed = True
            elif seen_failed and records:
                consumer.seek(tp, records[0].offset)

    async def _commit_pending(self, consumer: AIOKafkaConsumer) -> None:
        """Commit the offsets after the handled records (their effects are already durable)."""
        assignment = consumer.assignment()
        offsets = {tp: off for tp, off in self._pending_offsets.items() if tp in assignment}
        self._pending_offsets = {}
        if not offsets:
            return
        try:
            await asyncio.wait_for(consumer.commit(offsets), self.kafka_timeout)
        except CommitFailedError as exc:
            # The group rebalanced: the partition's new owner gets these records again and
            # its inbox claims fail, so nothing is applied twice.
            log.warning("consumer %s: offset commit refused after a rebalance (%s)", self.group_id, exc)
        except (KafkaError, asyncio.TimeoutError) as exc:
            log.warning("consumer %s: offset commit failed (%r); will retry with the next batch",
                        self.group_id, exc)
            for tp, off in offsets.items():
                self._pending_offsets.setdefault(tp, off)

    # --- one record ------------------------------------------------------------------------

    async def _process(self, record: ConsumerRecord) -> None:
        failed = FailedRecord(
            topic=record.topic, partition=record.partition, offset=record.offset,
            key=record.key, value=record.value, headers=tuple(record.headers or ()),
        )
        try:
            event = from_kafka_message(record.headers, record.key, record.value)
        except MalformedEvent as exc:
            await self._dead_letter_malformed(failed, exc)
            return
        with handling_span(
            failed.headers, topic=record.topic, partition=record.partition, offset=record.offset,
            group=self.group_id, event_type=event.type,
        ):
            await self._handle_with_retries(failed, event)

    async def _handle_with_retries(self, failed: FailedRecord, event: CloudEvent) -> None:
        error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                fresh = await self._handle_once(failed, event)
            except PoisonEvent as exc:
                await self._dead_letter(failed, exc, attempt, event.id, event.type, "poison")
                return
            except Exception as exc:  # noqa: BLE001 - any other handler failure is retried
                error = exc
                if attempt < self.max_attempts:
                    metrics.RETRIES.labels(self.group_id, failed.topic).inc()
                    log.warning("consumer %s: event %s failed (attempt %d of %d): %r",
                                self.group_id, event.id, attempt, self.max_attempts, exc)
                    await self._pause(self.backoff.delay(attempt))
                continue
            metrics.EVENTS.labels(self.group_id, failed.topic, "handled" if fresh else "duplicate").inc()
            if fresh and self.on_committed is not None:
                outcome = self.on_committed(event)
                if outcome is not None:
                    await outcome
            return
        assert error is not None
        await self._dead_letter(failed, error, self.max_attempts, event.id, event.type, "handler_failed")

    async def _handle_once(self, failed: FailedRecord, event: CloudEvent) -> bool:
        """One transaction: claim the event in the inbox, apply the handler. False if seen before."""
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                fresh = await claim(
                    conn, group=self.group_id, event_id=event.id, topic=failed.topic,
                    partition=failed.partition, offset=failed.offset, event_type=event.type,
                )
                if fresh:
                    await self.handler(conn, event)
                    # A handler that caught a database error leaves the transaction aborted, and
                    # asyncpg's COMMIT would then roll back without a word: the event would count
                    # as handled with no effect and no inbox row. This statement raises instead.
                    await conn.execute("SELECT 1")
                return fresh

    async def _dead_letter_malformed(self, failed: FailedRecord, error: MalformedEvent) -> None:
        event_id = poison_id(failed.topic, failed.partition, failed.offset)
        async with self.pool.acquire() as conn:
            if await already_seen(conn, group=self.group_id, event_id=event_id):
                metrics.EVENTS.labels(self.group_id, failed.topic, "duplicate").inc()
                return
        await self._dead_letter(failed, error, 0, event_id, None, "malformed")

    async def _dead_letter(
        self, failed: FailedRecord, error: Exception, attempts: int, event_id: str,
        event_type: str | None, reason: str,
    ) -> None:
        """Produce the record to the dead-letter topic, then note it in the inbox.

        In that order: a crash in between means the record comes back and is dead-lettered a
        second time, which is better than a dead letter that never arrives."""
        assert self._producer is not None
        headers = dead_letter_headers(failed, consumer_group=self.group_id, error=error, attempts=attempts)
        await self._producer.send_and_wait(
            self.dead_letter_topic, key=failed.key, value=failed.value, headers=headers,
        )
        async with self.pool.acquire() as conn:
            await claim(
                conn, group=self.group_id, event_id=event_id, topic=failed.topic,
                partition=failed.partition, offset=failed.offset, event_type=event_type,
                status=DEAD_LETTERED, error=f"{type(error).__name__}: {error}"[:2000],
            )
        metrics.EVENTS.labels(self.group_id, failed.topic, "dead_lettered").inc()
        metrics.DEAD_LETTERS.labels(self.group_id, failed.topic, reason).inc()
        log.error("consumer %s: %s:%d@%d dead-lettered to %s after %d attempt(s): %r",
                  self.group_id, failed.topic, failed.partition, failed.offset,
                  self.dead_letter_topic, attempts, error)

    # --- watchdog --------------------------------------------------------------------------

    async def _watch(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._pause(self.watchdog_interval)
            except _Stopping:
                return
            if self._recover_reason is not None or self._consumer is None:
                continue
            try:
                observation = await asyncio.wait_for(self._observe(self._consumer), self.kafka_timeout)
            except Exception as exc:  # noqa: BLE001 - an unanswered question is "lag unknown"
                log.info("consumer %s: watchdog could not observe lag (%r)", self.group_id, exc)
                observation = Observation(time.monotonic(), assigned_partitions=0, lag=None)
            reason = self._detector.check(observation)
            if reason is not None:
                self._recover_reason = reason

    async def _observe(self, consumer: AIOKafkaConsumer) -> Observation:
        assignment = sorted(consumer.assignment())
        if not assignment:
            if self._detector.idle_for(time.monotonic()) < self.stall_after:
                return Observation(time.monotonic(), 0, None)
            held, total = await self._group_holdings(consumer)
            return Observation(time.monotonic(), 0, None, held, total)
        ends = await consumer.end_offsets(assignment)
        lag = 0
        for tp in assignment:
            position = await consumer.position(tp)
            partition_lag = max(0, ends[tp] - position)
            metrics.CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(partition_lag)
            lag += partition_lag
        return Observation(time.monotonic(), len(assignment), lag)

    async def _group_holdings(self, consumer: AIOKafkaConsumer) -> tuple[int, int]:
        total = sum(len(consumer.partitions_for_topic(t) or ()) for t in self.topics)
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(
                bootstrap_servers=self.settings.kafka_bootstrap,
                client_id=f"{self.settings.client_id}-watchdog",
            )
            await self._admin.start()
        return await partitions_held(self._admin, self.group_id, self.topics), total


class _RebalanceListener(ConsumerRebalanceListener):
    """Commits handled offsets before partitions move, and resets the stall clock after."""

    def __init__(self, runtime: EventConsumer) -> None:
        self.runtime = runtime

    async def on_partitions_revoked(self, revoked: Any) -> None:
        consumer = self.runtime._consumer
        if consumer is None:
            return
        # The batch lock makes the rebalance wait for the batch in hand to finish and commit.
        async with self.runtime._batch_lock:
            await self.runtime._commit_pending(consumer)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.runtime._detector.progress(time.monotonic())
        if assigned:
            self.runtime._assigned.set()
