"""Upcasting of old stored shapes on read, and the Repository's snapshots (a cache, never the
truth), on the real PostgreSQL."""
from __future__ import annotations

import asyncio
from typing import Any, Mapping

import asyncpg
import pytest

from civicgrid_common.events import NewEvent
from civicgrid_common.aggregate import Aggregate
from civicgrid_common.eventstore import (
    AggregateNotFound,
    ConcurrencyConflict,
    EventStore,
    Repository,
    Upcasters,
    canonical_content,
    chain_hash,
)
from civicgrid_common.settings import PlatformSettings

import ledger_kit
from ledger_kit import CREDITED, OPENED, Ledger

pytestmark = pytest.mark.integration



def make_store(pool: asyncpg.Pool, settings: PlatformSettings, upcasters: Upcasters | None = None, **kw) -> EventStore:
    return ledger_kit.make_store(pool, settings, "test.ledger.snapshots", upcasters=upcasters, **kw)


# ---------------------------------------------------------------- upcasting


def note_upcasters() -> Upcasters:
    """Revision 2 of `opened` always carries a note (revision 1 had none)."""
    upcasters = Upcasters()

    @upcasters.register(OPENED, from_revision=1)
    def add_note(data: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**data, "note": data.get("note", "(opened before notes were kept)")}

    return upcasters


def test_upcasters_chain_and_refuse_unknown_future_revisions():
    upcasters = note_upcasters()

    @upcasters.register(OPENED, from_revision=2)
    def upper_owner(data: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**data, "owner": data["owner"].upper()}

    assert upcasters.current_revision(OPENED) == 3 and upcasters.current_revision(CREDITED) == 1
    result = upcasters.upcast(OPENED, 1, {"owner": "li", "opened_on": "2026-01-05"})
    assert result.revision == 3 and result.data == {
        "owner": "LI", "opened_on": "2026-01-05", "note": "(opened before notes were kept)"
    }
    assert upcasters.upcast(OPENED, 3, {"owner": "x"}).data == {"owner": "x"}
    with pytest.raises(ValueError, match="revision 4"):
        upcasters.upcast(OPENED, 4, {})
    with pytest.raises(ValueError, match="already registered"):
        upcasters.register(OPENED, from_revision=1)(lambda d: d)


async def test_an_old_shaped_event_is_read_in_the_current_shape(pool: asyncpg.Pool, fresh_db: PlatformSettings):
    old = make_store(pool, fresh_db)  # the release before notes: writes revision 1
    await old.install()
    [v1] = await old.append("L-1", "ledger", 0, [NewEvent(OPENED, {"owner": "王芳", "opened_on": "2026-01-05"})])

    current = make_store(pool, fresh_db, note_upcasters())
    [read] = await current.read_stream("L-1")
    assert read.data == {"owner": "王芳", "opened_on": "2026-01-05", "note": "(opened before notes were kept)"}
    for _ in range(200):  # the server is shared: an open transaction anywhere holds read_all back
        if via_all := await current.read_all(0):
            break
        await asyncio.sleep(0.05)
    [via_all] = via_all
    assert via_all.data == read.data

    # new events are written in the current revision and are not upcast again
    [v2] = await current.append("L-2", "ledger", 0, [NewEvent(OPENED, {"owner": "李", "opened_on": "2026-02-01", "note": "own"})])
    [read2] = await current.read_stream("L-2")
    assert read2.data["note"] == "own"
    revisions = await pool.fetch("SELECT stream_id, schema_revision, data FROM events ORDER BY position")
    assert [(r["stream_id"], r["schema_revision"]) for r in revisions] == [("L-1", 1), ("L-2", 2)]
    assert "note" not in revisions[0]["data"]  # the stored row is untouched
    # the hash chain covers what is stored, so upcasting never breaks verification
    assert (await current.verify_stream("L-1")).valid and (await current.verify_stream("L-2")).valid
    # as recorded, for an auditor: the data in its own revision, and each hash recomputed from
    # the answer alone with the documented recipe
    [recorded] = await current.read_stream_as_recorded("L-1")
    assert recorded.schema_revision == 1 and recorded.data == {"owner": "王芳", "opened_on": "2026-01-05"}
    assert recorded.hash == v1.hash and chain_hash(canonical_content(
        id=recorded.id, stream_id=recorded.stream_id, stream_type=recorded.stream_type, version=recorded.version,
        schema_revision=recorded.schema_revision, type=recorded.type, data=recorded.data,
        metadata=recorded.metadata, recorded_at=recorded.recorded_at), recorded.prev_hash) == recorded.hash
    # an older release refuses to misread an event written by a newer one
    with pytest.raises(ValueError, match="revision 2"):
        await old.read_stream("L-2")


# ---------------------------------------------------------------- snapshots




@pytest.fixture
async def store(pool: asyncpg.Pool, fresh_db: PlatformSettings) -> EventStore:
    s = make_store(pool, fresh_db, snapshot_every=5)
    await s.install()
    return s


async def test_repository_saves_with_expected_version_and_snapshots_every_n(store: EventStore, pool: asyncpg.Pool):
    repo = Repository(store, Ledger)  # snapshot_every from the store: 5
    ledger = Ledger.opened("L-1", "王芳")
    ledger.credit(1)
    ledger.credit(2)
    await repo.save(ledger)  # versions 1..3: no snapshot yet
    assert await pool.fetchval("SELECT count(*) FROM snapshots") == 0
    for amount in (3, 4, 5):
        ledger.credit(amount)
    await repo.save(ledger)  # 4..6 crosses 5: snapshot at 6
    assert ledger.pending_events == ()
    snap = await store.load_snapshot("L-1")
    assert (snap.version, dict(snap.state)) == (6, {"owner": "王芳", "balance": 15})

    loaded = await repo.load("L-1")
    assert (loaded.owner, loaded.balance, loaded.version) == ("王芳", 15, 6)
    loaded.credit(10)
    await repo.save(loaded)
    again = await repo.load("L-1")
    full = Ledger.replay("L-1", await store.read_stream("L-1"))
    assert (again.balance, again.version) == (full.balance, full.version) == (25, 7)


async def test_load_uses_the_snapshot_and_ignores_a_wrong_one(store: EventStore, pool: asyncpg.Pool, fresh_db):
    repo = Repository(store, Ledger)
    ledger = Ledger.opened("L-1", "a")
    for amount in range(1, 7):
        ledger.credit(amount)
    await repo.save(ledger)  # versions 1..7, snapshot at 7, balance 21
    # The snapshot is what load starts from (proved by a marked state)...
    await pool.execute("UPDATE snapshots SET state = jsonb_set(state, '{balance}', '1000')")
    assert (await repo.load("L-1")).balance == 1000
    # ...but one claiming a version above the stream's is ignored: full replay
    await pool.execute("UPDATE snapshots SET version = 8")
    loaded = await repo.load("L-1")
    assert (loaded.balance, loaded.version) == (21, 7)
    # so is one of another snapshot revision (the state's shape changed)
    await pool.execute("UPDATE snapshots SET version = 7, revision = 0")
    assert (await repo.load("L-1")).balance == 21
    # and a repository without snapshots never reads the table
    await pool.execute("UPDATE snapshots SET revision = 1")
    assert (await repo.load("L-1")).balance == 1000
    assert (await Repository(make_store(pool, fresh_db), Ledger).load("L-1")).balance == 21


async def test_repository_conflict_and_not_found(store: EventStore):
    repo = Repository(store, Ledger)
    await repo.save(Ledger.opened("L-1", "a"))
    first, second = await repo.load("L-1"), await repo.load("L-1")
    first.credit(1)
    second.credit(2)
    await repo.save(first)
    with pytest.raises(ConcurrencyConflict):
        await repo.save(second)
    assert [e.data.get("amount") for e in await store.read_stream("L-1")] == [None, 1]
    with pytest.raises(AggregateNotFound):
        await repo.load("nobody")


async def test_snapshots_need_an_aggregate_that_supports_them(store: EventStore):
    class Plain(Aggregate):
        stream_type = "plain"

    with pytest.raises(TypeError, match="snapshot"):
        Repository(store, Plain, snapshot_every=3)
    with pytest.raises(ValueError, match="positive"):
        Repository(store, Ledger, snapshot_every=0)
