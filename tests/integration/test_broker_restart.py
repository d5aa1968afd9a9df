"""Guarantee: a broker restart during consumption; the consumer resumes by itself, exactly once.

Runs its own single-node broker (never the shared one on 9092), kills it mid-stream with
SIGKILL, and starts it again on the same ports and data directory.
"""
from __future__ import annotations

import asyncio
import socket
import uuid

import localstack
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from test_consumer_support import EFFECTS_DDL, effect_counts, eventually, numbered_events, produce, record_effect, unique

from civicgrid_common.consumer import EventConsumer
from civicgrid_common.db import install_schema

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def own_broker(tmp_path):
    broker = localstack.KafkaBroker(
        name=f"kafka-restart-{uuid.uuid4().hex[:8]}", port=_free_port(), controller_port=_free_port(),
        data_dir=tmp_path / "kafka" / "data", heap="384m",
    )
    await asyncio.to_thread(broker.start, 120)
    try:
        yield broker
    finally:
        await asyncio.to_thread(broker.kill)


async def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def test_consumer_resumes_by_itself_after_a_broker_restart(fresh_db, pool, own_broker):
    settings = fresh_db.model_copy(update={"kafka_bootstrap": own_broker.bootstrap})
    topic, dlq = unique("restart"), unique("restart-dlq")
    await _create_topic(settings.kafka_bootstrap, topic, 3)
    await _create_topic(settings.kafka_bootstrap, dlq, 1)
    await install_schema(pool, [EFFECTS_DDL])

    consumer = EventConsumer(settings, pool, topics=[topic], group_id=unique("restart"), handler=record_effect,
                             dead_letter_topic=dlq, stall_after=15.0, watchdog_interval=1.0)
    task = asyncio.create_task(consumer.run())
    try:
        await produce(settings.kafka_bootstrap, topic, numbered_events(30, streams=3))
        await eventually(lambda: _count_is(pool, 3), timeout=60, what="consumption to be under way")

        await asyncio.to_thread(own_broker.kill)  # mid-stream, most likely with records in hand
        # Stay down across several heartbeats, so the consumer really loses its coordinator.
        await asyncio.sleep(5)
        await asyncio.to_thread(own_broker.start, 120)

        await produce(settings.kafka_bootstrap, topic, numbered_events(12, streams=3, start=30))
        await eventually(lambda: _count_is(pool, 42), timeout=120, what="events after the restart")
        assert not task.done(), "the consumer loop ended by itself"
    finally:
        await consumer.stop(timeout=60)
        await task

    assert await effect_counts(pool) == {n: 1 for n in range(42)}
    print(f"watchdog recoveries during the restart: {consumer.recoveries}")


async def _count_is(pool, n: int) -> bool:
    return sum((await effect_counts(pool)).values()) >= n


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch):
    """StorageTool reads `-t -abc…` as an option: an id drawn with a leading '-' is drawn again."""
    dash_first = uuid.UUID(bytes=b"\xf8" + bytes(15))  # URL-safe base64 of 0xF8… begins with '-'
    plain = uuid.UUID(bytes=b"\x00" + bytes(15))
    draws = iter([dash_first, plain])
    monkeypatch.setattr(localstack.uuid, "uuid4", lambda: next(draws))
    cluster_id = localstack.kafka_cluster_id()
    assert not cluster_id.startswith("-")
    assert cluster_id == "AAAAAAAAAAAAAAAAAAAAAA"
