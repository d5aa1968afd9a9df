"""A consumer process for the kill test (not a test module; run as a script).

    python test_consumer_runner.py DATABASE TOPIC GROUP [--kill-after N]

Handles events with `record_effect`. With --kill-after N it SIGKILLs itself right after the
transaction of the event with data n == N commits and before that event's offset is
committed, as a power cut would. On SIGTERM it stops and prints its counts as JSON.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from prometheus_client import REGISTRY

sys.path.insert(0, str(Path(__file__).parent))

from test_consumer_support import EFFECTS_DDL, record_effect  # noqa: E402

from civicgrid_common.cloudevents import CloudEvent  # noqa: E402
from civicgrid_common.consumer import EventConsumer  # noqa: E402
from civicgrid_common.db import create_pool, install_schema  # noqa: E402
from civicgrid_common.settings import PlatformSettings  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--kill-after", type=int)
    args = parser.parse_args()

    settings = PlatformSettings(service_name="tests", pg_database=args.database)
    pool = await create_pool(settings)
    await install_schema(pool, [EFFECTS_DDL])

    def crash_after_commit(event: CloudEvent) -> None:
        if args.kill_after is not None and event.data["n"] == args.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    # One record per batch, so every earlier offset is committed before the fatal event.
    consumer = EventConsumer(settings, pool, topics=[args.topic], group_id=args.group, handler=record_effect,
                             max_records=1, on_committed=crash_after_commit, dead_letter_topic=args.topic)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(consumer.stop()))
    print("ready", flush=True)
    await consumer.run()
    await pool.close()

    def count(outcome: str) -> int:
        value = REGISTRY.get_sample_value("civicgrid_consumer_events_total",
                                          {"group": args.group, "topic": args.topic, "outcome": outcome})
        return int(value or 0)

    print(json.dumps({"handled": count("handled"), "duplicate": count("duplicate")}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
