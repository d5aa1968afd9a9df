"""statistics over the local stack's real topics: a faust worker (its own consumer group, a
fresh database) reads everything intake and approval have published so far; a clerk's new
case at intake (:8001) then shows in the KPIs of its community, and the figures equal a count
made from the raw records on the topic."""
from __future__ import annotations

import sys
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from civicgrid_common.cloudevents import MalformedEvent, from_kafka_message
from civicgrid_common.identity.tokens import mint_local_token

from civicgrid_statistics.config import StatisticsSettings
from civicgrid_statistics.entrypoints.main import build_app

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services" / "statistics" / "tests"))
from statistics_stack import Worker, end_offsets, wait_for_facts  # noqa: E402
from test_intake_on_the_stack import a_resident_number  # noqa: E402  (tests/e2e is on sys.path)

pytestmark = pytest.mark.integration

INTAKE = "http://127.0.0.1:8001"
STREET, COMMUNITY = "320104001", "320104001001"
CASES = "civicgrid.intake.cases"


def bearer(role: str, jurisdiction: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction)}"}


async def raw_case_counts(settings: StatisticsSettings, community: str) -> dict[str, int]:
    """registered / accepted / refused in `community`, counted from the records themselves."""
    ends = await end_offsets(settings, [CASES])
    consumer = AIOKafkaConsumer(CASES, bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    where: dict[str, str] = {}
    kinds: dict[str, set[str]] = {"accepted": set(), "refused": set()}
    seen: set[str] = set()
    try:
        remaining = dict(ends)
        while any(v > 0 for v in remaining.values()):
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for r in records:
                    if r.offset >= ends.get((tp.topic, tp.partition), 0):
                        continue
                    remaining[(tp.topic, tp.partition)] = ends[(tp.topic, tp.partition)] - r.offset - 1
                    try:
                        e = from_kafka_message(r.headers, r.key, r.value)
                    except MalformedEvent:
                        continue
                    if e.id in seen:
                        continue
                    seen.add(e.id)
                    if e.type == "civicgrid.intake.case.registered.v1":
                        where[e.subject] = e.data["jurisdiction"]
                    for kind in kinds:
                        if e.type == f"civicgrid.intake.case.{kind}.v1":
                            kinds[kind].add(e.subject)
    finally:
        await consumer.stop()
    mine = {s for s, j in where.items() if j.startswith(community)}
    return {"registered": len(mine), **{k: len(v & mine) for k, v in kinds.items()}}


async def test_a_new_case_at_intake_shows_in_its_communitys_kpis(fresh_db, tmp_path):
    settings = StatisticsSettings(pg_database=fresh_db.pg_database, faust_app_id=f"stats-e2e-{uuid.uuid4().hex[:8]}",
                                  faust_datadir=tmp_path / "faust", run_worker=False, outbox_relay=False,
                                  faust_session_timeout=10.0)
    worker = Worker(settings, tmp_path / "worker.log")
    worker.start()
    app = build_app(settings)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://statistics") as stats, \
                httpx.AsyncClient(base_url=INTAKE, timeout=30) as intake:
            try:
                await intake.get("/healthz")
            except httpx.ConnectError:
                pytest.fail("intake of the local stack is not running on :8001; run `make up`", pytrace=False)
            await wait_for_facts(settings, await end_offsets(settings, settings.topics), [worker], patience=300)
            leader = bearer("leader", STREET)
            before = (await stats.get("/v1/kpis/cases", params={"jurisdiction": COMMUNITY}, headers=leader)).json()

            clerk = bearer("window_clerk", STREET)
            r = await intake.post("/v1/applicants", headers=clerk, json={
                "kind": "resident", "identity_number": a_resident_number(), "name": "测试居民",
                "household_registration_code": STREET, "residence_community_code": COMMUNITY})
            assert r.status_code in (200, 201), r.text
            r = await intake.post("/v1/cases", headers=clerk, json={
                "applicant_id": r.json()["applicant_id"], "affair_code": "residence.residence_proof",
                "jurisdiction": COMMUNITY, "channel": "window",
                "materials_handed_in": ["id_card", "residence_proof", "purpose_note"]})
            assert r.status_code == 201, r.text
            r = await intake.post(f"/v1/cases/{r.json()['id']}/accept", headers=clerk, json={})
            assert r.status_code == 200, r.text

            # intake's relay publishes; then the worker catches up with the new end of the topics.
            raw = await raw_case_counts(settings, COMMUNITY)
            while (raw["registered"] < before["totals"]["registered"] + 1
                   or raw["accepted"] < before["totals"]["accepted"] + 1):
                raw = await raw_case_counts(settings, COMMUNITY)
            await wait_for_facts(settings, await end_offsets(settings, settings.topics), [worker], patience=300)
            after = (await stats.get("/v1/kpis/cases", params={"jurisdiction": COMMUNITY}, headers=leader)).json()
    finally:
        worker.stop()
    assert after["totals"]["registered"] == before["totals"]["registered"] + 1
    assert after["totals"]["accepted"] == before["totals"]["accepted"] + 1
    assert {k: after["totals"][k] for k in raw} == raw
