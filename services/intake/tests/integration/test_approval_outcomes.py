"""Approval's outcomes reach intake through Kafka: real CloudEvents, written with the official
SDK and valid against contracts/, produced onto a real topic of the local broker; intake's own
consumer (started by its lifespan, as in production) completes the case, records supplement
requests, and handles a redelivered event once."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cloudevents.core.bindings.kafka import KafkaMessage, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkCloudEvent
from uuid6 import uuid7

from civicgrid_common.consumer import read_dlq_headers
from civicgrid_common.contracts import Contracts
from civicgrid_common.paths import contracts_dir

from civicgrid_intake.adapters.case_views import rebuild_case_views
from civicgrid_intake.config import IntakeSettings
from civicgrid_intake.domain import case as c
from civicgrid_intake.entrypoints.main import build_app

from residents import COMMUNITY, STREET, register_resident

pytestmark = pytest.mark.integration

CONTRACTS = Contracts(contracts_dir())
CONCLUDED = "civicgrid.approval.approval.concluded.v1"
SUPPLEMENT_REQUESTED = "civicgrid.approval.approval.supplement_requested.v1"
# 最低生活保障: district level, routed to civil affairs, five required materials.
DIBAO = "civil.minimum_living_allowance"
DIBAO_MATERIALS = ["id_card", "household_register", "application_form", "verification_authorisation",
                   "income_statement"]


@pytest.fixture
async def topics(new_topic) -> tuple[str, str]:
    # One partition: records arrive in the order produced, whatever their keys.
    return await new_topic("approval-approvals", partitions=1), await new_topic("deadletter", partitions=1)


@pytest.fixture
async def app(fresh_db, topics):
    topic, dead_letters = topics
    settings = IntakeSettings(pg_database=fresh_db.pg_database, outbox_relay=False, approval_topic=topic,
                              approval_consumer_group=f"intake-test-{uuid.uuid4().hex[:8]}",
                              approval_dead_letter_topic=dead_letters)
    application = build_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def intake(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as client:
        yield client


@pytest.fixture
async def produce(settings, topics):
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()

    async def send(message: KafkaMessage) -> None:
        await producer.send_and_wait(topics[0], key=message.key.encode() if isinstance(message.key, str)
                                     else message.key, value=message.value, headers=list(message.headers.items()))

    yield send
    await producer.stop()


def approval_event(event_type: str, approval_id: str, data: dict[str, Any], event_id: str | None = None
                   ) -> tuple[str, KafkaMessage]:
    """A CloudEvent as approval publishes it, written by the official SDK; its data valid."""
    CONTRACTS.validate(event_type, data)
    event_id = event_id or str(uuid7())
    event = SdkCloudEvent(attributes={
        "id": event_id, "source": "/civicgrid/approval", "type": event_type, "subject": approval_id,
        "time": datetime.now(timezone.utc), "datacontenttype": "application/json",
        "dataschema": f"http://127.0.0.1:8000/contracts/events/{event_type}.schema.json",
        "partitionkey": approval_id,
    }, data=data)
    return event_id, to_binary(event, JSONFormat())


def concluded(case_id: str, outcome: str = "approved", approval_id: str | None = None,
              event_id: str | None = None) -> tuple[str, str, KafkaMessage]:
    approval_id = approval_id or str(uuid7())
    data = {"case_id": case_id, "affair_code": DIBAO, "outcome": outcome,
            "reason": None if outcome == "approved" else "家庭收入超过当地低保标准",
            "decided_at": "2026-11-20T10:15:00+08:00", "decided_by": "bureau-approver-3"}
    event_id, message = approval_event(CONCLUDED, approval_id, data, event_id)
    return approval_id, event_id, message


def supplement_requested(case_id: str, approval_id: str, materials: list[str], comment: str = "收入证明需加盖单位公章"
                         ) -> tuple[str, KafkaMessage]:
    return approval_event(SUPPLEMENT_REQUESTED, approval_id, {
        "case_id": case_id, "step": "street_review", "materials": materials, "comment": comment,
        "requested_at": "2026-11-18T09:00:00+08:00", "requested_by": "street-reviewer-7"})


def clerk(token) -> dict[str, str]:
    return token("window_clerk", STREET)


async def routed_case(intake, token) -> str:
    applicant = await register_resident(intake, token)
    r = await intake.post("/v1/cases", headers=clerk(token), json={
        "applicant_id": applicant, "affair_code": DIBAO, "jurisdiction": COMMUNITY,
        "materials_handed_in": DIBAO_MATERIALS})
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    for step in ("accept", "route"):
        r = await intake.post(f"/v1/cases/{case_id}/{step}", headers=clerk(token))
        assert r.status_code == 200, r.text
    return case_id


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 90.0) -> Any:
    """Wait for the consumer (a wait, not a speed assertion: the deadline only ends a hung test)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def case_where(intake, token, case_id: str, condition: Callable[[dict], bool], what: str) -> dict:
    async def check() -> dict | None:
        r = await intake.get(f"/v1/cases/{case_id}", headers=clerk(token))
        assert r.status_code == 200, r.text
        return r.json() if condition(r.json()) else None

    return await eventually(check, what)


async def inbox_status(pool, event_id: str) -> str | None:
    return await pool.fetchval("SELECT status FROM civicgrid_inbox WHERE event_id = $1", event_id)


async def events_of(pool, case_id: str, event_type: str) -> list[dict]:
    rows = await pool.fetch("SELECT data FROM events WHERE stream_id = $1 AND type = $2 ORDER BY version",
                            case_id, event_type)
    return [json.loads(r["data"]) if isinstance(r["data"], str) else dict(r["data"]) for r in rows]


# ---------------------------------------------------------------------- concluded


async def test_an_approved_conclusion_completes_the_case(intake, token, produce):
    case_id = await routed_case(intake, token)
    approval_id, _, message = concluded(case_id)
    await produce(message)
    case = await case_where(intake, token, case_id, lambda c_: c_["status"] == "completed", "the completion")
    assert case["outcome"] == "approved" and case["approval_reference"] == approval_id
    history = (await intake.get(f"/v1/cases/{case_id}/history", headers=token("auditor", STREET))).json()
    [completed] = [e for e in history["events"] if e["type"] == c.COMPLETED]
    assert completed["data"]["decided_at"] == "2026-11-20T10:15:00+08:00"
    assert history["verification"]["valid"] is True


async def test_the_same_event_delivered_twice_completes_the_case_once(intake, token, produce, app, fresh_db):
    pool = app.state.pool
    case_id = await routed_case(intake, token)
    approval_id, event_id, message = concluded(case_id, outcome="refused")
    await produce(message)
    await produce(message)  # redelivered: same CloudEvents id
    # approval sends its decision again under a new event id: the same decision, nothing new
    _, resent_id, resent = concluded(case_id, outcome="refused", approval_id=approval_id)
    await produce(resent)
    # a later event on the same partition: once it is handled, everything before it was
    sentinel_case = await routed_case(intake, token)
    _, _, sentinel = concluded(sentinel_case)
    await produce(sentinel)
    await case_where(intake, token, sentinel_case, lambda c_: c_["status"] == "completed", "the later event")

    assert len(await events_of(pool, case_id, c.COMPLETED)) == 1
    case = (await intake.get(f"/v1/cases/{case_id}", headers=clerk(token))).json()
    assert (case["status"], case["outcome"], case["version"]) == ("completed", "refused", 4)
    assert await pool.fetchval("SELECT count(*) FROM civicgrid_inbox WHERE event_id = $1", event_id) == 1
    assert await inbox_status(pool, resent_id) == "handled"


async def test_a_conclusion_for_a_withdrawn_case_is_handled_and_changes_nothing(intake, token, produce, app):
    case_id = await routed_case(intake, token)
    applicant = (await intake.get(f"/v1/cases/{case_id}", headers=clerk(token))).json()["applicant_id"]
    r = await intake.post(f"/v1/cases/{case_id}/withdraw", headers=clerk(token), json={"applicant_id": applicant})
    assert r.status_code == 200, r.text
    _, event_id, message = concluded(case_id)
    await produce(message)
    await eventually(lambda: inbox_status(app.state.pool, event_id), "the conclusion to be handled")
    assert await inbox_status(app.state.pool, event_id) == "handled"
    case = (await intake.get(f"/v1/cases/{case_id}", headers=clerk(token))).json()
    assert (case["status"], case["outcome"]) == ("withdrawn", None)


async def read_dead_letters(bootstrap: str, topic: str, expect: int, timeout: float = 90.0) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    found: list = []
    try:
        deadline = time.monotonic() + timeout
        while len(found) < expect and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += records
    finally:
        await consumer.stop()
    return found


async def test_a_conclusion_for_an_unknown_case_is_dead_lettered(intake, token, produce, app, settings, topics):
    unknown = str(uuid.uuid4())
    _, event_id, message = concluded(unknown)
    await produce(message)
    [dead] = await read_dead_letters(settings.kafka_bootstrap, topics[1], expect=1)
    headers = read_dlq_headers(dead.headers)
    assert headers["original-topic"] == topics[0]
    # A wrong message, not a passing failure: dead-lettered on the first attempt, no retries.
    assert headers["error-type"] == "civicgrid_intake.entrypoints.consumers.UnusableApprovalEvent"
    assert unknown in headers["error-message"] and headers["attempts"] == "1"
    assert await eventually(lambda: inbox_status(app.state.pool, event_id), "the inbox note") == "dead_lettered"


async def test_other_approval_events_on_the_topic_are_passed_over(intake, token, produce, app):
    case_id = await routed_case(intake, token)
    event = SdkCloudEvent(attributes={
        "id": str(uuid7()), "source": "/civicgrid/approval", "type": "civicgrid.approval.approval.started.v1",
        "subject": str(uuid7()), "datacontenttype": "application/json"}, data={"case_id": case_id})
    await produce(to_binary(event, JSONFormat()))
    _, _, message = concluded(case_id)
    await produce(message)
    await case_where(intake, token, case_id, lambda c_: c_["status"] == "completed", "the completion")
    dead = await app.state.pool.fetchval("SELECT count(*) FROM civicgrid_inbox WHERE status = 'dead_lettered'")
    assert dead == 0


# ---------------------------------------------------------------------- supplement round trip


async def test_supplement_round_trip_after_routing(intake, token, produce, app):
    pool = app.state.pool
    case_id = await routed_case(intake, token)
    approval_id = str(uuid7())
    r = await intake.post(f"/v1/cases/{case_id}/supplements", headers=clerk(token), json={"materials": ["id_card"]})
    assert r.status_code == 409 and r.json()["code"] == "no_supplement_requested"

    _, message = supplement_requested(case_id, approval_id, ["income_statement", "illness_or_disability_proof"])
    await produce(message)
    case = await case_where(intake, token, case_id, lambda c_: c_["awaiting_supplement"], "the request")
    # the window tells the applicant once and completely, with the catalogue's names
    assert [m["code"] for m in case["missing_materials"]] == ["income_statement", "illness_or_disability_proof"]
    assert all(m["name_zh"] for m in case["missing_materials"])
    request = case["supplement_request"]
    assert (request["approval_reference"], request["step"], request["comment"]) == (
        approval_id, "street_review", "收入证明需加盖单位公章")
    queue = (await intake.get("/v1/cases", params={"awaiting_supplement": "true"}, headers=clerk(token))).json()
    assert [(i["id"], i["materials_missing"]) for i in queue["items"]] == [
        (case_id, ["income_statement", "illness_or_disability_proof"])]
    # the window's table is rebuilt from the log exactly as it stands
    rebuilt = await rebuild_case_views(pool, app.state.store)
    assert rebuilt.equal and rebuilt.rows == 1

    # something not asked for is refused and changes nothing
    before = await pool.fetchval("SELECT count(*) FROM events")
    r = await intake.post(f"/v1/cases/{case_id}/supplements", headers=clerk(token), json={"materials": ["photo"]})
    assert r.status_code == 422 and r.json()["code"] == "invalid_materials"
    assert await pool.fetchval("SELECT count(*) FROM events") == before

    r = await intake.post(f"/v1/cases/{case_id}/supplements", headers=clerk(token),
                          json={"materials": ["income_statement"]})
    assert r.status_code == 200, r.text
    assert r.json()["awaiting_supplement"] is True
    assert [m["code"] for m in r.json()["missing_materials"]] == ["illness_or_disability_proof"]
    r = await intake.post(f"/v1/cases/{case_id}/supplements", headers=clerk(token),
                          json={"materials": ["illness_or_disability_proof"]})
    assert r.status_code == 200, r.text
    assert r.json()["awaiting_supplement"] is False and r.json()["missing_materials"] == []
    assert r.json()["supplement_request"]["answered_at"] is not None

    # what approval reads to restart its clock: on the cases topic, valid against contracts
    supplements = await events_of(pool, case_id, c.SUPPLEMENTED)
    assert [s["materials_missing"] for s in supplements] == [["illness_or_disability_proof"], []]
    for data in supplements:
        assert data["approval_reference"] == approval_id
        CONTRACTS.validate(c.SUPPLEMENTED, data)
    topics = await pool.fetch("SELECT DISTINCT topic FROM outbox o JOIN events e ON e.id = o.event_id "
                              "WHERE e.stream_id = $1 AND e.type = $2", case_id, c.SUPPLEMENTED)
    assert [t["topic"] for t in topics] == ["civicgrid.intake.cases"]
    queue = (await intake.get("/v1/cases", params={"awaiting_supplement": "true"}, headers=clerk(token))).json()
    assert queue["items"] == []

    # then approval concludes
    _, _, message = concluded(case_id, approval_id=approval_id)
    await produce(message)
    await case_where(intake, token, case_id, lambda c_: c_["status"] == "completed", "the completion")
    assert (await rebuild_case_views(pool, app.state.store)).equal


async def test_a_conclusion_while_a_supplement_is_awaited_ends_the_wait(intake, token, produce, app):
    case_id = await routed_case(intake, token)
    approval_id = str(uuid7())
    _, message = supplement_requested(case_id, approval_id, ["income_statement"])
    await produce(message)
    _, _, message = concluded(case_id, outcome="refused", approval_id=approval_id)
    await produce(message)
    case = await case_where(intake, token, case_id, lambda c_: c_["status"] == "completed", "the completion")
    assert case["awaiting_supplement"] is False and case["missing_materials"] == []
    row = await app.state.pool.fetchrow("SELECT awaiting_supplement, materials_missing FROM case_view WHERE id = $1",
                                        case_id)
    assert (row["awaiting_supplement"], row["materials_missing"]) == (False, [])
    assert (await rebuild_case_views(app.state.pool, app.state.store)).equal
