"""approval over HTTP on a fresh database: a 低保 case from routing to a sealed, verified
archive; every refusal is problem+json and changes nothing; inbox order, filters and counts;
workflow versions; seals that are forged, copied or tampered with fail verification."""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta

import pytest

from civicgrid_common.eventstore import canonical_content, chain_hash

from civicgrid_approval.entrypoints.consumers import intake_cases_handler

from approval_builders import COMMUNITY, STREET
from approval_flows import DIBAO, act, ce, event_count, route_case


async def test_a_dibao_case_runs_community_street_civil_affairs_bureau_to_a_verified_archive(
        api, approval_app, people, pool):
    aid = await route_case(approval_app)
    r = await api.get(f"/v1/approvals/{aid}", headers=people["community"])
    assert r.status_code == 200, r.text
    assert r.json()["task"]["step"] == "community_review" and r.json()["workflow_version"] == 1

    for who, step in (("community", "community_review"), ("street", "street_review"),
                      ("civil_system", "income_check"), ("bureau", "bureau_decision")):
        inbox = (await api.get("/v1/approvals/inbox", headers=people[who])).json()
        assert [i["id"] for i in inbox["items"]] == [aid], (who, inbox)
        r = await act(api, people[who], aid, comment=f"{step} 同意", task=f"{step}.{inbox['items'][0]['task'].split('.')[1]}")
        assert r.status_code == 200, r.text
        assert (await api.get("/v1/approvals/inbox", headers=people[who])).json()["items"] == []
    final = r.json()
    assert final["status"] == "approved" and final["task"] is None
    assert [m["step"] for m in final["moves"]] == ["community_review", "street_review", "income_check",
                                                   "bureau_decision"]
    assert final["moves"][2]["seal"]["decision"]["signer"] == "department:civil_affairs"

    concluded = await pool.fetchrow("SELECT data FROM events WHERE stream_id = $1 AND type = $2", aid,
                                    "civicgrid.approval.approval.concluded.v1")
    data = json.loads(concluded["data"]) if isinstance(concluded["data"], str) else concluded["data"]
    assert data["outcome"] == "approved" and data["decided_by"] == "ba-zhao"
    topics = {r["topic"] for r in await pool.fetch("SELECT topic FROM outbox")}
    assert {"civicgrid.approval.approvals", "civicgrid.departments.civil_affairs.tasks"} <= topics

    archive = (await api.get(f"/v1/approvals/{aid}/archive", headers=people["auditor"])).json()
    assert archive["digest"] == data["archive_digest"]
    assert [m["actor_name"] for m in archive["record"]["moves"]] == ["王社区", "李街道", None, "赵局"]
    verification = (await api.get(f"/v1/approvals/{aid}/verify", headers=people["auditor"])).json()
    assert verification["valid"] is True, verification
    assert {c["check"] for c in verification["checks"]} == {"hash_chain", "seal_matches_event", "seal_signature",
                                                            "final_seal", "archive"}
    # the auditor's history: every input of each hash, so the chain recomputes from the answer
    history = (await api.get(f"/v1/approvals/{aid}/history", headers=people["auditor"])).json()
    assert history["verification"] == {"valid": True, "checked": len(history["events"]), "failures": []}
    previous = None
    for e in history["events"]:
        assert e["stream_id"] == aid and e["prev_hash"] == previous
        content = canonical_content(
            id=uuid.UUID(e["id"]), stream_id=e["stream_id"], stream_type=e["stream_type"], version=e["version"],
            schema_revision=e["schema_revision"], type=e["type"], data=e["data"], metadata=e["metadata"],
            recorded_at=datetime.fromisoformat(e["recorded_at"]))
        assert chain_hash(content, previous) == e["hash"]
        previous = e["hash"]
    assert sum(e["type"] == "civicgrid.approval.approval.acted.v1" for e in history["events"]) == 4
    # auditors only: a reviewer who may see the approval may not read its raw events
    refused = await api.get(f"/v1/approvals/{aid}/history", headers=people["street"])
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    keys = (await api.get("/v1/seals/keys")).json()["keys"]
    assert {k["owner"] for k in keys} == {"cr-wang", "sr-li", "department:civil_affairs", "ba-zhao"}
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" for k in keys)
    counts = (await api.get("/v1/approvals/inbox", headers=people["street"])).json()["counts"]
    assert counts["completed"] == 1


@pytest.mark.parametrize("who,body,status,code", [
    ("street", {"action": "approve", "comment": "x"}, 403, None),
    ("other_community", {"action": "approve", "comment": "x"}, 404, None),  # not even known to exist
    ("community", {"action": "approve", "comment": "x", "expected_version": 7}, 409, None),
    ("community", {"action": "approve", "comment": "x", "task": "community_review.2"}, 409, "task-not-current"),
    ("community", {"action": "send_back", "comment": "x"}, 409, "first-step"),
    ("community", {"action": "extend", "comment": "x"}, 422, "new-due-date-required"),
    ("community", {"action": "approve", "comment": ""}, 422, None),
    ("community", {"action": "dance", "comment": "x"}, 422, None),
    ("community", {"action": "approve", "comment": "x", "finish": True}, 409, "may-not-finish"),
])
async def test_refusals_are_problems_and_change_nothing(api, approval_app, people, token, pool, who, body, status,
                                                        code):
    people = {**people, "other_community": token("community_reviewer", "320104001002")}
    aid = await route_case(approval_app)
    before = await event_count(pool)
    r = await api.post(f"/v1/approvals/{aid}/actions", json=body, headers=people[who])
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if code:
        assert r.json()["code"] == code
    if status == 422:
        assert r.json()["errors"]
    assert await event_count(pool) == before


async def test_a_duplicate_submission_is_replayed_not_repeated(api, approval_app, people, pool):
    aid = await route_case(approval_app)
    headers = {**people["community"], "Idempotency-Key": "act-1"}
    first = await act(api, headers, aid)
    before = await event_count(pool)
    again = await act(api, headers, aid)
    assert again.status_code == first.status_code == 200 and again.json() == first.json()
    assert await event_count(pool) == before
    # Without a key the same move is stale: the task moved on.
    stale = await act(api, people["community"], aid, task="community_review.1")
    assert stale.status_code == 409


async def test_the_inbox_puts_the_green_channel_first_then_the_oldest_and_filters(api, approval_app, people, clock):
    old = await route_case(approval_app)
    clock.advance(hours=1)
    newer = await route_case(approval_app)
    clock.advance(hours=1)
    urgent = await route_case(approval_app, green=True)
    other_street = await route_case(approval_app, jurisdiction="320104002001")
    inbox = (await api.get("/v1/approvals/inbox", headers=people["community"])).json()
    assert [i["id"] for i in inbox["items"]] == [urgent, old, newer]
    assert other_street not in [i["id"] for i in inbox["items"]]
    page = (await api.get("/v1/approvals/inbox?limit=2", headers=people["community"])).json()
    assert page["total"] == 3 and page["next_offset"] == 2
    assert (await api.get("/v1/approvals/inbox?level=street", headers=people["community"])).json()["total"] == 0
    await act(api, people["community"], old, "refuse", comment="不符合条件")
    listed = (await api.get("/v1/approvals?status=refused", headers=people["street"])).json()
    assert [i["id"] for i in listed["items"]] == [old]
    assert (await api.get("/v1/approvals?status=running", headers=people["street"])).json()["total"] == 2
    counts = (await api.get("/v1/approvals/inbox", headers=people["community"])).json()["counts"]
    assert counts["returned"] == 1


async def test_supplement_extend_escalate_send_back_through_the_api(api, approval_app, people, token):
    aid = await route_case(approval_app)
    r = await act(api, people["community"], aid, "request_supplement", comment="请补交收入证明",
                  materials=["income_proof"])
    assert r.json()["status"] == "suspended"
    assert (await act(api, people["community"], aid)).status_code == 409
    handle = intake_cases_handler(approval_app.state.approvals)
    case_id = r.json()["case_id"]
    async with approval_app.state.pool.acquire() as conn, conn.transaction():
        await handle(conn, ce("civicgrid.intake.case.supplemented.v1", case_id, {
            "materials_added": ["income_proof"], "materials_missing": [], "actor": "clerk-1"}))
    assert (await api.get(f"/v1/approvals/{aid}", headers=people["community"])).json()["status"] == "running"
    due = date.fromisoformat((await api.get(f"/v1/approvals/{aid}", headers=people["community"])).json()["task"]["due_date"])
    r = await act(api, people["community"], aid, "extend", comment="需入户调查", new_due_date=str(due + timedelta(days=5)))
    assert r.json()["task"]["due_date"] == str(due + timedelta(days=5))
    await act(api, people["community"], aid)
    r = await act(api, people["street"], aid, "escalate", comment="情况复杂，请领导定")
    assert r.json()["task"]["escalated"] is True
    assert (await act(api, people["street"], aid)).status_code == 403
    street_leader = token("leader", STREET, subject="ld-street")
    r = await act(api, street_leader, aid, "send_back", comment="请社区再核实")
    assert r.json()["task"]["step"] == "community_review"
    assert r.json()["task"]["key"] == "community_review.3"


async def test_workflows_are_versioned_and_changed_only_by_their_bureau(api, approval_app, people, token):
    running = await route_case(approval_app)
    current = (await api.get(f"/v1/workflows/{DIBAO}", headers=people["leader"])).json()
    definition = current["definition"]
    definition["steps"][0]["time_limit_working_days"] = 3
    other = token("leader", "320104", department="housing")
    assert (await api.put(f"/v1/workflows/{DIBAO}", json=definition, headers=other)).status_code == 403
    assert (await api.put(f"/v1/workflows/{DIBAO}", json=definition, headers=people["community"])).status_code == 403
    bad = json.loads(json.dumps(definition))
    bad["steps"][1]["level"] = "province"
    bad["steps"][0]["time_limit_working_days"] = 0
    r = await api.put(f"/v1/workflows/{DIBAO}", json=bad, headers=people["leader"])
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json()["errors"]} >= {"#/steps/1/level", "#/steps/0/time_limit_working_days"}
    r = await api.put(f"/v1/workflows/{DIBAO}", json=definition, headers=people["leader"])
    assert r.status_code == 200 and r.json()["version"] == 2
    newer = await route_case(approval_app)
    assert (await api.get(f"/v1/approvals/{running}", headers=people["auditor"])).json()["workflow_version"] == 1
    assert (await api.get(f"/v1/approvals/{newer}", headers=people["auditor"])).json()["workflow_version"] == 2
    v1 = (await api.get(f"/v1/workflows/{DIBAO}?version=1", headers=people["leader"])).json()
    assert v1["definition"]["steps"][0]["time_limit_working_days"] == 5
    listed = (await api.get("/v1/workflows", headers=people["auditor"])).json()["items"]
    assert len(listed) == 15


async def test_a_redelivered_routed_event_does_not_start_a_second_approval(approval_app, pool):
    aid = await route_case(approval_app)
    case_id = (await pool.fetchval("SELECT case_id FROM approval_view WHERE id = $1", aid))
    handle = intake_cases_handler(approval_app.state.approvals)
    async with pool.acquire() as conn, conn.transaction():
        await handle(conn, ce("civicgrid.intake.case.routed.v1", case_id, {"routing": {}, "level": "district"}))
    assert await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", aid) == 1


async def test_a_withdrawn_case_cancels_its_approval(api, approval_app, people, pool):
    aid = await route_case(approval_app)
    case_id = await pool.fetchval("SELECT case_id FROM approval_view WHERE id = $1", aid)
    async with pool.acquire() as conn, conn.transaction():
        await intake_cases_handler(approval_app.state.approvals)(conn, ce(
            "civicgrid.intake.case.withdrawn.v1", case_id, {"withdrawn_at": "2026-03-02T10:00:00+08:00"}))
    assert (await api.get(f"/v1/approvals/{aid}", headers=people["auditor"])).json()["status"] == "cancelled"
    assert (await act(api, people["community"], aid)).status_code == 409


async def test_an_access_application_is_reviewed_by_the_office_and_approved_by_the_district(api, token, pool):
    applicant = token("bureau_approver", "320104", department="market_regulation")
    body = {"department": "market_regulation", "title": "食品安全宣传牌进社区", "purpose": "在每个社区设置宣传牌",
            "work_kind": "signboard", "documents": [{"name": "关于设置宣传牌的函.pdf", "sha256": "b" * 64}],
            "communities": [COMMUNITY, "320104001002"], "cost_bearer": "区市场监管局", "valid_from": "2026-03-01",
            "valid_until": "2026-12-31"}
    bad = await api.post("/v1/access-applications", json={**body, "communities": ["32010400"]}, headers=applicant)
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "#/communities/0"
    other = await api.post("/v1/access-applications", json=body, headers=token("bureau_approver", "320104",
                                                                                 department="housing"))
    assert other.status_code == 403
    r = await api.post("/v1/access-applications", json=body, headers=applicant)
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    office = token("bureau_approver", "320104", department="community_office")
    assert (await act(api, office, aid, comment="材料齐全，符合准入条件")).status_code == 200
    district = token("leader", "320104", department="district_office")
    r = await act(api, district, aid, comment="同意准入")
    assert r.json()["status"] == "approved"
    topic = await pool.fetchval("SELECT o.topic FROM outbox o JOIN events e ON e.id = o.event_id "
                                "WHERE e.type = 'civicgrid.approval.access.decided.v1'")
    assert topic == "civicgrid.approval.access"
    community = token("community_reviewer", COMMUNITY)
    grants = (await api.get(f"/v1/access-grants?community={COMMUNITY}&on=2026-06-01", headers=community)).json()
    assert [(g["department"], g["work_kind"]) for g in grants["items"]] == [("market_regulation", "signboard")]
    assert (await api.get("/v1/access-grants?community=320104002001", headers=community)).json()["items"] == []
    assert (await api.get(f"/v1/access-grants?community={COMMUNITY}&on=2027-01-01",
                          headers=community)).json()["items"] == []


# ------------------------------------------------------------------ seals under attack


async def concluded_case(api, approval_app, people) -> str:
    aid = await route_case(approval_app)
    for who in ("community", "street", "civil_system", "bureau"):
        assert (await act(api, people[who], aid)).status_code == 200
    return aid


async def rewrite(pool, stream_id: str, version: int, change, *, rehash: bool) -> None:
    """What only a superuser could do: change a stored event (and, if `rehash`, recompute the
    hash chain from there on so that only the seals can tell)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_update_delete")
        row = await conn.fetchrow("SELECT data FROM events WHERE stream_id = $1 AND version = $2", stream_id, version)
        data = json.loads(row["data"]) if isinstance(row["data"], str) else dict(row["data"])
        change(data)
        await conn.execute("UPDATE events SET data = $3::jsonb WHERE stream_id = $1 AND version = $2",
                           stream_id, version, json.dumps(data, ensure_ascii=False))
        if rehash:
            rows = await conn.fetch("SELECT * FROM events WHERE stream_id = $1 ORDER BY version", stream_id)
            prev = None
            for r in rows:
                content = canonical_content(
                    id=r["id"], stream_id=r["stream_id"], stream_type=r["stream_type"], version=r["version"],
                    schema_revision=r["schema_revision"], type=r["type"],
                    data=json.loads(r["data"]) if isinstance(r["data"], str) else r["data"],
                    metadata=json.loads(r["metadata"]) if isinstance(r["metadata"], str) else r["metadata"],
                    recorded_at=r["recorded_at"])
                h = chain_hash(content, prev)
                await conn.execute("UPDATE events SET hash = $2, prev_hash = $3 WHERE id = $1", r["id"], h, prev)
                prev = h
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_refuse_update_delete")


async def failed_checks(api, people, aid) -> set[str]:
    v = (await api.get(f"/v1/approvals/{aid}/verify", headers=people["auditor"])).json()
    assert v["valid"] is False
    return {c["check"] for c in v["checks"] if not c["passed"]}


async def test_a_changed_stored_event_fails_the_hash_chain(api, approval_app, people, pool):
    aid = await concluded_case(api, approval_app, people)
    await rewrite(pool, aid, 2, lambda d: d.update(comment="改过的意见"), rehash=False)
    assert "hash_chain" in await failed_checks(api, people, aid)


async def test_a_forged_signature_fails_even_with_a_recomputed_hash_chain(api, approval_app, people, pool):
    aid = await concluded_case(api, approval_app, people)

    def forge(d):
        sig = d["seal"]["signature"]
        d["seal"]["signature"] = ("A" if sig[0] != "A" else "B") + sig[1:]

    await rewrite(pool, aid, 2, forge, rehash=True)
    failed = await failed_checks(api, people, aid)
    assert "seal_signature" in failed and "hash_chain" not in failed


async def test_a_changed_outcome_under_an_old_seal_fails(api, approval_app, people, pool):
    aid = await concluded_case(api, approval_app, people)
    await rewrite(pool, aid, 2, lambda d: d.update(outcome="refused", action="refuse"), rehash=True)
    assert "seal_matches_event" in await failed_checks(api, people, aid)


async def test_a_seal_copied_from_another_approval_fails(api, approval_app, people, pool):
    victim = await concluded_case(api, approval_app, people)
    donor = await concluded_case(api, approval_app, people)
    donor_seal = json.loads(await pool.fetchval(
        "SELECT data->>'seal' FROM events WHERE stream_id = $1 AND version = 2", donor))

    await rewrite(pool, victim, 2, lambda d: d.update(seal=donor_seal), rehash=True)
    failed = await failed_checks(api, people, victim)
    assert "seal_matches_event" in failed and "hash_chain" not in failed


async def test_a_seal_copied_from_another_step_fails(api, approval_app, people, pool):
    aid = await concluded_case(api, approval_app, people)
    street_seal = json.loads(await pool.fetchval(
        "SELECT data->>'seal' FROM events WHERE stream_id = $1 AND version = 3", aid))
    await rewrite(pool, aid, 2, lambda d: d.update(seal=street_seal), rehash=True)
    assert "seal_matches_event" in await failed_checks(api, people, aid)


async def test_the_views_rebuilt_from_the_log_equal_the_live_ones(api, approval_app, people, pool):
    from civicgrid_approval.adapters.approval_views import rebuild_views

    done = await route_case(approval_app)
    for who in ("community", "street", "civil_system", "bureau"):
        await act(api, people[who], done)
    running = await route_case(approval_app, green=True)
    await act(api, people["community"], running, "extend", comment="入户", new_due_date="2026-04-30")

    async def snapshot():
        return ([dict(r) for r in await pool.fetch("SELECT * FROM approval_view ORDER BY id")],
                [dict(r) for r in await pool.fetch("SELECT * FROM reviewer_counts ORDER BY subject, action")])

    live = await snapshot()
    await pool.execute("UPDATE approval_view SET status = 'drifted'")
    assert await rebuild_views(pool, approval_app.state.store) == 2
    assert await snapshot() == live


async def test_two_reviewers_acting_at_once_one_wins_the_other_gets_409(api, approval_app, people, token, pool):
    import asyncio

    aid = await route_case(approval_app)
    colleague = token("community_reviewer", COMMUNITY, subject="cr-zhang")
    answers = await asyncio.gather(act(api, people["community"], aid, task="community_review.1"),
                                   act(api, colleague, aid, "refuse", comment="不符合", task="community_review.1"))
    assert sorted(r.status_code for r in answers) == [200, 409]
    assert await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1 AND type = "
                               "'civicgrid.approval.approval.acted.v1'", aid) == 1
