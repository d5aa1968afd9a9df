"""Durable timers on the real PostgreSQL of the local stack: scheduling in the caller's
transaction, firing on time and in order, retries, parking, replicas and waking."""
from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from prometheus_client import REGISTRY

from civicgrid_common.timers import Timer, TimerWorker, cancel, install_timers, lookup, retry, schedule

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
EFFECTS_DDL = "CREATE TABLE effects (key text NOT NULL, payload jsonb)"  # no unique: repeats show


class FakeClock:
    """A clock the test moves by setting .now."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    await install_timers(pool)
    await pool.execute(EFFECTS_DDL)
    return pool


async def record_effect(conn: asyncpg.Connection, timer: Timer) -> None:
    await conn.execute("INSERT INTO effects (key, payload) VALUES ($1, $2)", timer.key, timer.payload)


async def effects(pool: asyncpg.Pool) -> list[str]:
    return [r["key"] for r in await pool.fetch("SELECT key FROM effects ORDER BY key")]


async def arm(pool: asyncpg.Pool, key: str, due_at: datetime, *, owner: str = "t", kind: str = "overdue",
              payload: dict | None = None) -> bool:
    async with pool.acquire() as conn, conn.transaction():
        return await schedule(conn, owner=owner, key=key, due_at=due_at, kind=kind, payload=payload)


def worker(pool: asyncpg.Pool, clock: FakeClock, handler=record_effect, **options) -> TimerWorker:
    options.setdefault("owner", "t")
    return TimerWorker(pool, handler=handler, clock=clock, **options)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Rollback(Exception):
    pass


async def test_install_is_idempotent_on_a_pool_and_on_a_connection(pool):
    await install_timers(pool)
    await install_timers(pool)
    async with pool.acquire() as conn:
        await install_timers(conn)
    assert await pool.fetchval("SELECT count(*) FROM civicgrid_timers") == 0


async def test_schedule_reschedule_and_cancel_in_a_rolled_back_transaction_leave_nothing(db):
    await arm(db, "kept", T0 + timedelta(hours=1), payload={"v": 1})
    await arm(db, "to-cancel", T0 + timedelta(hours=1))
    with pytest.raises(Rollback):
        async with db.acquire() as conn, conn.transaction():
            assert await schedule(conn, owner="t", key="new", due_at=T0, kind="warning")
            assert await schedule(conn, owner="t", key="kept", due_at=T0 + timedelta(days=3), kind="warning",
                                  payload={"v": 2})
            assert await cancel(conn, owner="t", key="to-cancel")
            raise Rollback
    async with db.acquire() as conn:
        assert await lookup(conn, owner="t", key="new") is None
        kept = await lookup(conn, owner="t", key="kept")
        assert (kept.due_at, kept.kind, kept.payload) == (T0 + timedelta(hours=1), "overdue", {"v": 1})
        assert (await lookup(conn, owner="t", key="to-cancel")).status == "pending"
    # and the worker finds nothing of the rolled-back schedule
    clock = FakeClock(T0 + timedelta(minutes=1))
    assert await worker(db, clock).fire_due() == 0


async def test_a_timer_does_not_fire_before_it_is_due_and_fires_once_when_it_is(db):
    clock = FakeClock()
    await arm(db, "k", T0 + timedelta(hours=1), payload={"approval": "a-1"})
    w = worker(db, clock, name="w-1")
    assert await w.fire_due() == 0
    clock.now += timedelta(minutes=59, seconds=59)
    assert await w.fire_due() == 0
    assert await effects(db) == []
    clock.now += timedelta(seconds=1)
    assert await w.fire_due() == 1
    assert await w.fire_due() == 0
    clock.now += timedelta(days=30)
    assert await w.fire_due() == 0
    assert await effects(db) == ["k"]
    assert await db.fetchval("SELECT payload FROM effects") == {"approval": "a-1"}
    async with db.acquire() as conn:
        record = await lookup(conn, owner="t", key="k")
    assert (record.status, record.fired_at, record.fired_by, record.attempts) == (
        "fired", T0 + timedelta(hours=1), "w-1", 0)


async def test_due_timers_fire_in_due_order(db):
    dues = [T0 - timedelta(minutes=m) for m in range(30)]
    shuffled = dues[:]
    random.Random(3).shuffle(shuffled)
    for due in shuffled:
        await arm(db, f"k-{due:%H%M}", due)
    fired: list[datetime] = []

    async def note(conn, timer: Timer) -> None:
        fired.append(timer.due_at)

    assert await worker(db, FakeClock(), note, batch_size=7).fire_due() == 30
    assert fired == sorted(dues)


async def test_rescheduling_replaces_due_time_kind_and_payload(db):
    clock = FakeClock()
    await arm(db, "k", T0 + timedelta(hours=1), kind="warning", payload={"v": 1})
    assert await arm(db, "k", T0 + timedelta(hours=2), kind="overdue", payload={"v": 2})
    got: list[Timer] = []

    async def note(conn, timer: Timer) -> None:
        got.append(timer)

    w = worker(db, clock, note)
    clock.now += timedelta(hours=1)
    assert await w.fire_due() == 0
    clock.now += timedelta(hours=1)
    assert await w.fire_due() == 1
    assert [(t.key, t.kind, t.payload, t.due_at) for t in got] == [("k", "overdue", {"v": 2}, T0 + timedelta(hours=2))]


async def test_a_fired_key_is_final_schedule_is_refused_and_cancel_finds_nothing(db):
    clock = FakeClock()
    await arm(db, "k", T0)
    assert await worker(db, clock).fire_due() == 1
    assert await arm(db, "k", T0 + timedelta(days=1), payload={"again": True}) is False
    async with db.acquire() as conn:
        assert await cancel(conn, owner="t", key="k") is False
        record = await lookup(conn, owner="t", key="k")
    assert (record.status, record.due_at, record.payload) == ("fired", T0, {})
    clock.now += timedelta(days=2)
    assert await worker(db, clock).fire_due() == 0
    assert await effects(db) == ["k"]


async def test_cancel_removes_a_pending_timer_which_then_never_fires(db):
    await arm(db, "k", T0)
    async with db.acquire() as conn:
        assert await cancel(conn, owner="t", key="k") is True
        assert await cancel(conn, owner="t", key="k") is False
        assert await cancel(conn, owner="t", key="never-scheduled") is False
    assert await worker(db, FakeClock(T0 + timedelta(days=1))).fire_due() == 0
    assert await effects(db) == []


async def test_inside_its_handler_a_timer_already_counts_as_fired(db):
    await arm(db, "warning", T0)
    seen: dict[str, bool] = {}

    async def handler(conn, timer: Timer) -> None:
        # what a domain handler does: re-derive its timers after deciding
        seen["reschedule own key"] = await schedule(conn, owner="t", key="warning", due_at=T0 + timedelta(hours=1),
                                                    kind="warning")
        seen["cancel own key"] = await cancel(conn, owner="t", key="warning")
        seen["schedule next"] = await schedule(conn, owner="t", key="overdue", due_at=T0 + timedelta(hours=2),
                                               kind="overdue")

    clock = FakeClock()
    assert await worker(db, clock, handler).fire_due() == 1
    assert seen == {"reschedule own key": False, "cancel own key": False, "schedule next": True}
    async with db.acquire() as conn:
        assert (await lookup(conn, owner="t", key="warning")).status == "fired"
        assert (await lookup(conn, owner="t", key="overdue")).status == "pending"


async def test_a_failing_handler_is_rolled_back_retried_with_backoff_then_parked_while_others_fire(db):
    clock = FakeClock()
    await arm(db, "bad", T0 - timedelta(minutes=5))
    for i in range(3):
        await arm(db, f"good-{i}", T0 - timedelta(minutes=1))
    broken = True

    async def handler(conn, timer: Timer) -> None:
        await record_effect(conn, timer)  # written, then undone by the failure
        if timer.key == "bad" and broken:
            raise RuntimeError(f"department system unreachable (attempt {timer.attempts + 1})")

    w = worker(db, clock, handler, owner="t", max_attempts=3, backoff=(10.0, 15.0))
    retries = sample("civicgrid_timers_failures_total", owner="t", kind="overdue", outcome="retry")
    parks = sample("civicgrid_timers_failures_total", owner="t", kind="overdue", outcome="parked")

    assert await w.fire_due() == 3  # the failing one, due first, blocks nobody
    assert await effects(db) == ["good-0", "good-1", "good-2"]

    async def state():
        async with db.acquire() as conn:
            return await lookup(conn, owner="t", key="bad")

    first = await state()
    assert (first.status, first.attempts) == ("pending", 1)
    assert "department system unreachable (attempt 1)" in first.last_error
    assert clock.now + timedelta(seconds=5) <= first.next_attempt_at <= clock.now + timedelta(seconds=10)
    assert await w.fire_due() == 0  # not before its backoff
    # a caller re-deriving its timers schedules it again as it stands: backoff and count stay
    assert await arm(db, "bad", T0 - timedelta(minutes=5))
    assert (await state()).attempts == 1 and (await state()).next_attempt_at == first.next_attempt_at
    assert await w.fire_due() == 0
    clock.now = first.next_attempt_at
    assert await w.fire_due() == 0
    second = await state()
    assert (second.status, second.attempts) == ("pending", 2)
    # the second retry waits longer: ceiling min(15, 10 * 2) = 15, at least half of it
    assert clock.now + timedelta(seconds=7.5) <= second.next_attempt_at <= clock.now + timedelta(seconds=15)
    clock.now = second.next_attempt_at
    assert await w.fire_due() == 0
    parked = await state()
    assert (parked.status, parked.attempts) == ("failed", 3)
    assert "attempt 3" in parked.last_error
    assert sample("civicgrid_timers_failures_total", owner="t", kind="overdue", outcome="retry") == retries + 2
    assert sample("civicgrid_timers_failures_total", owner="t", kind="overdue", outcome="parked") == parks + 1
    assert sample("civicgrid_timers_parked", owner="t") == 1

    clock.now += timedelta(days=10)
    assert await w.fire_due() == 0  # parked: never retried on its own
    assert await effects(db) == ["good-0", "good-1", "good-2"]

    assert await arm(db, "bad", T0 - timedelta(minutes=5))  # unchanged: stays parked
    assert (await state()).status == "failed"
    assert await w.fire_due() == 0

    # an operator fixes the cause and re-arms it: tried at once, attempts counted afresh
    broken = False
    async with db.acquire() as conn:
        assert await retry(conn, owner="t", key="bad") is True
        assert await retry(conn, owner="t", key="bad") is False  # pending now, not parked
        assert await retry(conn, owner="t", key="good-0") is False  # fired
    assert (await state()).attempts == 0
    assert await w.fire_due() == 1
    assert await effects(db) == ["bad", "good-0", "good-1", "good-2"]
    assert sample("civicgrid_timers_parked", owner="t") == 0


async def test_a_handler_that_swallows_a_database_error_does_not_count_as_fired(db):
    async def sloppy(conn, timer: Timer) -> None:
        await record_effect(conn, timer)
        try:
            await conn.execute("SELECT 1 / 0")
        except asyncpg.DivisionByZeroError:
            pass  # the transaction is aborted now; committing it would silently roll back

    await arm(db, "k", T0)
    assert await worker(db, FakeClock(), sloppy).fire_due() == 0
    async with db.acquire() as conn:
        record = await lookup(conn, owner="t", key="k")
    assert (record.status, record.attempts) == ("pending", 1)
    assert "InFailedSQLTransaction" in record.last_error
    assert await effects(db) == []


async def test_a_worker_fires_only_its_owners_timers(db):
    await arm(db, "same-key", T0, owner="approval")
    await arm(db, "same-key", T0, owner="grid")
    assert await worker(db, FakeClock(), owner="approval").fire_due() == 1
    async with db.acquire() as conn:
        assert (await lookup(conn, owner="grid", key="same-key")).status == "pending"


async def test_a_timer_being_rescheduled_by_an_open_transaction_is_skipped_and_obeys_its_outcome(db):
    clock = FakeClock()
    await arm(db, "k", T0)
    w = worker(db, clock)
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        assert await schedule(conn, owner="t", key="k", due_at=T0 + timedelta(hours=1), kind="overdue")
        assert await w.fire_due() == 0  # locked by the open transaction: skipped, not waited for
        await tx.commit()
    assert await w.fire_due() == 0  # the committed reschedule moved it an hour on
    clock.now += timedelta(hours=1)
    assert await w.fire_due() == 1

    await arm(db, "k2", T0)
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        assert await cancel(conn, owner="t", key="k2")
        assert await w.fire_due() == 0
        await tx.rollback()  # the cancel never happened: the timer is still due
    assert await w.fire_due() == 1
    assert await effects(db) == ["k", "k2"]


async def test_two_workers_fire_each_timer_exactly_once(db):
    for i in range(120):
        await arm(db, f"k-{i:03d}", T0 - timedelta(seconds=i))

    async def slow_effect(conn, timer: Timer) -> None:
        await record_effect(conn, timer)
        await asyncio.sleep(0.001)

    workers = [worker(db, FakeClock(), slow_effect, name=f"w-{n}") for n in range(3)]
    counts = await asyncio.gather(*(w.fire_due() for w in workers))
    assert sum(counts) == 120
    assert await effects(db) == [f"k-{i:03d}" for i in range(120)]
    assert await db.fetchval("SELECT count(*) FROM civicgrid_timers WHERE status = 'fired'") == 120


async def test_metrics_count_due_fired_and_how_late(db):
    clock = FakeClock()
    for i in range(4):
        await arm(db, f"k-{i}", T0 - timedelta(minutes=10 * i))
    await arm(db, "later", T0 + timedelta(hours=1))
    w = worker(db, clock, owner="t")
    await w.refresh_metrics()
    assert sample("civicgrid_timers_due", owner="t") == 4
    assert sample("civicgrid_timers_oldest_due_age_seconds", owner="t") == 30 * 60
    fired_before = sample("civicgrid_timers_fired_total", owner="t", kind="overdue")
    assert await w.fire_due() == 4
    assert sample("civicgrid_timers_fired_total", owner="t", kind="overdue") == fired_before + 4
    assert sample("civicgrid_timers_due", owner="t") == 0
    assert sample("civicgrid_timers_oldest_due_age_seconds", owner="t") == 0


async def test_schedule_refuses_bad_arguments(db):
    async with db.acquire() as conn:
        with pytest.raises(ValueError, match="timezone-aware"):
            await schedule(conn, owner="t", key="k", due_at=datetime(2026, 3, 2, 9), kind="overdue")
        with pytest.raises(ValueError, match="key"):
            await schedule(conn, owner="t", key="", due_at=T0, kind="overdue")
        with pytest.raises(TypeError, match="mapping"):
            await schedule(conn, owner="t", key="k", due_at=T0, kind="overdue", payload=[1, 2])  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await schedule(conn, owner="t", key="k", due_at=T0, kind="overdue", payload={"at": T0})
        assert await lookup(conn, owner="t", key="k") is None


async def until(condition, what: str, timeout: float = 30.0) -> None:
    """Wait for a condition (a failure, not a slow pass, is what the timeout catches)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_running_worker_is_woken_by_a_schedule_sooner_than_its_next_poll(db):
    w = TimerWorker(db, owner="t", handler=record_effect, poll_interval=3600)  # polls once an hour
    task = asyncio.create_task(w.run())
    try:
        await until(lambda: _true(w.passes >= 1), "the first pass")
        await arm(db, "k", datetime.now(timezone.utc))  # its NOTIFY arrives on commit
        await until(lambda: _has(db, ["k"]), "the notified timer to fire")
    finally:
        await w.stop()
        await task
    assert task.done() and task.exception() is None


async def test_a_running_worker_without_notifications_sleeps_until_the_next_timer_is_due(db):
    await arm(db, "k", datetime.now(timezone.utc) + timedelta(seconds=0.5))
    w = TimerWorker(db, owner="t", handler=record_effect, poll_interval=3600, listen=False)
    task = asyncio.create_task(w.run())
    try:
        await until(lambda: _has(db, ["k"]), "the timer to fire when due")
    finally:
        await w.stop()
        await task


async def _true(value: bool) -> bool:
    return value


async def _has(pool: asyncpg.Pool, keys: list[str]) -> bool:
    return await effects(pool) == keys


async def test_a_worker_whose_listening_connection_is_killed_listens_again(db):
    w = TimerWorker(db, owner="t", handler=record_effect, poll_interval=3600)
    task = asyncio.create_task(w.run())
    try:
        await until(lambda: _true(w.passes >= 1), "the first pass")
        listener_pid = w._listener.get_server_pid()
        await db.execute("SELECT pg_terminate_backend($1)", listener_pid)
        await until(lambda: _true(w.passes >= 2 and w._listener is not None
                                  and w._listener.get_server_pid() != listener_pid), "a new listening connection")
        await arm(db, "k", datetime.now(timezone.utc))
        await until(lambda: _has(db, ["k"]), "the notified timer to fire")
    finally:
        await w.stop()
        await task


async def test_a_worker_on_a_one_connection_pool_polls_instead_of_listening(fresh_db):
    from civicgrid_common.db import create_pool

    small = await create_pool(fresh_db.model_copy(update={"pg_pool_min": 1, "pg_pool_max": 1}))
    try:
        await install_timers(small)
        await small.execute(EFFECTS_DDL)
        w = TimerWorker(small, owner="t", handler=record_effect, poll_interval=0.05)
        task = asyncio.create_task(w.run())
        try:
            await until(lambda: _true(w.passes >= 1), "the first pass")
            await arm(small, "k", datetime.now(timezone.utc))
            await until(lambda: _has(small, ["k"]), "the timer to fire")
        finally:
            await w.stop()
            await task
        assert w.listen is False
    finally:
        await small.close()


async def test_fire_due_still_works_on_a_worker_that_was_stopped_without_running(db):
    w = worker(db, FakeClock())
    await w.stop()
    await arm(db, "k", T0)
    assert await w.fire_due() == 1
