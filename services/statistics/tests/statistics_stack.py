"""Running statistics' faust workers against the real Kafka and PostgreSQL: publishing records,
worker subprocesses, waiting until their checkpoints reach the end of the topics. Used by the
service's tests and by tests/e2e/test_statistics_on_the_stack.py."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from civicgrid_statistics.config import StatisticsSettings


async def publish(settings: StatisticsSettings, records) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for r in records:
            await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
        await producer.flush()
    finally:
        await producer.stop()


class Worker:
    """One faust worker of the statistics group, as a subprocess."""

    def __init__(self, settings: StatisticsSettings, log: Path) -> None:
        self.settings, self.log = settings, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, CIVICGRID_PG_DATABASE=self.settings.pg_database,
                   CIVICGRID_TOPICS=json.dumps(self.settings.topics), CIVICGRID_FAUST_APP_ID=self.settings.faust_app_id,
                   CIVICGRID_FAUST_DATADIR=str(self.settings.faust_datadir / uuid.uuid4().hex[:6]),
                   CIVICGRID_FAUST_SESSION_TIMEOUT=str(self.settings.faust_session_timeout),
                   CIVICGRID_ALERTS_TOPIC=self.settings.alerts_topic,
                   CIVICGRID_ALERT_COMPLAINT_THRESHOLD=str(self.settings.alert_complaint_threshold),
                   CIVICGRID_ALERT_COMPLAINT_WINDOW_MINUTES=str(self.settings.alert_complaint_window_minutes),
                   CIVICGRID_ALERT_OVERDUE_THRESHOLD=str(self.settings.alert_overdue_threshold),
                   CIVICGRID_ALERT_OVERDUE_WINDOW_MINUTES=str(self.settings.alert_overdue_window_minutes),
                   CIVICGRID_LOG_LEVEL="WARNING")
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "civicgrid_statistics.entrypoints.consumers"],
                                     env=env, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


async def wait_for_facts(settings: StatisticsSettings, expected_offsets: dict[tuple[str, int], int],
                         running: list[Worker] = (), patience: float = 180.0) -> None:
    """Until every partition's checkpoint reaches its end offset (not a timed assertion: it
    only bounds how long a broken worker can hang the test)."""
    conn = await asyncpg.connect(settings.dsn())
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while True:
            rows = await conn.fetch("SELECT topic, kafka_partition, next_offset FROM civicgrid_projection_checkpoints "
                                    "WHERE projection = 'statistics' AND version = (SELECT active_version FROM "
                                    "civicgrid_projections WHERE projection = 'statistics')") \
                if await conn.fetchval("SELECT to_regclass('civicgrid_projection_checkpoints') IS NOT NULL") else []
            got = {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}
            if all(got.get(tp, 0) >= end for tp, end in expected_offsets.items()):
                return
            dead = [w.log for w in running if w.proc is not None and w.proc.poll() is not None]
            if dead:
                raise AssertionError(f"a worker died: {dead[0].read_text()[-3000:]}")
            if loop.time() > deadline:
                raise AssertionError(f"workers did not reach {expected_offsets}: at {got}")
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def load_facts(settings: StatisticsSettings, stream, topics: dict[str, str], workers) -> None:
    """Publish a generated stream (10% of its records twice, as the at-least-once relay may),
    let one real faust worker turn it into facts, and stop the worker."""
    await publish(settings, stream.records(topics, duplicate_share=0.1))
    (worker,) = workers(1)
    worker.start()
    await wait_for_facts(settings, await end_offsets(settings, list(topics.values())), [worker])
    worker.stop()


async def end_offsets(settings: StatisticsSettings, topics: list[str]) -> dict[tuple[str, int], int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or
                                                               await _partitions(consumer, t))]
        ends = await consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): off for tp, off in ends.items() if off > 0}
    finally:
        await consumer.stop()


async def _partitions(consumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()
