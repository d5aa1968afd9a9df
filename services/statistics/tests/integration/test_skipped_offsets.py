"""faust has handed a worker a record past offsets it never delivered (faust-streaming issues
216, 221: offsets skipped after a rebalance). The fact writer notices the gap from its
checkpoint, reads the skipped records itself and writes their facts in the same transaction:
no fact is lost and the figures still equal the raw count."""
from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from civicgrid_statistics.entrypoints.consumers import FactWriter

from event_stream import generate
from statistics_stack import publish


async def records_of(settings, topic: str) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    end = (await consumer.end_offsets([tp]))[tp]
    out: list = []
    try:
        while len(out) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                out += records
    finally:
        await consumer.stop()
    return out


async def test_skipped_offsets_are_read_back_not_lost(stats_settings, new_topic):
    topic = await new_topic("stats-gap", 1)
    stats_settings.topics = [topic]
    stream = generate(cases=6, complaints=0, seed=4)
    await publish(stats_settings, stream.records({"cases": topic, "complaints": topic, "approvals": topic}))
    records = await records_of(stats_settings, topic)
    assert len(records) > 20

    writer = FactWriter(stats_settings)
    try:
        for r in records[:5]:
            await writer.keep(r.topic, r.partition, r.offset, r.headers, r.key, r.value)
        assert writer.gaps_filled == 0
        last = records[-1]  # faust "skips" everything between offset 5 and the last record
        await writer.keep(last.topic, last.partition, last.offset, last.headers, last.key, last.value)
        assert writer.gaps_filled == len(records) - 6
        for r in records[:3]:  # and a redelivery of old records changes nothing
            await writer.keep(r.topic, r.partition, r.offset, r.headers, r.key, r.value)
        assert writer.gaps_filled == len(records) - 6
    finally:
        await writer.close()

    conn = await asyncpg.connect(stats_settings.dsn())
    try:
        facts = await conn.fetchval("SELECT count(*) FROM read_statistics.facts")
        registered = await conn.fetchval("SELECT count(*) FROM read_statistics.facts WHERE kind = 'intake.case.registered'")
    finally:
        await conn.close()
    assert facts == len({e.id for e in stream.events})
    assert registered == 6
