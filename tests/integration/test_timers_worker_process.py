"""A timer worker process for the kill test (not a test module; run as a script).

    python test_timers_worker_process.py DATABASE OWNER [--max-sleep SECONDS]

Fires OWNER's timers with a handler that writes one effect row per firing in the firing
transaction, after noting on a separate autocommit connection that it started (so the test can
count handler runs that a SIGKILL cut short), then dawdles a little so that kills land inside
open transactions. Stops on SIGTERM and prints how many timers it fired as JSON.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal

import asyncpg
from prometheus_client import REGISTRY

from civicgrid_common.db import create_pool
from civicgrid_common.settings import PlatformSettings
from civicgrid_common.timers import Timer, TimerWorker

KILL_TEST_DDL = """
CREATE TABLE IF NOT EXISTS timer_effects (key text NOT NULL, pid integer NOT NULL);   -- no unique: repeats show
CREATE TABLE IF NOT EXISTS timer_handler_starts (key text NOT NULL, pid integer NOT NULL)
"""


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database")
    parser.add_argument("owner")
    parser.add_argument("--max-sleep", type=float, default=0.02)
    args = parser.parse_args()

    settings = PlatformSettings(service_name="tests", pg_database=args.database)
    pool = await create_pool(settings)
    starts = await asyncpg.connect(settings.dsn())
    pid = os.getpid()

    async def handler(conn: asyncpg.Connection, timer: Timer) -> None:
        await starts.execute("INSERT INTO timer_handler_starts (key, pid) VALUES ($1, $2)", timer.key, pid)
        await conn.execute("INSERT INTO timer_effects (key, pid) VALUES ($1, $2)", timer.key, pid)
        await asyncio.sleep(random.uniform(0, args.max_sleep))

    worker = TimerWorker(pool, owner=args.owner, handler=handler, poll_interval=0.05, backoff=(0.05, 0.2))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(worker.stop()))
    print("ready", flush=True)
    await worker.run()
    await starts.close()
    await pool.close()
    fired = REGISTRY.get_sample_value("civicgrid_timers_fired_total", {"owner": args.owner, "kind": "deadline"})
    print(json.dumps({"fired": int(fired or 0)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
