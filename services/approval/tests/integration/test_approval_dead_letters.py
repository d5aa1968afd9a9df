"""Department opinions approval refuses go to the dead-letter topic, untouched, with the reason
(x-dlq-* headers): a source that is not the department, a schema violation, a type that is not
an opinion, no dataschema or one that is not the contract's, a second answer to a task no longer
current. Nothing in approval changes for them.
On the real broker, with fresh topics (the local stack's dead-letter topic is not touched)."""
from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timezone

import httpx
from aiokafka import AIOKafkaConsumer

from civicgrid_common.consumer import read_dlq_headers

from civicgrid_approval.config import ApprovalSettings
from civicgrid_approval.entrypoints.main import build_app

from approval_flows import act, route_case
from test_approval_on_kafka import record, send, until

OPINION = "civicgrid.department.civil_affairs.opinion_given.v1"
CIVIL = "/civicgrid/departments/civil_affairs"


def with_dataschema(r, dataschema: str | None):
    """The record with its ce_dataschema header replaced (None: without one)."""
    headers = [(k, v) for k, v in r.headers if k != "ce_dataschema"]
    if dataschema is not None:
        headers.append(("ce_dataschema", dataschema.encode()))
    return dataclasses.replace(r, headers=tuple(headers))


async def read_dead_letters(settings, topic: str, count: int) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got: list = []
    try:
        async def enough():
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                got.extend(batch)
            return len(got) >= count

        await until(enough, f"{count} dead letters on {topic}", timeout=120)
    finally:
        await consumer.stop()
    return got


async def test_rejected_opinions_are_dead_lettered_with_their_reason(fresh_db, new_topic, clock, people, pool):
    opinions, dlq = await new_topic("test.civil_affairs.opinions"), await new_topic("test.approval.deadletter")
    settings = ApprovalSettings(pg_database=fresh_db.pg_database, outbox_relay=False, timers=False, consume=True,
                                intake_cases_topic=await new_topic("test.intake.cases"),
                                department_opinion_topics=[opinions], dead_letter_topic=dlq,
                                consumer_group=f"test-approval-{uuid.uuid4().hex[:8]}")
    app = build_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        await app.state.consumers["department-opinions"].wait_until_assigned(60)
        aid = await route_case(app)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://approval") as api:
            assert (await act(api, people["community"], aid)).status_code == 200
            assert (await act(api, people["street"], aid)).status_code == 200
        task = await pool.fetchval("SELECT task FROM approval_view WHERE id = $1", aid)
        opinion = {"approval_id": aid, "task": task, "opinion": "approve", "comment": "家庭收入低于当地低保标准",
                   "given_at": datetime.now(timezone.utc).isoformat(), "checked_by": "核对中心-03"}
        no_comment = {k: v for k, v in opinion.items() if k != "comment"}
        sent = [
            record(opinions, OPINION, aid, {**opinion, "opinion": "refuse"},
                   source="/civicgrid/departments/public_security"),
            record(opinions, OPINION, aid, no_comment, source=CIVIL),
            record(opinions, "civicgrid.department.civil_affairs.task_done.v1", aid, opinion, source=CIVIL),
            with_dataschema(record(opinions, OPINION, aid, {**opinion, "opinion": "refuse"}, source=CIVIL), None),
            with_dataschema(record(opinions, OPINION, aid, {**opinion, "opinion": "refuse"}, source=CIVIL),
                            "http://127.0.0.1:8000/contracts/events/civicgrid.department.civil_affairs.opinion_given.v2"
                            ".schema.json"),
            record(opinions, OPINION, aid, opinion, source=CIVIL),
            record(opinions, OPINION, aid, {**opinion, "opinion": "refuse"}, source=CIVIL),  # answered already
        ]
        await send(settings, sent)
        letters = await read_dead_letters(settings, dlq, 6)
        await until(lambda: pool.fetchval("SELECT step = 'bureau_decision' FROM approval_view WHERE id = $1", aid),
                    "the opinion")
    headers = [read_dlq_headers(x.headers) for x in letters]
    assert [h["error-message"].split(":")[0] for h in headers] == [
        "wrong-source", "schema-violation", "not-an-opinion", "wrong-dataschema", "wrong-dataschema", "stale-task"]
    assert {h["error-type"] for h in headers} == {"civicgrid_approval.entrypoints.consumers.RejectedOpinion"}
    assert {h["original-topic"] for h in headers} == {opinions}
    assert {h["attempts"] for h in headers} == {"1"}  # a PoisonEvent: no retries
    assert "comment" in headers[1]["error-message"]
    assert "task-not-current" in headers[5]["error-message"]
    # The records themselves, untouched, for an operator to inspect or send back.
    assert [x.value for x in letters] == [r.value for r in sent[:5] + sent[6:]]
    acted = await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1 AND type = "
                                "'civicgrid.approval.approval.acted.v1'", aid)
    assert acted == 3  # community, street, the one opinion that holds
    assert await pool.fetchval("SELECT status FROM approval_view WHERE id = $1", aid) == "running"
    assert await pool.fetchval("SELECT count(*) FROM civicgrid_inbox WHERE status = 'dead_lettered'") == 6
