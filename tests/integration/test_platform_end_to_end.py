"""The platform end to end, on the real PostgreSQL and Kafka: a command appends events inside
an HTTP-like span; the outbox relay publishes them; a consumer group handles them with its
inbox; a replayed outbox (what a relay killed before its checkpoint does) changes nothing;
the events on the wire validate against their contracts; one trace spans all of it.
"""
from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from civicgrid_common.cloudevents import CloudEvent
from civicgrid_common.consumer import EventConsumer
from civicgrid_common.contracts import Contracts
from civicgrid_common.events import NewEvent
from civicgrid_common.eventstore import EventStore
from civicgrid_common.outbox.relay import OutboxRelay

pytestmark = pytest.mark.integration

CONTRACTS = Contracts(__import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "contracts")


def span_exporter() -> InMemorySpanExporter:
    """Collect this process's spans (the global provider can be set once per process)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


async def wait_for(condition, what: str, seconds: float = 60.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_window_to_consumer_once_with_one_trace(fresh_db, pool, new_topic):
    exporter = span_exporter()
    topic = await new_topic("e2e.ledger")
    store = EventStore(
        pool, CONTRACTS, source=fresh_db.source, schema_base_url=fresh_db.schema_base_url,
        topic_for=lambda _t: topic,
    )
    await store.install()
    await pool.execute(
        "CREATE TABLE effects (event_id text PRIMARY KEY, ledger text, amount int, trace_id text)"
    )
    seen_on_wire: list[CloudEvent] = []

    async def handle(conn, event: CloudEvent) -> None:
        seen_on_wire.append(event)
        trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
        # A second effect for the same event id would violate the primary key: the inbox must
        # make that impossible, not this table.
        await conn.execute(
            "INSERT INTO effects VALUES ($1, $2, $3, $4)",
            event.id, event.subject, (event.data or {}).get("amount"), trace_id,
        )

    # A command at the window: one request span, three events over two aggregates.
    tracer = trace.get_tracer("test.window")
    with tracer.start_as_current_span("POST /v1/ledgers") as request_span:
        window_trace = format(request_span.get_span_context().trace_id, "032x")
        await store.append("ledger-a", "ledger", 0, [
            NewEvent("civicgrid.test.ledger.opened.v1", {"owner": "淮海路街道", "opened_on": "2026-11-23"}),
            NewEvent("civicgrid.test.ledger.credited.v1", {"amount": 3, "memo": "first"}),
        ])
        await store.append("ledger-b", "ledger", 0, [
            NewEvent("civicgrid.test.ledger.credited.v1", {"amount": 5, "memo": "second"}),
        ])

    consumer = EventConsumer(fresh_db, pool, topics=[topic], group_id="e2e-handlers", handler=handle,
                             dead_letter_topic=await new_topic("e2e.deadletter", partitions=1))
    relay = OutboxRelay(pool, fresh_db, poll_interval=0.05, name="e2e")
    tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(relay.run())]
    try:
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 3 FROM effects"), "three effects")

        # The relay is killed before it checkpoints: its successor resends everything.
        relay.stop()
        await tasks.pop()
        await pool.execute("DELETE FROM outbox_checkpoint WHERE relay = 'e2e'")
        replay = OutboxRelay(pool, fresh_db, poll_interval=0.05, name="e2e")
        tasks.append(asyncio.create_task(replay.run()))
        await wait_for(lambda: _all_redelivered(pool, "e2e-handlers"), "the replayed records to be consumed")
        replay.stop()
    finally:
        await consumer.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    effects = await pool.fetch("SELECT ledger, amount, trace_id FROM effects ORDER BY ledger, amount NULLS FIRST")
    assert [(r["ledger"], r["amount"]) for r in effects] == [("ledger-a", None), ("ledger-a", 3), ("ledger-b", 5)]
    # Every record on the wire is a valid CloudEvent of a declared type with valid data...
    for ev in seen_on_wire:
        CONTRACTS.validate(ev.type, ev.data)
        assert ev.source == fresh_db.source and ev.dataschema.endswith(f"/events/{ev.type}.schema.json")
    # ...and the handlers ran in the trace the window request started.
    assert {r["trace_id"] for r in effects} == {window_trace}
    consumer_spans = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.CONSUMER]
    assert consumer_spans and all(format(s.context.trace_id, "032x") == window_trace for s in consumer_spans)


async def _all_redelivered(pool, group: str) -> bool:
    # Each of the 3 events arrived twice; the inbox holds one row per event and the consumer's
    # committed offsets cover all 6 records.
    inbox = await pool.fetchval("SELECT count(*) FROM civicgrid_inbox WHERE consumer_group = $1", group)
    return inbox == 3 and await _committed(pool, group) >= 6


async def _committed(pool, group: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    from civicgrid_common.settings import PlatformSettings

    admin = AIOKafkaAdminClient(bootstrap_servers=PlatformSettings().kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for meta in offsets.values() if meta.offset > 0)
