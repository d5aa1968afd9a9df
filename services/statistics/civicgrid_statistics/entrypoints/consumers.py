"""statistics' consumers: the faust-streaming workers, each event of the domain topics a fact in PostgreSQL.

    python -m civicgrid_statistics.entrypoints.consumers      (one worker; run several, they share the group)

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
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from civicgrid_common.cloudevents import MalformedEvent, from_kafka_message
from civicgrid_common.unit_of_work import Contended

from civicgrid_statistics.adapters.fact_store import fact_from_event
from civicgrid_statistics.application.facts import FactService
from civicgrid_statistics.bootstrap import Statistics, open_statistics
from civicgrid_statistics.config import StatisticsSettings
from civicgrid_statistics.domain.facts import Fact

log = logging.getLogger(__name__)


def _headers(raw: Any) -> list[tuple[str, bytes]]:
    if raw is None:
        return []
    items = raw.items() if isinstance(raw, Mapping) else raw
    return [(k, v) for k, v in items]


def _fact(tp: TopicPartition, offset: int, headers: Any, key: bytes | None, value: bytes | None) -> Fact | None:
    try:
        event = from_kafka_message(_headers(headers), key, value)
    except MalformedEvent as exc:
        log.error("statistics: %s@%d is not a CloudEvent (%s); it counts for nothing", tp, offset, exc)
        return None
    return fact_from_event(event)


class FactWriter:
    """Turns each record faust hands over into a fact. It does not trust faust to hand over
    every record: faust has skipped offsets after rebalances (faust-streaming issues 216, 221).
    A record beyond the partition's checkpoint means records were skipped; the writer reads
    the gap itself from Kafka and writes its facts in the same transaction, so the checkpoint
    never passes an offset whose fact is missing."""

    def __init__(self, settings: StatisticsSettings) -> None:
        self.settings = settings
        self._opened: Statistics | None = None
        self._reader: AIOKafkaConsumer | None = None
        self.gaps_filled = 0  # records read by the writer itself (seen in tests and logs)

    async def service(self) -> FactService:
        """Opened on the first record, in faust's event loop (the bootstrap's open_statistics)."""
        if self._opened is None:
            self._opened = await open_statistics(self.settings)
        return self._opened.facts

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.stop()
        if self._opened is not None:
            await self._opened.pool.close()

    async def _gap(self, tp: TopicPartition, start: int, end: int) -> list[Fact]:
        """Facts of the records [start, end) of a partition, read directly."""
        if self._reader is None:
            self._reader = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
                                            enable_auto_commit=False, client_id=f"{self.settings.client_id}-gaps")
            await self._reader.start()
        reader = self._reader
        reader.assign([tp])
        first = (await reader.beginning_offsets([tp]))[tp]
        reader.seek(tp, max(start, first))
        facts: list[Fact] = []
        position = max(start, first)
        while position < end:
            for records in (await reader.getmany(tp, timeout_ms=1000)).values():
                for r in records:
                    if position <= r.offset < end:
                        fact = _fact(tp, r.offset, r.headers, r.key, r.value)
                        if fact is not None:
                            facts.append(fact)
                    position = max(position, r.offset + 1)
        self.gaps_filled += end - start
        log.warning("statistics: faust skipped %s offsets %d..%d; read them directly", tp, start, end - 1)
        return facts

    async def keep(self, topic: str, partition: int, offset: int, headers: Any, key: bytes | None,
                   value: bytes | None) -> None:
        tp = TopicPartition(topic, partition)
        fact = _fact(tp, offset, headers, key, value)
        failures = 0
        while True:  # a fact must not be skipped: retry until PostgreSQL takes it
            try:
                service = await self.service()
                expected = await service.checkpoint(topic, partition)
                facts = await self._gap(tp, expected, offset) if expected is not None and offset > expected else []
                if fact is not None:
                    facts.append(fact)
                await service.keep(facts, {(topic, partition): offset + 1})
                return
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, Contended, KafkaError) as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.error("statistics: writing %s@%d failed (%r), retry in %.1fs", tp, offset, exc, delay)
                await asyncio.sleep(delay)


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
    writer = FactWriter(settings)

    @app.agent(topic, name="statistics-facts", concurrency=1)
    async def facts(stream: faust.Stream) -> None:
        async for event in stream.events():
            m = event.message
            await writer.keep(m.topic, m.partition, m.offset, m.headers, m.key, m.value)

    return app


def main() -> None:
    settings = StatisticsSettings()
    app = build_faust_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
