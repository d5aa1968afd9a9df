"""Window alerts: a surge of complaints of one category in one community, and a run of overdue
approval tasks in one community, each raise exactly one alert event per surge, however the
events are duplicated, interleaved and redelivered across two workers that are killed
mid-stream; the outbox relay publishes the alerts as CloudEvents."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer

from civicgrid_common.cloudevents import from_kafka_message
from civicgrid_common.contracts import Contracts
from civicgrid_common.db import create_pool
from civicgrid_common.outbox.relay import OutboxRelay

from statistics_stack import end_offsets, publish, wait_for_facts
from event_stream import CHINA, COMMUNITIES, Stream, _t


def complaint(stream: Stream, community: str, category: str, at: datetime) -> None:
    cid = f"cp-{uuid.uuid4().hex[:16]}"
    stream.emit("complaints", "intake.complaint.received", cid, at, {
        "complaint_id": cid, "category": category, "channel": "phone", "urgency": "general", "jurisdiction": community,
        "location": {"address": "Huaihai Road 2"}, "description": "loud", "anonymous": True, "received_at": _t(at),
        "feedback_due_at": _t(at + timedelta(days=7))})


def overdue_case(stream: Stream, community: str, at: datetime) -> None:
    case = str(uuid.uuid4())
    stream.emit("cases", "intake.case.registered", case, at - timedelta(days=10), {
        "applicant_id": "app-1", "affair_code": "dibao", "affair_version": 1, "time_limit_working_days": 5,
        "level": "street", "routing": {"kind": "street"}, "jurisdiction": community, "channel": "window",
        "materials_required": [], "materials_handed_in": [], "materials_missing": [],
        "registered_at": _t(at - timedelta(days=10)), "actor": "clerk-a"})
    stream.emit("approvals", "approval.approval.overdue", str(uuid.uuid4()), at, {
        "case_id": case, "task": "community.1", "step": "community", "due_date": (at - timedelta(days=1)).date().isoformat(),
        "overdue_at": _t(at)})


def scenario() -> Stream:
    s = Stream(9)
    t0 = datetime(2026, 10, 12, 9, 0, tzinfo=CHINA)
    for i in range(7):  # surge 1: 7 noise complaints in 42 minutes (threshold 5 per hour)
        complaint(s, COMMUNITIES[0], "public_order", t0 + timedelta(minutes=6 * i))
    for i in range(6):  # surge 2 of the same kind and place, two days later
        complaint(s, COMMUNITIES[0], "public_order", t0 + timedelta(days=2, minutes=5 * i))
    for i in range(12):  # steady trickle, never 5 in an hour
        complaint(s, COMMUNITIES[1], "public_order", t0 + timedelta(hours=2 * i))
        complaint(s, COMMUNITIES[0], "environmental_protection", t0 + timedelta(minutes=20 * i))
    for i in range(3):  # a run of overdue tasks (3 within a day)
        overdue_case(s, COMMUNITIES[2], t0 + timedelta(hours=3 * i))
    overdue_case(s, COMMUNITIES[1], t0)  # a lone overdue task elsewhere
    return s


async def test_each_surge_raises_one_alert(stats_settings, topics, workers):
    stats_settings.alert_complaint_threshold, stats_settings.alert_complaint_window_minutes = 5, 60
    stats_settings.alert_overdue_threshold, stats_settings.alert_overdue_window_minutes = 3, 1440
    stats_settings.faust_session_timeout = 8.0
    stream = scenario()
    contracts = Contracts(stats_settings.contracts_dir)
    for e in stream.events:
        contracts.validate(e.type, e.data)
    records = stream.records(topics, duplicate_share=0.3)
    pair = workers(2)
    for w in pair:
        w.start()
    await publish(stats_settings, records[: len(records) // 2])
    await asyncio.sleep(2.0)
    pair[0].kill()
    pair[0].start()
    await publish(stats_settings, records[len(records) // 2:])
    await wait_for_facts(stats_settings, await end_offsets(stats_settings, list(topics.values())), pair, patience=300)
    for w in pair:
        w.stop()

    conn = await asyncpg.connect(stats_settings.dsn())
    try:
        rows = await conn.fetch("SELECT stream_id, data FROM events WHERE type = 'civicgrid.statistics.alert.raised.v1' "
                                "ORDER BY position")
    finally:
        await conn.close()
    alerts = [(r["stream_id"], r["data"]) for r in rows]
    assert sorted(s for s, _ in alerts) == sorted([
        f"alert:complaint_surge:{COMMUNITIES[0]}:public_order",
        f"alert:complaint_surge:{COMMUNITIES[0]}:public_order",
        f"alert:overdue_run:{COMMUNITIES[2]}:-",
    ])

    # The relay publishes them, once each, as CloudEvents on the alerts topic.
    pool = await create_pool(stats_settings)
    relay = OutboxRelay(pool, stats_settings, name="statistics")
    task = asyncio.create_task(relay.run())
    consumer = AIOKafkaConsumer(stats_settings.alerts_topic, bootstrap_servers=stats_settings.kafka_bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        got = []
        while len(got) < 3:
            for records_ in (await consumer.getmany(timeout_ms=2000)).values():
                got += [from_kafka_message(r.headers, r.key, r.value) for r in records_]
        await asyncio.sleep(1.0)
        for records_ in (await consumer.getmany(timeout_ms=1000)).values():
            got += records_
    finally:
        await consumer.stop()
        relay.stop()
        await asyncio.wait_for(task, 10)
        await pool.close()
    assert len(got) == 3
    surge = [e for e in got if e.data["alert_kind"] == "complaint_surge"]
    assert {e.data["count"] for e in surge} == {5} and all(e.data["threshold"] == 5 for e in surge)
    assert all(e.type == "civicgrid.statistics.alert.raised.v1" for e in got)
