"""Complaints over the staff API, on the real app and the real PostgreSQL: a phone complaint
from filing to rating, every refusal a problem+json that changes nothing, the list's filters
and scope, and the read model rebuilt from the log equal to the live one."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from civicgrid_common.calendar import CHINA_TZ

from civicgrid_intake.adapters.complaint_views import rebuild_complaint_views, snapshot_tables
from civicgrid_common.eventstore import EventStore
from civicgrid_intake.config import IntakeSettings

pytestmark = pytest.mark.integration

STREET = "320104001"  # Huaihai Road street
COMMUNITY = "320104001001"
OTHER_STREET = "320104002"

PHONE_CALL = {
    "category": "environmental_protection",
    "channel": "phone",
    "urgency": "general",
    "jurisdiction": COMMUNITY,
    "location": {"address": "淮海路 30 号 餐馆后门", "lat": 32.0312, "long": 118.7895},
    "description": "餐馆油烟直排，晚上六点到十点最严重",
    "anonymous": True,
}


async def event_count(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM events")


async def file(intake, token, body=PHONE_CALL, role="window_clerk", where=STREET):
    r = await intake.post("/v1/complaints", json=body, headers=token(role, where))
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_phone_complaint_goes_from_filing_to_rating(intake, token, pool):
    clerk = token("window_clerk", STREET)
    department = token("department", "320104", department="environmental_protection")
    filed = await file(intake, token)
    assert filed["status"] == "received" and filed["channel"] == "phone" and filed["applicant_id"] is None
    cid = filed["id"]
    # 7 working days for a general request, to the end of the day
    assert filed["feedback_due_at"].endswith("T23:59:59+08:00")

    r = await intake.post(f"/v1/complaints/{cid}/route", json={"kind": "department",
                                                              "department": "environmental_protection"},
                          headers=clerk)
    assert r.status_code == 200, r.text
    assert r.json()["routing"] == {"kind": "department", "department": "environmental_protection"}
    r = await intake.post(f"/v1/complaints/{cid}/response", json={}, headers=department)
    assert r.status_code == 200, r.text and r.json()["status"] == "responded"
    r = await intake.post(f"/v1/complaints/{cid}/answer",
                          json={"answer": "已责令加装油烟净化器，复查合格", "resolved": True}, headers=department)
    assert r.status_code == 200, r.text
    r = await intake.post(f"/v1/complaints/{cid}/close", headers=clerk)
    assert r.status_code == 200 and r.json()["status"] == "closed"
    r = await intake.post(f"/v1/complaints/{cid}/rating", json={"rating": "satisfied"}, headers=clerk)
    assert r.status_code == 200, r.text

    shown = (await intake.get(f"/v1/complaints/{cid}", headers=clerk)).json()
    assert shown["status"] == "rated" and shown["ratings"] == ["satisfied"] and shown["resolved"] is True
    types = [t.rsplit(".", 2)[-2] for t in await pool.fetch(
        "SELECT type FROM events WHERE stream_id = $1 ORDER BY version", cid) for t in [t["type"]]]
    assert types == ["received", "routed", "responded", "answered", "closed", "rated"]
    listed = (await intake.get("/v1/complaints", params={"status": "rated"}, headers=clerk)).json()
    assert [i["id"] for i in listed["items"]] == [cid] and listed["items"][0]["rating"] == "satisfied"


async def test_a_bad_review_reopens_it_once(intake, token):
    clerk = token("window_clerk", STREET)
    cid = (await file(intake, token))["id"]
    for path, body in (("route", {"kind": "street"}), ("response", {}),
                       ("answer", {"answer": "已协调", "resolved": False}), ("close", None)):
        r = await intake.post(f"/v1/complaints/{cid}/{path}", json=body, headers=clerk)
        assert r.status_code == 200, (path, r.text)
    r = await intake.post(f"/v1/complaints/{cid}/rating", json={"rating": "dissatisfied"}, headers=clerk)
    assert r.json()["status"] == "reopened" and r.json()["round"] == 2


async def test_a_grid_worker_files_for_a_resident_in_their_grid(intake, token):
    grid = COMMUNITY + "003"
    body = {**PHONE_CALL, "channel": "grid_worker", "jurisdiction": grid}
    filed = await file(intake, token, body, role="grid_worker", where=grid)
    assert filed["channel"] == "grid_worker" and filed["jurisdiction"] == grid


async def test_a_named_complaint_needs_a_registered_applicant(intake, token, pool):
    before = await event_count(pool)
    body = {**PHONE_CALL, "anonymous": False, "applicant_id": "ap-" + "0" * 32}
    r = await intake.post("/v1/complaints", json=body, headers=token("window_clerk", STREET))
    assert r.status_code == 422
    assert r.json()["code"] == "complaint.unknown_applicant"
    assert r.json()["errors"][0]["pointer"] == "#/applicant_id"
    assert await event_count(pool) == before


@pytest.mark.parametrize(
    "role, where, body, status, where_in_body",
    [
        ("auditor", STREET, PHONE_CALL, 403, None),  # wrong role
        ("window_clerk", OTHER_STREET, PHONE_CALL, 403, None),  # someone else's jurisdiction
        ("window_clerk", STREET, {**PHONE_CALL, "category": "noise"}, 422, "#/category"),
        ("window_clerk", STREET, {**PHONE_CALL, "urgency": "whenever"}, 422, "#/urgency"),
        ("window_clerk", STREET, {**PHONE_CALL, "channel": "open311"}, 422, "#/channel"),
        ("grid_worker", STREET, PHONE_CALL, 422, "#/channel"),  # a grid worker files as grid_worker
        ("window_clerk", STREET, {**PHONE_CALL, "jurisdiction": "3201"}, 422, "#/jurisdiction"),
        # swapped: a latitude of 118 is no latitude at all
        ("window_clerk", STREET, {**PHONE_CALL, "location": {"lat": 118.79, "long": 32.03}}, 422, "#/location/lat"),
        ("window_clerk", STREET, {**PHONE_CALL, "location": {}}, 422, "#/location"),
        ("window_clerk", STREET, {**PHONE_CALL, "location": {"lat": "32.03", "long": 118.79}}, 422,
         "#/location/lat"),
        ("window_clerk", STREET, {**PHONE_CALL, "anonymous": "yes"}, 422, "#/anonymous"),
        ("window_clerk", STREET, {**PHONE_CALL, "surprise": 1}, 422, "#/surprise"),
    ],
)
async def test_a_bad_filing_is_refused_and_changes_nothing(intake, token, pool, role, where, body, status,
                                                           where_in_body):
    before = await event_count(pool)
    r = await intake.post("/v1/complaints", json=body, headers=token(role, where))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if where_in_body:
        assert where_in_body in [e.get("pointer") for e in r.json()["errors"]], r.json()
    assert await event_count(pool) == before


async def test_malformed_json_is_a_400(intake, token, pool):
    before = await event_count(pool)
    r = await intake.post("/v1/complaints", content=b'{"category": "planning",',
                          headers={**token("window_clerk", STREET), "content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    assert await event_count(pool) == before


async def test_actions_are_refused_out_of_turn_out_of_scope_and_to_others(intake, token, pool):
    clerk = token("window_clerk", STREET)
    cid = (await file(intake, token))["id"]
    before = await event_count(pool)
    tries = [
        # the domain: not yet answered, cannot close
        ("close", None, clerk, 409, None),
        # someone else's street sees and does nothing (not even that it exists)
        ("route", {"kind": "street"}, token("window_clerk", OTHER_STREET), 404, None),
        # a department it was not routed to: none it may know of
        ("response", {}, token("department", "320104", department="housing"), 404, None),
        # a grid worker does not dispatch
        ("route", {"kind": "street"}, token("grid_worker", COMMUNITY), 403, None),
        ("route", {"kind": "lead", "lead": "housing", "co_departments": []}, clerk, 422, "#"),
        ("route", {"kind": "department", "department": "Housing Bureau"}, clerk, 422, "#"),
        ("rating", {"rating": "great"}, clerk, 422, "#/rating"),
    ]
    for path, body, headers, status, pointer in tries:
        r = await intake.post(f"/v1/complaints/{cid}/{path}", json=body, headers=headers)
        assert r.status_code == status, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        if pointer:
            assert pointer in [e.get("pointer") for e in r.json()["errors"]]
    # routed to the street, the street answers; naming a department it was not routed to is refused
    await intake.post(f"/v1/complaints/{cid}/route", json={"kind": "street"}, headers=clerk)
    r = await intake.post(f"/v1/complaints/{cid}/response", json={"by": "housing"}, headers=clerk)
    assert r.status_code == 422 and r.json()["code"] == "complaint.unit_not_routed"
    assert await event_count(pool) == before + 1  # only the routing
    r = await intake.get(f"/v1/complaints/{cid}", headers=token("window_clerk", OTHER_STREET))
    assert r.status_code == 404
    assert (await intake.get("/v1/complaints/cp-nothing", headers=clerk)).status_code == 404


async def test_the_list_is_scoped_filtered_and_paged(intake, token):
    clerk = token("window_clerk", STREET)
    first = await file(intake, token)
    second = await file(intake, token, {**PHONE_CALL, "category": "public_order",
                                        "jurisdiction": "320104001002"})
    elsewhere = await file(intake, token, {**PHONE_CALL, "jurisdiction": OTHER_STREET + "001"},
                           where=OTHER_STREET)

    async def ids(headers=clerk, **params):
        r = await intake.get("/v1/complaints", params=params, headers=headers)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert await ids() == [first["id"], second["id"]]  # oldest first, not the other street's
    assert await ids(category="public_order") == [second["id"]]
    assert await ids(community=COMMUNITY) == [first["id"]]
    assert await ids(limit=1) == [first["id"]] and await ids(limit=1, offset=1) == [second["id"]]
    today = datetime.now(CHINA_TZ).date()
    assert await ids(received_from=today.isoformat()) == [first["id"], second["id"]]
    assert await ids(received_to=(today - timedelta(days=1)).isoformat()) == []
    assert await ids(status="routed") == []
    assert await ids(token("window_clerk", "320104")) == [first["id"], second["id"], elsewhere["id"]]
    # refusals
    r = await intake.get("/v1/complaints", params={"community": OTHER_STREET + "001"}, headers=clerk)
    assert r.status_code == 403
    for params in ({"status": "lost"}, {"category": "noise"}, {"limit": 0}, {"received_from": "yesterday"}):
        r = await intake.get("/v1/complaints", params=params, headers=clerk)
        assert r.status_code == 422, params
        assert r.json()["errors"][0]["field"] == next(iter(params)), r.json()


async def test_rebuilt_views_equal_the_live_ones(intake, token, fresh_db, pool):
    clerk = token("window_clerk", STREET)
    cid = (await file(intake, token))["id"]
    await file(intake, token, {**PHONE_CALL, "category": "planning"})
    for path, body in (("route", {"kind": "lead", "lead": "planning_construction", "co_departments": ["urban_management"]}),
                       ("response", {"by": "planning_construction"}), ("answer", {"answer": "已答复", "resolved": True})):
        r = await intake.post(f"/v1/complaints/{cid}/{path}", json=body, headers=clerk)
        assert r.status_code == 200, r.text
    live = await snapshot_tables(pool)
    assert len(live["complaint_view"]) == 2 and len(live["complaint_event_view"]) == 5
    store = EventStore.for_service(pool, IntakeSettings(pg_database=fresh_db.pg_database))
    await pool.execute("UPDATE complaint_view SET status = 'tampered'")  # a broken model, then rebuilt
    assert await rebuild_complaint_views(pool, store) == 2
    assert await snapshot_tables(pool) == live


async def test_a_department_sees_only_what_was_routed_to_it(intake, token):
    clerk = token("window_clerk", STREET)
    routed = (await file(intake, token))["id"]
    await file(intake, token)  # not routed anywhere
    r = await intake.post(f"/v1/complaints/{routed}/route", headers=clerk,
                          json={"kind": "lead", "lead": "environmental_protection", "co_departments": ["health"]})
    assert r.status_code == 200, r.text
    for department, expected in (("environmental_protection", [routed]), ("health", [routed]), ("housing", [])):
        headers = token("department", "320104", department=department)
        listed = (await intake.get("/v1/complaints", headers=headers)).json()
        assert [i["id"] for i in listed["items"]] == expected, department
        status = (await intake.get(f"/v1/complaints/{routed}", headers=headers)).status_code
        assert status == (200 if expected else 404), department
