"""Guarantee 2: the relay, run as its own process (`python -m civicgrid_common.outbox.relay`),
is killed with SIGKILL again and again while events for several keys are being appended.
Afterwards every event is on the topic and, per key, the first occurrences are in stream
version order. Duplicates (a batch sent but not checkpointed before the kill) are allowed:
consumers drop them by event id. They are counted and printed."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from civicgrid_common.cloudevents import from_kafka_message
from civicgrid_common.events import NewEvent
from civicgrid_common.eventstore import EventStore
from civicgrid_common.kafka import make_consumer
from civicgrid_common.settings import PlatformSettings

from ledger_kit import make_store

pytestmark = pytest.mark.integration

OPENED = "civicgrid.test.ledger.opened.v1"
CREDITED = "civicgrid.test.ledger.credited.v1"
KEYS = [f"ledger-{i}" for i in range(5)]
MAX_EVENTS_PER_KEY = 60  # keeps the run small; appends go on until the kills are done
KILLS = 5
ACTIVE = "is the active publisher"  # logged once the relay holds its lock (signal handlers set)


def relay_env(settings: PlatformSettings, relay_name: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CIVICGRID_SERVICE_NAME=settings.service_name,
        CIVICGRID_PG_HOST=settings.pg_host,
        CIVICGRID_PG_PORT=str(settings.pg_port),
        CIVICGRID_PG_USER=settings.pg_user,
        CIVICGRID_PG_PASSWORD=settings.pg_password,
        CIVICGRID_PG_DATABASE=settings.database,
        CIVICGRID_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        CIVICGRID_OUTBOX_RELAY_NAME=relay_name,
        CIVICGRID_OUTBOX_BATCH_SIZE="5",  # small batches: kills land between send and checkpoint
        CIVICGRID_OUTBOX_POLL_INTERVAL="0.02",
        CIVICGRID_LOG_LEVEL="INFO",
    )
    return env


async def start_relay(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "civicgrid_common.outbox.relay", env=env, stdout=out, stderr=out
        )


async def checkpoint(pool: asyncpg.Pool, relay_name: str) -> tuple[int, int]:
    """The relay's (tx, position): positions alone are not monotonic in commit order."""
    row = await pool.fetchrow("SELECT tx, position FROM outbox_checkpoint WHERE relay = $1", relay_name)
    return (int(row["tx"]), row["position"]) if row else (0, 0)


async def wait_until(condition, what: str, log: Path, attempts: int = 600) -> None:
    for _ in range(attempts):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; relay log:\n{log.read_text()[-3000:]}")


async def append_load(store: EventStore, versions: dict[str, int], stop: asyncio.Event) -> list[NewEvent]:
    """Appends for several keys, interleaved, 1 to 3 events per transaction, until stopped."""
    rng = random.Random(7)
    appended: list[NewEvent] = []
    while not stop.is_set() and any(v < MAX_EVENTS_PER_KEY for v in versions.values()):
        key = rng.choice([k for k, v in versions.items() if v < MAX_EVENTS_PER_KEY])
        count = min(rng.randint(1, 3), MAX_EVENTS_PER_KEY - versions[key])
        batch = [
            NewEvent(OPENED, {"owner": key, "opened_on": "2026-01-05"}) if versions[key] + i == 0
            else NewEvent(CREDITED, {"amount": versions[key] + i + 1, "memo": key})
            for i in range(count)
        ]
        await store.append(key, "ledger", versions[key], batch)
        versions[key] += count
        appended += batch
        await asyncio.sleep(0.03)
    return appended


async def test_guarantee_relay_killed_with_sigkill_loses_nothing_and_keeps_order_per_key(
    pool: asyncpg.Pool, fresh_db: PlatformSettings, new_topic, tmp_path: Path
):
    topic = await new_topic("test.ledger.sigkill", partitions=3)
    store = make_store(pool, fresh_db, topic)
    await store.install()
    relay_name = f"sigkill-{uuid.uuid4().hex[:8]}"
    env = relay_env(fresh_db, relay_name)
    log = tmp_path / "relay.log"
    rng = random.Random(11)

    versions = {k: 0 for k in KEYS}
    stop_load = asyncio.Event()
    load = asyncio.create_task(append_load(store, versions, stop_load))
    kills = 0
    try:
        while kills < KILLS:
            before = await checkpoint(pool, relay_name)
            proc = await start_relay(env, log)
            # let it publish at least one batch, then kill it at a random instant after
            await wait_until(lambda: _advanced(pool, relay_name, before), "the relay to publish a batch", log)
            await asyncio.sleep(rng.uniform(0, 0.03))
            proc.send_signal(signal.SIGKILL)
            assert await proc.wait() == -signal.SIGKILL
            kills += 1
        stop_load.set()
        appended = await load
    finally:
        if not load.done():
            load.cancel()

    # A last relay drains the outbox, then stops cleanly on SIGTERM.
    row = await pool.fetchrow("SELECT tx, position FROM outbox ORDER BY tx DESC, position DESC LIMIT 1")
    end = (int(row["tx"]), row["position"])
    activations = log.read_text().count(ACTIVE)
    proc = await start_relay(env, log)
    try:
        await wait_until(lambda: _logged(log, ACTIVE, activations + 1), "the last relay to start", log)
        await wait_until(lambda: _reached(pool, relay_name, end), "the last relay to drain the outbox", log)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0

    records = await consume_all(fresh_db, topic, {str(e.id) for e in appended})
    ids = [r.id for r in records]
    assert set(ids) == {str(e.id) for e in appended}, "an event was lost"
    first_versions: dict[str, list[int]] = {k: [] for k in KEYS}
    seen: set[str] = set()
    for record in records:  # records are in partition order; a key lives in one partition
        if record.id not in seen:
            seen.add(record.id)
            first_versions[record.subject].append(record.sequence)
    assert first_versions == {k: list(range(1, versions[k] + 1)) for k in KEYS}, "order within a key broken"
    duplicates = len(ids) - len(set(ids))
    appended_while_killing = sum(versions.values())
    print(f"\nrelay SIGKILLed {kills} times while appending: {appended_while_killing} events, "
          f"{len(ids)} records on the topic, {duplicates} duplicates")


async def _advanced(pool: asyncpg.Pool, relay_name: str, before: tuple[int, int]) -> bool:
    return await checkpoint(pool, relay_name) > before


async def _logged(log: Path, line: str, times: int) -> bool:
    return log.read_text().count(line) >= times


async def _reached(pool: asyncpg.Pool, relay_name: str, end: tuple[int, int]) -> bool:
    return await checkpoint(pool, relay_name) >= end


async def consume_all(settings: PlatformSettings, topic: str, expected_ids: set[str]):
    """Every record on the topic, in partition then offset order, once all expected ids are in."""
    consumer = make_consumer(settings, topic, group_id=None)
    await consumer.start()
    got: list[tuple[int, int, object]] = []
    try:
        for _ in range(240):
            for tp, messages in (await consumer.getmany(timeout_ms=250)).items():
                got += [(tp.partition, m.offset, from_kafka_message(m.headers, m.key, m.value)) for m in messages]
            if expected_ids <= {e.id for _, _, e in got}:
                break
        # drain what is left (resent duplicates may sit after the last new id)
        for tp, messages in (await consumer.getmany(timeout_ms=1000)).items():
            got += [(tp.partition, m.offset, from_kafka_message(m.headers, m.key, m.value)) for m in messages]
    finally:
        await consumer.stop()
    return [e for _, _, e in sorted(got, key=lambda g: (g[0], g[1]))]
