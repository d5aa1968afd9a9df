"""Guarantee: durable timers survive restarts; none is lost, none fires twice.

Several hundred timers, some due at once and some falling due during the test, are fired by
three worker processes (test_timers_worker_process.py) that are SIGKILLed again and again,
mostly in the middle of a handler's transaction, and restarted. The handler writes an effect
row into a table without a unique constraint. At the end every timer has exactly one effect
row and is marked fired. The counts (kills, handler runs cut short) are printed."""
from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from test_timers_worker_process import KILL_TEST_DDL

from civicgrid_common.db import install_schema
from civicgrid_common.settings import PlatformSettings
from civicgrid_common.timers import TIMERS_DDL, schedule

pytestmark = pytest.mark.integration

WORKER = Path(__file__).with_name("test_timers_worker_process.py")
OWNER = "killtest"
TIMERS = 400
SPREAD = timedelta(seconds=10)  # due times from 1 s ago to 9 s ahead: work keeps arriving while killing
WORKERS = 3
KILLS = 9
FIRED_BETWEEN_KILLS = 15


async def start_worker(settings: PlatformSettings, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), settings.database, OWNER,
            stdout=asyncio.subprocess.PIPE, stderr=out,
        )


async def fired_count(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM civicgrid_timers WHERE owner = $1 AND status = 'fired'", OWNER)


async def wait_for(condition, what: str, log: Path, timeout: float = 120.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")
        await asyncio.sleep(0.01)


async def test_guarantee_timers_fire_exactly_once_while_workers_are_sigkilled_and_restarted(
    pool: asyncpg.Pool, fresh_db: PlatformSettings, tmp_path: Path
):
    await install_schema(pool, [TIMERS_DDL, KILL_TEST_DDL])
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    rng = random.Random(5)
    keys = [f"case/{i:04d}/deadline" for i in range(TIMERS)]
    async with pool.acquire() as conn, conn.transaction():
        for key in keys:
            await schedule(conn, owner=OWNER, key=key, kind="deadline",
                           due_at=start + SPREAD * rng.random(), payload={"key": key})
    log = tmp_path / "workers.log"

    workers = [await start_worker(fresh_db, log) for _ in range(WORKERS)]
    kills = 0
    try:
        last = 0
        while kills < KILLS:
            await wait_for(lambda: _at_least(pool, last + FIRED_BETWEEN_KILLS), "workers to fire timers", log)
            await asyncio.sleep(rng.uniform(0, 0.02))  # a random instant, most likely inside a handler
            victim = rng.randrange(WORKERS)
            workers[victim].send_signal(signal.SIGKILL)
            assert await workers[victim].wait() == -signal.SIGKILL
            kills += 1
            workers[victim] = await start_worker(fresh_db, log)
            last = await fired_count(pool)
            assert last < TIMERS, "every timer fired before the kills were done: spread the due times wider"
        await wait_for(lambda: _at_least(pool, TIMERS), "every timer to fire", log)
    finally:
        for proc in workers:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        outputs = [await asyncio.wait_for(proc.communicate(), 60) for proc in workers]
    assert [proc.returncode for proc in workers] == [0] * WORKERS, log.read_text()[-3000:]

    effects = Counter(r["key"] for r in await pool.fetch("SELECT key FROM timer_effects"))
    repeated = {k: n for k, n in effects.items() if n > 1}
    assert not repeated, f"timers fired twice: {repeated}"
    assert set(effects) == set(keys), f"timers lost: {sorted(set(keys) - set(effects))[:10]}"
    statuses = await pool.fetch("SELECT status, count(*) FROM civicgrid_timers GROUP BY status")
    assert {r["status"]: r["count"] for r in statuses} == {"fired": TIMERS}

    starts = await pool.fetchval("SELECT count(*) FROM timer_handler_starts")
    cut_short = starts - TIMERS  # handler runs whose transaction a SIGKILL rolled back
    firers = await pool.fetchval("SELECT count(DISTINCT fired_by) FROM civicgrid_timers")
    assert cut_short >= 1, "no kill landed inside a handler: the test did not test what it claims"
    survivors = sum(json.loads(out.decode().strip().splitlines()[-1])["fired"] for out, _ in outputs)
    print(f"\n{TIMERS} timers, {WORKERS} workers SIGKILLed {kills} times: {starts} handler runs, {cut_short} cut "
          f"short by a kill and redone, {sum(effects.values())} effects, 0 repeated, 0 lost; fired by {firers} "
          f"worker processes ({survivors} by the last three)")


async def _at_least(pool: asyncpg.Pool, count: int) -> bool:
    return await fired_count(pool) >= count
