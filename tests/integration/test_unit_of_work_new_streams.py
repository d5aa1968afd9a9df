"""A unit of work that found a stream empty appends to it without reading its head again, and
loses a race for it all the same: on the real PostgreSQL."""
from __future__ import annotations

import asyncpg
import pytest

from civicgrid_common.events import NewEvent
from civicgrid_common.eventstore import ConcurrencyConflict, EventStore
from civicgrid_common.settings import PlatformSettings
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from ledger_kit import OPENED, Ledger, make_store

pytestmark = pytest.mark.integration

HEAD_READ = "ORDER BY version DESC LIMIT 1"


@pytest.fixture
async def store(pool: asyncpg.Pool, fresh_db: PlatformSettings) -> EventStore:
    s = make_store(pool, fresh_db, "test.ledger.uow")
    await s.install()
    return s


def queries_of(uow: UnitOfWork) -> list[str]:
    seen: list[str] = []
    uow.conn.add_query_logger(lambda record: seen.append(record.query))
    return seen


async def test_a_new_stream_found_empty_is_appended_without_reading_its_head_again(store: EventStore, pool):
    async with UnitOfWork(store) as uow:
        seen = queries_of(uow)
        assert await uow.find(Ledger, "L-new") is None
        uow.add(Ledger.opened("L-new", "王芳"))
    assert seen and not [q for q in seen if HEAD_READ in q]
    rows = await pool.fetch("SELECT version, prev_hash FROM events WHERE stream_id = 'L-new'")
    assert [(r["version"], r["prev_hash"]) for r in rows] == [(1, None)]
    verification = await store.verify_stream("L-new")
    assert (verification.valid, verification.checked) == (True, 1)

    # An aggregate added without looking first still has its head read.
    async with UnitOfWork(store) as uow:
        seen = queries_of(uow)
        uow.add(Ledger.opened("L-unlooked", "李雷"))
    assert [q for q in seen if HEAD_READ in q]


async def test_a_writer_that_gets_there_between_find_and_commit_wins_and_the_command_is_retried(store, pool):
    transactions = Transactions(store)
    attempts: list[str] = []

    async def open_once(uow: UnitOfWork) -> str:
        ledger = await uow.find(Ledger, "L-race")
        if ledger is not None:
            attempts.append("found")
            return ledger.owner
        attempts.append("new")
        if len(attempts) == 1:  # another writer opens it after this unit found it empty
            await store.append("L-race", Ledger.stream_type, 0, [NewEvent(OPENED, {"owner": "赵六",
                                                                                 "opened_on": "2026-01-05"})])
        uow.add(Ledger.opened("L-race", "王芳"))
        return "王芳"

    assert await transactions(open_once) == "赵六"
    assert attempts == ["new", "found"] and transactions.retried == 1
    assert await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = 'L-race'") == 1

    with pytest.raises(ConcurrencyConflict):  # and the conflict itself, unretried
        async with UnitOfWork(store) as uow:
            assert await uow.find(Ledger, "L-race2") is None
            await store.append("L-race2", Ledger.stream_type, 0, [NewEvent(OPENED, {"owner": "赵六",
                                                                                  "opened_on": "2026-01-05"})])
            uow.add(Ledger.opened("L-race2", "王芳"))


async def test_a_stream_of_another_type_is_not_taken_for_an_empty_one(store: EventStore):
    await store.append("X-1", "complaint", 0, [NewEvent(OPENED, {"owner": "a", "opened_on": "2026-01-05"})])
    with pytest.raises(ConcurrencyConflict, match="at version 1"):
        async with UnitOfWork(store) as uow:
            seen = queries_of(uow)
            assert await uow.find(Ledger, "X-1") is None  # another aggregate's stream: not found as a Ledger
            uow.add(Ledger.opened("X-1", "b"))
    assert [q for q in seen if HEAD_READ in q]  # not empty: its head was read


async def test_found_empty_is_only_for_a_new_stream_in_a_transaction(store: EventStore, pool):
    event = NewEvent(OPENED, {"owner": "a", "opened_on": "2026-01-05"})
    with pytest.raises(ValueError, match="found_empty"):
        await store.append("L-x", Ledger.stream_type, 1, [event], found_empty=True)
    with pytest.raises(ValueError, match="found_empty"):
        await store.append("L-x", Ledger.stream_type, 0, [event], found_empty=True)  # no conn: no read to rely on
    assert await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = 'L-x'") == 0
