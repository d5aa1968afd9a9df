"""Event store guarantees on the real PostgreSQL: optimistic concurrency (exactly one of many
concurrent appenders wins), immutability enforced by the database, a changed byte found by
verify_stream, schema violations storing nothing, commit-safe read_all, one transaction for
events and outbox rows."""
from __future__ import annotations

import asyncio

import asyncpg
import pytest

from civicgrid_common.cloudevents import from_kafka_message
from civicgrid_common.contracts import SchemaViolation
from civicgrid_common.events import NewEvent
from civicgrid_common.eventstore import ConcurrencyConflict, EventStore, StreamTypeMismatch
from civicgrid_common.outbox.records import headers_from_json
from civicgrid_common.settings import PlatformSettings

from ledger_kit import make_store

pytestmark = pytest.mark.integration

OPENED = "civicgrid.test.ledger.opened.v1"
CREDITED = "civicgrid.test.ledger.credited.v1"
TOPIC = "test.ledger.eventstore"  # nothing is published in this module; the outbox row names it


def opened(owner: str = "王芳") -> NewEvent:
    return NewEvent(OPENED, {"owner": owner, "opened_on": "2026-01-05"})


def credited(amount: int, memo: str = "") -> NewEvent:
    return NewEvent(CREDITED, {"amount": amount, "memo": memo})


@pytest.fixture
async def store(pool: asyncpg.Pool, fresh_db: PlatformSettings) -> EventStore:
    s = make_store(pool, fresh_db, TOPIC)
    await s.install()
    return s


async def count(pool: asyncpg.Pool, table: str) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {table}")


async def test_append_and_read_back_a_stream(store: EventStore, pool: asyncpg.Pool):
    first = await store.append("L-1", "ledger", 0, [opened()], )
    more = await store.append("L-1", "ledger", 1, [credited(5, "工资"), credited(7)])
    assert [e.version for e in first + more] == [1, 2, 3]
    assert more[0].prev_hash == first[0].hash and more[1].prev_hash == more[0].hash
    events = await store.read_stream("L-1")
    assert [(e.version, e.type, dict(e.data)) for e in events] == [
        (1, OPENED, {"owner": "王芳", "opened_on": "2026-01-05"}),
        (2, CREDITED, {"amount": 5, "memo": "工资"}),
        (3, CREDITED, {"amount": 7, "memo": ""}),
    ]
    assert [e.hash for e in events] == [e.hash for e in first + more]
    assert [e.version for e in await store.read_stream("L-1", from_version=2, to_version=2)] == [2]
    verification = await store.verify_stream("L-1")
    assert verification.valid and verification.checked == 3 and verification.failures == []


async def test_every_event_gets_its_outbox_record_in_cloudevents_binary_mode(store: EventStore, pool: asyncpg.Pool):
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = NewEvent(CREDITED, {"amount": 3, "memo": "m"}, metadata={"traceparent": traceparent})
    await store.append("L-1", "ledger", 0, [opened()])
    [stored] = await store.append("L-1", "ledger", 1, [event])
    row = await pool.fetchrow("SELECT topic, key, value, headers::text AS headers FROM outbox WHERE event_id = $1", event.id)
    assert row["topic"] == TOPIC
    ce = from_kafka_message(headers_from_json(row["headers"]), row["key"], row["value"])
    assert (ce.id, ce.type, ce.subject, ce.sequence, ce.traceparent) == (str(event.id), CREDITED, "L-1", 2, traceparent)
    assert ce.data == {"amount": 3, "memo": "m"} and ce.time == stored.recorded_at
    assert ce.dataschema.endswith(f"/events/{CREDITED}.schema.json")


async def test_stale_expected_version_is_a_clear_conflict_not_an_overwrite(store: EventStore, pool: asyncpg.Pool):
    await store.append("L-1", "ledger", 0, [opened()])
    await store.append("L-1", "ledger", 1, [credited(1)])
    with pytest.raises(ConcurrencyConflict) as caught:
        await store.append("L-1", "ledger", 1, [credited(99)])
    assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == ("L-1", 1, 2)
    assert "is at version 2" in str(caught.value)
    assert [e.data["amount"] for e in await store.read_stream("L-1", 2)] == [1]
    assert await count(pool, "outbox") == 2


async def test_guarantee_concurrent_appenders_exactly_one_wins(store: EventStore, pool: asyncpg.Pool, fresh_db):
    """Guarantee 1: eight appenders on eight connections, all expecting version 1."""
    await store.append("L-1", "ledger", 0, [opened()])
    contenders = 8
    connections = [await asyncpg.connect(fresh_db.dsn()) for _ in range(contenders)]
    start = asyncio.Event()

    async def contender(i: int, conn: asyncpg.Connection):
        await start.wait()
        return await store.append("L-1", "ledger", 1, [credited(i + 1, f"contender {i}")], conn=conn)

    try:
        tasks = [asyncio.create_task(contender(i, c)) for i, c in enumerate(connections)]
        await asyncio.sleep(0)  # let every task reach the start line
        start.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for c in connections:
            await c.close()
    winners = [r for r in results if isinstance(r, list)]
    conflicts = [r for r in results if isinstance(r, ConcurrencyConflict)]
    assert len(winners) == 1, results
    assert len(conflicts) == contenders - 1, results
    assert all(c.actual == 2 and c.expected == 1 for c in conflicts)
    events = await store.read_stream("L-1")
    assert [e.version for e in events] == [1, 2]
    assert events[1].id == winners[0][0].id
    assert (await store.verify_stream("L-1")).valid
    assert await count(pool, "outbox") == 2  # the losers' outbox rows were rolled back too


async def test_the_database_itself_refuses_the_second_of_two_racing_appends(store: EventStore, pool: asyncpg.Pool):
    """Both appenders pass the version check (the first has not committed yet); the unique
    (stream_id, version) constraint makes the second fail once the first commits."""
    await store.append("L-1", "ledger", 0, [opened()])
    async with pool.acquire() as first:
        tx = first.transaction()
        await tx.start()
        await store.append("L-1", "ledger", 1, [credited(1)], conn=first)
        second = asyncio.create_task(store.append("L-1", "ledger", 1, [credited(2)]))
        # wait until the second appender is blocked on the first one's row lock
        for _ in range(200):
            waiting = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "the second append never reached the insert"
        await tx.commit()
    with pytest.raises(ConcurrencyConflict) as caught:
        await second
    assert caught.value.actual == 2
    assert [e.data.get("amount") for e in await store.read_stream("L-1")] == [None, 1]


@pytest.mark.parametrize("n", [1, 2], ids=["one event (no savepoint)", "two events (a savepoint)"])
async def test_a_race_lost_in_the_callers_transaction_leaves_it_usable_and_nothing_half_written(
        store: EventStore, pool: asyncpg.Pool, n: int):
    await store.append("L-1", "ledger", 0, [opened()])
    async with pool.acquire() as first, pool.acquire() as second:
        tx = first.transaction()
        await tx.start()
        await store.append("L-1", "ledger", 1, [credited(1)], conn=first)  # the winner, not committed yet
        async with second.transaction():
            await store.append("L-2", "ledger", 0, [opened("B")], conn=second)  # the loser's other work
            losing = asyncio.create_task(
                store.append("L-1", "ledger", 1, [credited(10 + i) for i in range(n)], conn=second))
            for _ in range(200):  # until the loser waits on the winner's row
                if await pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                       "AND wait_event_type = 'Lock'"):
                    break
                await asyncio.sleep(0.05)
            await tx.commit()
            with pytest.raises(ConcurrencyConflict) as caught:
                await losing
            assert caught.value.actual == 2
            await store.append("L-2", "ledger", 1, [credited(3)], conn=second)  # its transaction goes on
    assert [e.data.get("amount") for e in await store.read_stream("L-1")] == [None, 1]
    assert [e.version for e in await store.read_stream("L-2")] == [1, 2]
    assert (await store.verify_stream("L-1")).valid and (await store.verify_stream("L-2")).valid
    assert await count(pool, "outbox") == 4


async def test_append_joins_the_callers_transaction(store: EventStore, pool: asyncpg.Pool):
    async with pool.acquire() as conn:
        async with conn.transaction():
            await store.append("L-1", "ledger", 0, [opened()], conn=conn)
            with pytest.raises(ConcurrencyConflict):
                await store.append("L-1", "ledger", 0, [opened()], conn=conn)
            # the conflict was refused before anything was written: the caller's transaction goes on
            await store.append("L-1", "ledger", 1, [credited(1)], conn=conn)
            assert await count(pool, "events") == 0  # not visible outside before commit
    assert [e.version for e in await store.read_stream("L-1")] == [1, 2]
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await store.append("L-2", "ledger", 0, [opened()], conn=conn)
                raise RuntimeError("the caller's work failed")
    assert await store.read_stream("L-2") == []
    assert await count(pool, "outbox") == 2


async def test_a_stream_keeps_its_type(store: EventStore):
    await store.append("L-1", "ledger", 0, [opened()])
    with pytest.raises(StreamTypeMismatch):
        await store.append("L-1", "account", 1, [credited(1)])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET data = '{\"amount\": 1000, \"memo\": \"\"}' WHERE version = 2",
        "DELETE FROM events WHERE version = 2",
        "TRUNCATE events",
    ],
)
async def test_the_database_refuses_to_change_history(store: EventStore, pool: asyncpg.Pool, statement: str):
    await store.append("L-1", "ledger", 0, [opened(), credited(5)])
    with pytest.raises(asyncpg.RestrictViolationError, match="events are immutable"):
        await pool.execute(statement)
    assert [dict(e.data) for e in await store.read_stream("L-1")][1] == {"amount": 5, "memo": ""}


async def tamper(pool: asyncpg.Pool, sql: str) -> None:
    """What only a superuser can do: switch the guards off, change a row, switch them on."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_update_delete")
            await conn.execute(sql)
            await conn.execute("ALTER TABLE events ENABLE TRIGGER events_refuse_update_delete")


async def test_guarantee_a_changed_byte_is_detected_and_named(store: EventStore, pool: asyncpg.Pool):
    """Guarantee 4: one character of one stored event changed behind the store's back."""
    await store.append("L-1", "ledger", 0, [opened(), credited(5, "工资"), credited(7, "奖金")])
    assert (await store.verify_stream("L-1")).valid
    await tamper(pool, "UPDATE events SET data = jsonb_set(data, '{memo}', '\"工贷\"') WHERE stream_id = 'L-1' AND version = 2")
    verification = await store.verify_stream("L-1")
    assert not verification.valid and verification.checked == 3
    assert [(f.version, f.reason.split(":")[0]) for f in verification.failures] == [(2, "content hash mismatch")]
    events = await store.read_stream("L-1")
    assert verification.failures[0].event_id == events[1].id


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("UPDATE events SET recorded_at = recorded_at + interval '1 microsecond' WHERE version = 1",
         [(1, "content hash mismatch")]),
        ("UPDATE events SET metadata = '{\"actor\": \"someone else\"}' WHERE version = 3",
         [(3, "content hash mismatch")]),
        # rewriting an event *and* its own hash still breaks the link from the next event
        ("UPDATE events SET hash = repeat('0', 64) WHERE version = 2",
         [(2, "content hash mismatch"), (3, "broken link")]),
        ("DELETE FROM events WHERE version = 2",
         [(3, "version gap"), (3, "broken link")]),
    ],
)
async def test_every_kind_of_alteration_is_named(store: EventStore, pool: asyncpg.Pool, sql: str, named):
    await store.append("L-1", "ledger", 0, [opened(), credited(5), credited(7)])
    await tamper(pool, sql)
    verification = await store.verify_stream("L-1")
    assert not verification.valid
    assert sorted((f.version, f.reason.split(":")[0]) for f in verification.failures) == sorted(named)


async def test_guarantee_schema_violation_stores_nothing_and_names_the_fields(store: EventStore, pool: asyncpg.Pool):
    """Guarantee 5: one bad event in a batch of three: nothing of the batch is stored."""
    bad = NewEvent(CREDITED, {"amount": 0, "memo": "x", "extra": True})
    with pytest.raises(SchemaViolation) as caught:
        await store.append("L-1", "ledger", 0, [opened(), credited(5), bad])
    pointers = {e.pointer for e in caught.value.errors}
    assert "/amount" in pointers  # minimum 1
    assert any("extra" in e.message for e in caught.value.errors)  # additionalProperties
    assert caught.value.event_type == CREDITED
    assert await count(pool, "events") == 0 and await count(pool, "outbox") == 0
    with pytest.raises(SchemaViolation) as missing:
        await store.append("L-1", "ledger", 0, [NewEvent(OPENED, {"opened_on": "not a date"})])
    messages = " ".join(e.message for e in missing.value.errors)
    assert "'owner' is a required property" in messages and "/opened_on" in {e.pointer for e in missing.value.errors}
    assert await count(pool, "events") == 0


async def read_all_settled(store: EventStore, after: int, count: int) -> list:
    """read_all once `count` events are offered. The server is shared: a transaction open in
    any database holds every reader back for a moment (by design), so wait, boundedly."""
    for _ in range(200):
        events = await store.read_all(after)
        if len(events) >= count:
            return events
        await asyncio.sleep(0.05)
    raise AssertionError(f"read_all never offered {count} events (got {len(events)})")


async def test_read_all_is_in_commit_order_and_waits_for_open_transactions(store: EventStore, pool: asyncpg.Pool):
    """Guarantee 3 (store side): A takes the lower position, B commits first; read_all never
    returns B's event in a way that would let A's be skipped afterwards."""
    await store.append("S-0", "ledger", 0, [opened("before")])
    [before] = await read_all_settled(store, 0, 1)
    async with pool.acquire() as a:
        tx_a = a.transaction()
        await tx_a.start()
        [event_a] = await store.append("S-A", "ledger", 0, [opened("A")], conn=a)
        [event_b] = await store.append("S-B", "ledger", 0, [opened("B")])
        assert event_a.position < event_b.position
        # A is still running: B, committed with a later transaction id, is not offered yet
        assert await store.read_all(before.position) == []
        await tx_a.commit()
    after = await read_all_settled(store, before.position, 2)
    assert [e.id for e in after] == [event_a.id, event_b.id]
    assert [e.id for e in await store.read_all(0)] == [before.id, event_a.id, event_b.id]
    # a reader that stopped at A goes on with B
    assert [e.id for e in await store.read_all(event_a.position)] == [event_b.id]
    assert [e.id for e in await store.read_all(0, limit=2)] == [before.id, event_a.id]


async def test_a_rolled_back_append_leaves_no_trace_and_blocks_nothing(store: EventStore, pool: asyncpg.Pool):
    async with pool.acquire() as a:
        tx_a = a.transaction()
        await tx_a.start()
        await store.append("S-A", "ledger", 0, [opened("A")], conn=a)
        [event_b] = await store.append("S-B", "ledger", 0, [opened("B")])
        await tx_a.rollback()
    assert [e.id for e in await read_all_settled(store, 0, 1)] == [event_b.id]
    assert await count(pool, "outbox") == 1


async def test_an_append_in_an_older_transaction_cannot_jump_ahead_of_the_head(store: EventStore, pool):
    """The commit-safe order is by writing transaction: a caller's transaction that wrote first
    (an inbox claim) must not append after a head written by a newer transaction, or version 3
    would be published before version 2. It is refused; the retry in a new transaction works."""
    await pool.execute("CREATE TABLE inbox_like (id text PRIMARY KEY)")
    await store.append("L-1", "ledger", 0, [NewEvent(OPENED, {"owner": "a", "opened_on": "2026-01-05"})])
    async with pool.acquire() as consumer:
        with pytest.raises(ConcurrencyConflict, match="newer than this one"):
            async with consumer.transaction():
                await consumer.execute("INSERT INTO inbox_like VALUES ('evt-1')")  # takes its xid now
                await store.append("L-1", "ledger", 1, [NewEvent(CREDITED, {"amount": 5, "memo": "http"})])
                await store.append("L-1", "ledger", 2, [NewEvent(CREDITED, {"amount": 7, "memo": "late"})],
                                   conn=consumer)
        await store.append("L-1", "ledger", 2, [NewEvent(CREDITED, {"amount": 7, "memo": "retried"})], conn=consumer)
    order = [e.version for e in await read_all_settled(store, 0, 3) if e.stream_id == "L-1"]
    assert order == [1, 2, 3]
    outbox = await pool.fetch(
        "SELECT e.version FROM outbox o JOIN events e ON e.id = o.event_id ORDER BY o.tx, o.position")
    assert [r["version"] for r in outbox] == [1, 2, 3]


async def test_numbers_that_cannot_be_hashed_exactly_are_refused(store: EventStore):
    from civicgrid_common.eventstore import UnhashableEvent

    with pytest.raises(UnhashableEvent, match="2\\*\\*53"):
        await store.append("L-9", "ledger", 0, [NewEvent(OPENED, {"owner": "a", "opened_on": "2026-01-05"},
                                                          metadata={"weight": 1e16})])
    assert await store.read_stream("L-9") == []


async def test_a_refused_append_in_the_callers_transaction_writes_nothing_and_leaves_it_usable(
        store: EventStore, pool: asyncpg.Pool):
    """The append takes no savepoint of its own in a caller's transaction: every refusal comes
    before its first write (the too-large record included), so the caller carries on."""
    from civicgrid_common.eventstore import EventTooLarge

    async with pool.acquire() as conn:
        async with conn.transaction():
            await store.append("L-1", "ledger", 0, [opened()], conn=conn)
            with pytest.raises(EventTooLarge):
                await store.append("L-8", "ledger", 0, [NewEvent(OPENED, {"owner": "a", "opened_on": "2026-01-05",
                                                                          "note": "x" * 1_200_000})], conn=conn)
            await store.append("L-1", "ledger", 1, [credited(1)], conn=conn)
    assert [e.version for e in await store.read_stream("L-1")] == [1, 2]
    assert await store.read_stream("L-8") == []
    assert await count(pool, "events") == 2 and await count(pool, "outbox") == 2


async def test_an_append_on_a_connection_outside_a_transaction_is_its_own_transaction(
        store: EventStore, pool: asyncpg.Pool):
    async with pool.acquire() as conn:
        assert not conn.is_in_transaction()
        [event] = await store.append("L-1", "ledger", 0, [opened()], conn=conn)
        assert not conn.is_in_transaction()
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE event_id = $1", event.id) == 1
    assert [e.id for e in await store.read_stream("L-1")] == [event.id]


async def test_an_event_too_large_for_kafka_is_refused_before_it_can_stall_the_relay(store: EventStore):
    from civicgrid_common.eventstore import EventTooLarge

    with pytest.raises(EventTooLarge, match="limit"):
        await store.append("L-8", "ledger", 0, [NewEvent(OPENED, {"owner": "a", "opened_on": "2026-01-05",
                                                                  "note": "x" * 1_200_000})])
    assert await store.read_stream("L-8") == []
