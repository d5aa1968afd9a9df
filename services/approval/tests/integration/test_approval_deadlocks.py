"""A reviewer's command and a firing deadline timer lock in opposite orders; PostgreSQL aborts
one of them with a deadlock. The API side tries the command again (it re-reads and decides
anew) and, if it loses every time, answers 503 problem+json with Retry-After: never a 500.

The deadlock here is real: on one connection the timer's side locks the timer row as the
TimerWorker does and, once the API's transaction waits on that row, appends to the same
approval, which waits on the API's uncommitted append. The timer's side sets a long
deadlock_timeout, so PostgreSQL's detector runs in the API's backend and aborts the API's
transaction, the side that must cope with it."""
from __future__ import annotations

import asyncio

import asyncpg

from civicgrid_common.unit_of_work import RetryPolicy

from civicgrid_approval.adapters.deadlines import OWNER, deadline_keys

from approval_flows import act, route_case

ENOUGH_POLLS = 600  # 30 s of 50 ms looks: readiness of the other transaction, not a speed check


async def wait_until_blocked(pool: asyncpg.Pool, *, besides: int) -> None:
    """Until another backend of this database waits on a lock held by `besides`."""
    for _ in range(ENOUGH_POLLS):
        blocked = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> $1 "
            "AND $1 = ANY(pg_blocking_pids(pid))", besides)
        if blocked:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the API's transaction never waited on the timer row")


async def deadlock_with_a_firing_timer(app, api, pool, who, aid: str):
    """The API approves while the warning timer of the same task fires; the API's response."""
    a = await app.state.approvals.load(aid)
    key = deadline_keys(aid, a.task.key, a.due_date)["warning"]
    async with pool.acquire() as timer_side:
        tx = timer_side.transaction()
        await tx.start()
        try:
            await timer_side.execute("SET LOCAL deadlock_timeout = '60s'")
            locked = await timer_side.fetchval(
                "SELECT key FROM civicgrid_timers WHERE owner = $1 AND key = $2 FOR UPDATE", OWNER, key)
            assert locked == key
            request = asyncio.create_task(act(api, who, aid, comment="同意，转街道"))
            await wait_until_blocked(pool, besides=timer_side.get_server_pid())
            # The timer's handler, as the worker runs it, in the transaction holding the timer row.
            service = app.state.approvals
            assert await service.transactions.within(timer_side, service.deadline_reached(aid, a.task.key, "warning"))
        except BaseException:
            await tx.rollback()
            raise
        await tx.commit()
        return await request


async def acted_types(pool, aid: str) -> list[str]:
    rows = await pool.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY version", aid)
    return [r["type"].split(".")[-2] for r in rows]


async def test_a_command_that_deadlocks_with_a_firing_timer_is_tried_again(approval_app, api, pool, people):
    aid = await route_case(approval_app)
    service = approval_app.state.approvals
    r = await deadlock_with_a_firing_timer(approval_app, api, pool, people["community"], aid)
    assert r.status_code == 200, r.text
    assert service.transactions.retried >= 1
    # The timer's warning won the first round; the approval decided again on top of it.
    assert (await acted_types(pool, aid))[-2:] == ["deadline_warned", "acted"]
    body = r.json()
    assert body["task"]["step"] == "street_review" and not body["task"]["warned"]
    assert (await api.get(f"/v1/approvals/{aid}/verify", headers=people["auditor"])).json()["valid"] is True


async def test_a_command_that_loses_every_try_is_503_with_retry_after_and_changes_nothing(
        approval_app, api, pool, people):
    aid = await route_case(approval_app)
    service = approval_app.state.approvals
    service.transactions.policy = RetryPolicy(attempts=1)
    before = await acted_types(pool, aid)
    r = await deadlock_with_a_firing_timer(approval_app, api, pool, people["community"], aid)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "1"
    assert r.json()["attempts"] == 1
    # Only the timer's warning was recorded: the approval still waits at the community.
    assert await acted_types(pool, aid) == before + ["deadline_warned"]
    a = await service.load(aid)
    assert a.step.id == "community_review" and a.warned
    # Sent again, the same request goes through.
    r = await act(api, people["community"], aid, comment="同意，转街道")
    assert r.status_code == 200, r.text
