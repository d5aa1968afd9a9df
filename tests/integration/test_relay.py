"""The outbox relay on the real broker and database: publishing in order per key as CloudEvents,
never skipping a transaction that commits out of sequence order, one active replica at a time,
pruning only what Kafka acknowledged, metrics."""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Awaitable, Callable

import asyncpg
import pytest
from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from civicgrid_common.cloudevents import CloudEvent, from_kafka_message
from civicgrid_common.events import NewEvent
from civicgrid_common.eventstore import EventStore
from civicgrid_common.kafka import make_consumer
from civicgrid_common.outbox.relay import OutboxRelay
from civicgrid_common.settings import PlatformSettings

from ledger_kit import make_store

pytestmark = pytest.mark.integration

OPENED = "civicgrid.test.ledger.opened.v1"
CREDITED = "civicgrid.test.ledger.credited.v1"


def opened(owner: str) -> NewEvent:
    return NewEvent(OPENED, {"owner": owner, "opened_on": "2026-01-05"})


def credited(amount: int) -> NewEvent:
    return NewEvent(CREDITED, {"amount": amount, "memo": f"#{amount}"})


async def wait_for(condition: Callable[[], Awaitable[bool]] | Callable[[], bool], what: str, attempts: int = 400) -> None:
    """Bounded wait for a condition (about 20 s at most)."""
    for _ in range(attempts):
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def read_topic(settings: PlatformSettings, topic: str, expected_ids: set[str]) -> list[tuple[int, int, CloudEvent]]:
    """Every record of the topic as (partition, offset, event), once all expected ids are seen."""
    consumer = make_consumer(settings, topic, group_id=None)
    await consumer.start()
    seen: list[tuple[int, int, CloudEvent]] = []
    try:
        for _ in range(120):
            batches = await consumer.getmany(timeout_ms=250)
            for tp, messages in batches.items():
                for m in messages:
                    seen.append((tp.partition, m.offset, from_kafka_message(m.headers, m.key, m.value)))
            if expected_ids <= {e.id for _, _, e in seen}:
                return sorted(seen, key=lambda s: (s[0], s[1]))
    finally:
        await consumer.stop()
    missing = expected_ids - {e.id for _, _, e in seen}
    raise AssertionError(f"{len(missing)} events never reached {topic}: {sorted(missing)[:5]}")


async def records_on(settings: PlatformSettings, topic: str, partitions: int) -> int:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


def metric(name: str, relay: str) -> float:
    return REGISTRY.get_sample_value(name, {"relay": relay}) or 0.0


@pytest.fixture
async def topic(new_topic) -> str:
    return await new_topic("test.ledger", partitions=3)


@pytest.fixture
async def store(pool: asyncpg.Pool, fresh_db: PlatformSettings, topic: str) -> EventStore:
    s = make_store(pool, fresh_db, topic)
    await s.install()
    return s


class RunningRelay:
    def __init__(self, relay: OutboxRelay) -> None:
        self.relay = relay
        self.task = asyncio.create_task(relay.run())

    async def stop(self) -> None:
        self.relay.stop()
        await asyncio.wait_for(self.task, 30)


@pytest.fixture
async def start_relay(pool: asyncpg.Pool, fresh_db: PlatformSettings):
    running: list[RunningRelay] = []

    def start(**options) -> OutboxRelay:
        options.setdefault("poll_interval", 0.05)
        options.setdefault("name", f"relay-{uuid.uuid4().hex[:8]}")
        r = RunningRelay(OutboxRelay(pool, fresh_db, **options))
        running.append(r)
        return r.relay

    yield start
    for r in running:
        await r.stop()


async def outbox_end(pool: asyncpg.Pool) -> tuple[int, int]:
    row = await pool.fetchrow("SELECT tx, position FROM outbox ORDER BY tx DESC, position DESC LIMIT 1")
    return (int(row["tx"]), row["position"])


async def test_relay_publishes_every_event_in_stream_order_per_key(store, pool, fresh_db, topic, start_relay):
    stored = []
    for key in ("L-1", "L-2", "L-3"):
        stored += await store.append(key, "ledger", 0, [opened(key)])
    for amount in range(1, 5):  # interleaved appends across keys
        for key in ("L-1", "L-2", "L-3"):
            stored += await store.append(key, "ledger", amount, [credited(amount)])
    relay = start_relay(batch_size=4)
    end = await outbox_end(pool)
    await wait_for(lambda: relay.checkpoint == end, "the relay to reach the end of the outbox")

    records = await read_topic(fresh_db, topic, {str(e.id) for e in stored})
    assert len(records) == len(stored)  # nothing resent in a clean run
    by_key: dict[str, list[int]] = {}
    partition_of: dict[str, set[int]] = {}
    for partition, _offset, event in records:
        by_key.setdefault(event.subject, []).append(event.sequence)
        partition_of.setdefault(event.subject, set()).add(partition)
    assert by_key == {"L-1": [1, 2, 3, 4, 5], "L-2": [1, 2, 3, 4, 5], "L-3": [1, 2, 3, 4, 5]}
    assert all(len(p) == 1 for p in partition_of.values())  # key = aggregate id
    one = next(e for _, _, e in records if e.id == str(stored[0].id))
    assert (one.type, one.source, one.data) == (OPENED, fresh_db.source, {"owner": "L-1", "opened_on": "2026-01-05"})

    checkpoint = await pool.fetchrow("SELECT tx, position FROM outbox_checkpoint WHERE relay = $1", relay.name)
    assert (int(checkpoint["tx"]), checkpoint["position"]) == end
    assert metric("civicgrid_outbox_published_total", relay.name) == len(stored)
    await wait_for(lambda: metric("civicgrid_outbox_lag_events", relay.name) == 0, "lag to be observed as 0")
    assert metric("civicgrid_outbox_oldest_unpublished_age_seconds", relay.name) == 0


async def test_guarantee_a_transaction_committing_out_of_sequence_is_not_skipped(
    store, pool, fresh_db, new_topic, start_relay
):
    """Guarantee 3: A takes the lower position, B commits first, the relay runs, then A
    commits. Design: nothing after an open transaction is published, so B waits for A;
    then both go out, A first (one partition here, so offsets show the publishing order)."""
    single = await new_topic("test.ledger.order", partitions=1)
    store.topic_for = lambda _type: single
    relay = start_relay()
    await wait_for(lambda: relay.polls > 0, "the relay to poll")

    async with pool.acquire() as a:
        tx_a = a.transaction()
        await tx_a.start()
        [event_a] = await store.append("S-A", "ledger", 0, [opened("A")], conn=a)
        [event_b] = await store.append("S-B", "ledger", 0, [opened("B")])
        assert event_a.position < event_b.position
        polls = relay.polls
        await wait_for(lambda: relay.polls >= polls + 5, "the relay to poll while A is open")
        # B is committed, but publishing it now would let A (lower position) be skipped
        # by a position-based reader; here it simply waits.
        assert await records_on(fresh_db, single, 1) == 0
        assert relay.checkpoint == (0, 0)
        assert await store.read_all(0) == []
        await tx_a.commit()

    records = await read_topic(fresh_db, single, {str(event_a.id), str(event_b.id)})
    assert [e.id for _, _, e in records] == [str(event_a.id), str(event_b.id)]
    assert [e.id for e in await store.read_all(0)] == [event_a.id, event_b.id]


async def test_a_rolled_back_transaction_publishes_nothing_and_unblocks(store, pool, fresh_db, topic, start_relay):
    relay = start_relay()
    async with pool.acquire() as a:
        tx_a = a.transaction()
        await tx_a.start()
        [event_a] = await store.append("S-A", "ledger", 0, [opened("A")], conn=a)
        [event_b] = await store.append("S-B", "ledger", 0, [opened("B")])
        await tx_a.rollback()
    records = await read_topic(fresh_db, topic, {str(event_b.id)})
    assert str(event_a.id) not in {e.id for _, _, e in records}
    await wait_for(lambda: relay.checkpoint[1] == event_b.position, "the checkpoint to pass B")


async def test_only_one_replica_publishes_and_the_other_takes_over(store, pool, fresh_db, topic, start_relay):
    name = f"shared-{uuid.uuid4().hex[:8]}"
    first = start_relay(name=name)
    await wait_for(lambda: first.holds_lock and first.polls > 0, "the first replica to publish")
    second = start_relay(name=name)
    [e1] = await store.append("L-1", "ledger", 0, [opened("one")])
    await wait_for(lambda: first.checkpoint[1] == e1.position, "the first replica to publish e1")
    polls = first.polls
    await wait_for(lambda: first.polls >= polls + 5, "a few more polls of the first replica")
    assert not second.holds_lock and second.polls == 0

    first.stop()
    await wait_for(lambda: second.holds_lock, "the second replica to take over")
    [e2] = await store.append("L-1", "ledger", 1, [credited(1)])
    await wait_for(lambda: second.checkpoint[1] == e2.position, "the second replica to publish e2")
    # it went on from the shared checkpoint: e1 is not sent twice
    records = await read_topic(fresh_db, topic, {str(e1.id), str(e2.id)})
    assert [e.sequence for _, _, e in records] == [1, 2]


async def test_published_rows_are_pruned_after_the_retention(store, pool, fresh_db, topic, start_relay):
    published = await store.append("L-1", "ledger", 0, [opened("a"), credited(1)])
    # nothing is pruned while rows are younger than the retention
    relay = start_relay(retention=timedelta(hours=1), prune_interval=0)
    await wait_for(lambda: relay.checkpoint[1] == published[-1].position, "publishing")
    polls = relay.polls
    await wait_for(lambda: relay.polls >= polls + 3, "a few prune rounds")
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 2
    relay.stop()
    await wait_for(lambda: not relay.holds_lock, "the relay to stop")

    pruning = start_relay(name=relay.name, retention=timedelta(0), prune_interval=0)
    await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), "the published rows to be pruned")
    [later] = await store.append("L-1", "ledger", 2, [credited(2)])
    await wait_for(lambda: pruning.checkpoint[1] == later.position, "the next row to be published")
    records = await read_topic(fresh_db, topic, {str(e.id) for e in published} | {str(later.id)})
    assert [e.sequence for _, _, e in records] == [1, 2, 3]
    assert len(await store.read_stream("L-1")) == 3  # events themselves are never pruned


async def test_rows_kafka_never_acknowledged_are_not_pruned(store, pool, fresh_db, start_relay):
    """With no broker reachable nothing is acknowledged: errors are counted, rows stay."""
    await store.append("L-1", "ledger", 0, [opened("a"), credited(1)])
    nowhere = fresh_db.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    name = f"relay-{uuid.uuid4().hex[:8]}"
    errors_before = metric("civicgrid_outbox_relay_errors_total", name)
    relay = OutboxRelay(pool, nowhere, name=name, poll_interval=0.05, retry_backoff=0.05,
                        retention=timedelta(0), prune_interval=0)
    task = asyncio.create_task(relay.run())
    try:
        await wait_for(lambda: metric("civicgrid_outbox_relay_errors_total", name) >= errors_before + 2,
                       "the relay to fail twice")
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 2
        assert await pool.fetchval("SELECT count(*) FROM outbox_checkpoint") == 0
    finally:
        relay.stop()
        await asyncio.wait_for(task, 60)
