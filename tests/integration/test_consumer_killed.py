"""Guarantee: a consumer killed between its effect and its offset commit applies nothing twice."""
from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest

from test_consumer_support import EFFECTS_DDL, effect_counts, eventually, numbered_events, produce, unique

from civicgrid_common.db import install_schema

pytestmark = pytest.mark.integration

RUNNER = Path(__file__).with_name("test_consumer_runner.py")


async def _start_runner(settings, topic: str, group: str, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(RUNNER), settings.database, topic, group, *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def test_sigkill_after_db_commit_before_offset_commit_redelivers_without_double_effect(
    settings, fresh_db, pool, new_topic
):
    topic = await new_topic("consumer-kill", partitions=1)
    group = unique("kill")
    await install_schema(pool, [EFFECTS_DDL])
    await produce(settings.kafka_bootstrap, topic, numbered_events(6))

    # First life: handles n=0..2 and is SIGKILLed right after n=2's transaction commits.
    first = await _start_runner(fresh_db, topic, group, "--kill-after", "2")
    _, err = await asyncio.wait_for(first.communicate(), 90)
    assert first.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert await effect_counts(pool) == {0: 1, 1: 1, 2: 1}

    # Second life: n=2 comes back (its offset was never committed) and is recognised.
    second = await _start_runner(fresh_db, topic, group)
    try:
        await eventually(lambda: _has_all(pool, 6), timeout=60, what="all six effects")
    finally:
        second.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode == 0, err.decode()[-2000:]
    stats = json.loads(out.decode().strip().splitlines()[-1])
    assert stats == {"handled": 3, "duplicate": 1}  # n=2 redelivered once and skipped; n=3..5 new
    assert await effect_counts(pool) == {n: 1 for n in range(6)}
    inbox = await pool.fetchval("SELECT count(*) FROM civicgrid_inbox WHERE consumer_group = $1", group)
    assert inbox == 6


async def _has_all(pool, count: int) -> bool:
    return len(await effect_counts(pool)) >= count
