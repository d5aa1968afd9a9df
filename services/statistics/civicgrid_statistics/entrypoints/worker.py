"""The faust-streaming workers: each event of the domain topics becomes a fact in PostgreSQL.

    python -m civicgrid_statistics.entrypoints.worker      (one worker; run several, they share the group)

Exactness does not rest on faust. The agent writes each event's fact with ON CONFLICT
(event_id) DO NOTHING and the partition's next offset in one PostgreSQL transaction, and only
then takes the next event; faust acknowledges an event when the agent asks for the next one,
and commits (enable_auto_commit=False, every `broker_commit_every` acks or
`broker_commit_interval`) only acknowledged offsets. So a committed offset is always behind a
committed fact; whatever faust redelivers after a crash, a rebalance or a lost commit (faust
issues 176, 318, 502, 651) finds its fact already there, and no figure lives in a faust table.
"""
from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any, Mapping

import asyncpg
import faust
from aiokafka import TopicPartition

from civicgrid_common.cloudevents import MalformedEvent, from_kafka_message
from civicgrid_common.db import create_pool, ensure_database

from civicgrid_common.eventstore import ConcurrencyConflict

from civicgrid_statistics.adapters.event_store import open_alerts
from civicgrid_statistics.adapters.fact_store import fact_from_event, open_store, record
from civicgrid_statistics.config import StatisticsSettings

log = logging.getLogger(__name__)


def _headers(raw: Any) -> list[tuple[str, bytes]]:
    if raw is None:
        return []
    items = raw.items() if isinstance(raw, Mapping) else raw
    return [(k, v) for k, v in items]


def build_faust_app(settings: StatisticsSettings) -> faust.App:
    datadir = settings.faust_datadir or Path(tempfile.gettempdir()) / f"{settings.faust_app_id}-faust"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.faust_app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",            # no tables: figures are SQL over PostgreSQL's facts
        topic_disable_leader=True,    # no leader topic to create
        web_enabled=False,            # the API is FastAPI's, on its own port
        datadir=str(datadir),
        consumer_auto_offset_reset="earliest",
        broker_commit_every=100,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.faust_session_timeout,
        broker_heartbeat_interval=min(3.0, settings.faust_session_timeout / 4),
    )
    topic = app.topic(*settings.topics, key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw")
    state: dict[str, Any] = {}

    async def pool() -> asyncpg.Pool:
        if "pool" not in state:
            await ensure_database(settings)
            p = await create_pool(settings)
            await open_store(p)
            state["alerts"] = await open_alerts(p, settings)
            state["pool"] = p
        return state["pool"]

    async def keep(message: Any) -> None:
        tp = TopicPartition(message.topic, message.partition)
        try:
            event = from_kafka_message(_headers(message.headers), message.key, message.value)
        except MalformedEvent as exc:
            log.error("statistics: %s@%d is not a CloudEvent (%s); it counts for nothing", tp, message.offset, exc)
            fact = None
        else:
            fact = fact_from_event(event)
        failures = 0
        while True:  # a fact must not be skipped: retry until PostgreSQL takes it
            try:
                p = await pool()
                async with p.acquire() as conn:
                    async with conn.transaction():
                        await record(conn, [fact] if fact else [], {tp: message.offset + 1}, state["alerts"])
                return
            except (asyncpg.PostgresError, OSError, ConcurrencyConflict) as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.error("statistics: writing %s@%d failed (%r), retry in %.1fs", tp, message.offset, exc, delay)
                await asyncio.sleep(delay)

    @app.agent(topic, name="statistics-facts", concurrency=1)
    async def facts(stream: faust.Stream) -> None:
        async for event in stream.events():
            await keep(event.message)

    return app


def main() -> None:
    settings = StatisticsSettings()
    app = build_faust_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
