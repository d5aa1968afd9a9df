"""approval on the real broker: intake's case events on a topic start the approval (once,
even when `routed` comes twice); the civil affairs system's opinion on its topic moves the
approval on, sealed with the department's key; an opinion whose source is not that
department changes nothing. Fresh topics and a fresh database: the shared topics of the
local stack are not touched."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

from civicgrid_common.cloudevents import to_kafka_record
from civicgrid_common.events import StoredEvent
from civicgrid_common.kafka import make_producer

from civicgrid_approval.config import ApprovalSettings
from civicgrid_approval.domain.approval import approval_id_for
from civicgrid_approval.entrypoints.main import build_app

from approval_builders import COMMUNITY
from approval_flows import act


def record(topic: str, type_: str, subject: str, data: dict, *, source: str, version: int = 1):
    event = StoredEvent(id=uuid.uuid4(), stream_id=subject, stream_type="x", version=version, position=version,
                        type=type_, data=data, metadata={}, recorded_at=datetime.now(timezone.utc), hash="",
                        prev_hash=None)
    return to_kafka_record(event, topic=topic, source=source, schema_base_url="http://127.0.0.1:8000/contracts")


async def send(settings, records) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(r.topic, r.value, key=r.key, headers=list(r.headers))
    finally:
        await producer.stop()


async def until(predicate, what: str, timeout: float = 60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_intake_events_and_a_department_opinion_over_kafka(fresh_db, new_topic, clock, people, pool):
    import httpx

    cases, opinions = await new_topic("test.intake.cases"), await new_topic("test.civil_affairs.opinions")
    settings = ApprovalSettings(pg_database=fresh_db.pg_database, outbox_relay=False, timers=False, consume=True,
                                intake_cases_topic=cases, department_opinion_topics=[opinions],
                                consumer_group=f"test-approval-{uuid.uuid4().hex[:8]}",
                                dead_letter_topic=await new_topic("test.approval.deadletter"))
    app = build_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        for consumer in (app.state.consumers["intake-cases"], app.state.consumers["department-opinions"]):
            await consumer.wait_until_assigned(60)
        case_id = str(uuid.uuid4())
        routing = {"kind": "department", "department": "civil_affairs"}
        intake = "/civicgrid/intake"
        await send(settings, [
            record(cases, "civicgrid.intake.case.registered.v1", case_id, {
                "affair_code": "civil.minimum_living_allowance", "affair_version": 1, "time_limit_working_days": 30,
                "level": "district", "routing": routing, "jurisdiction": COMMUNITY}, source=intake, version=1),
            record(cases, "civicgrid.intake.case.accepted.v1", case_id,
                   {"case_number": "QH-K-1", "due_date": "2026-04-14"}, source=intake, version=2),
            record(cases, "civicgrid.intake.case.routed.v1", case_id, {"routing": routing, "level": "district"},
                   source=intake, version=3),
            record(cases, "civicgrid.intake.case.routed.v1", case_id, {"routing": routing, "level": "district"},
                   source=intake, version=3),
        ])
        aid = approval_id_for(case_id)
        await until(lambda: pool.fetchval("SELECT 1 FROM approval_view WHERE id = $1", aid), "the approval")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://approval") as api:
            assert (await act(api, people["community"], aid)).status_code == 200
            assert (await act(api, people["street"], aid)).status_code == 200
        task = await pool.fetchval("SELECT task FROM approval_view WHERE id = $1", aid)
        assert task.startswith("income_check.")
        opinion = {"approval_id": aid, "task": task, "opinion": "approve", "comment": "家庭收入低于当地低保标准",
                   "given_at": datetime.now(timezone.utc).isoformat(), "checked_by": "核对中心-03"}
        # A forger on the topic (the source names another system) refuses; then the real answer.
        # Had the forgery counted, the approval would have ended refused.
        await send(settings, [
            record(opinions, "civicgrid.department.civil_affairs.opinion_given.v1", aid,
                   {**opinion, "opinion": "refuse"}, source="/civicgrid/departments/public_security"),
            record(opinions, "civicgrid.department.civil_affairs.opinion_given.v1", aid, opinion,
                   source="/civicgrid/departments/civil_affairs"),
        ])
        await until(lambda: pool.fetchval("SELECT step = 'bureau_decision' FROM approval_view WHERE id = $1", aid),
                    "the opinion")
        assert await pool.fetchval("SELECT status FROM approval_view WHERE id = $1", aid) == "running"
    moves = await pool.fetch("SELECT data FROM events WHERE stream_id = $1 AND type = "
                             "'civicgrid.approval.approval.acted.v1' ORDER BY version", aid)
    assert len(moves) == 3  # community, street, one opinion (the forged one changed nothing)
    assert await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1 AND type = "
                               "'civicgrid.approval.approval.started.v1'", aid) == 1
    import json
    last = json.loads(moves[-1]["data"]) if isinstance(moves[-1]["data"], str) else moves[-1]["data"]
    assert last["actor_department"] == "civil_affairs" and last["actor_name"] == "核对中心-03"
    assert last["seal"]["decision"]["signer"] == "department:civil_affairs"
    task_topic = await pool.fetchval(
        "SELECT o.topic FROM outbox o JOIN events e ON e.id = o.event_id WHERE e.stream_id = $1 "
        "AND e.type = 'civicgrid.approval.civil_affairs_task.issued.v1'", aid)
    assert task_topic == "civicgrid.departments.civil_affairs.tasks"
