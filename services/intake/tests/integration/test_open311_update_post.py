"""FixMyStreet's POST servicerequestupdates: a resident rates a closed Open311 request through
the app (form-encoded, api_key, the open311-adapter's fields; the answer lists the update_id
in XML or JSON); refusals in the spec's error format change nothing."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from civicgrid_intake.entrypoints.open311.parsing import parse_update_post
from civicgrid_intake.entrypoints.open311.model import Jurisdiction, Open311Failure

from open311_form import FORM
from test_open311_api import API, DISTRICT, event_count, post

pytestmark = pytest.mark.integration

JURISDICTION = Jurisdiction(DISTRICT, api_keys=frozenset({FORM["api_key"]}))
UPDATE = {"api_key": FORM["api_key"], "jurisdiction_id": DISTRICT, "update_id": "fms-comment-4711",
          "status": "FIXED", "updated_datetime": "2026-11-23T18:05:00+08:00", "description": "修好了，谢谢",
          "email": "resident@example.com", "first_name": "三", "last_name": "张"}


def form(**changes) -> list[tuple[str, str]]:
    return [(k, v) for k, v in {**UPDATE, "service_request_id": "cp-1", **changes}.items() if v is not None]


@pytest.mark.parametrize("status, rating, expected", [
    ("FIXED", None, "satisfied"), ("closed", None, "satisfied"), ("REOPEN", None, "dissatisfied"),
    ("OPEN", None, "dissatisfied"), ("OPEN", "very_dissatisfied", "very_dissatisfied"),
    ("FIXED", "very_satisfied", "very_satisfied"),
])
def test_the_status_or_the_rating_gives_the_residents_rating(status, rating, expected) -> None:
    update = parse_update_post(form(status=status, rating=rating), JURISDICTION)
    assert update.rating == expected and update.client_update_id == "fms-comment-4711"
    assert update.updated_datetime.utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize("changes, status, fragment", [
    ({"api_key": "wrong"}, 403, "api_key"),
    ({"api_key": None}, 403, "api_key"),
    ({"service_request_id": None}, 400, "service_request_id was not provided"),
    ({"update_id": None, "description": None}, 400, "update_id was not provided"),
    ({"status": "IN_PROGRESS"}, 400, "FIXED or CLOSED"),
    ({"status": "MAYBE"}, 400, "status 'MAYBE'"),
    ({"updated_datetime": "yesterday"}, 400, "updated_datetime"),
    ({"rating": "ok"}, 400, "rating 'ok'"),
    ({"jurisdiction_id": "320105"}, 404, "jurisdiction_id"),
])
def test_bad_forms_are_refused_with_every_problem(changes, status, fragment) -> None:
    with pytest.raises(Open311Failure) as caught:
        parse_update_post(form(**changes), JURISDICTION)
    assert caught.value.status == status
    assert any(fragment in e.description for e in caught.value.errors), caught.value.errors


async def closed_request(intake, token) -> str:
    r = await post(intake)
    assert r.status_code == 200, r.text
    rid = r.json()[0]["service_request_id"]
    staff = token("window_clerk", DISTRICT)
    for path, body in [("route", None), ("response", {"by": "urban_management"}),
                       ("answer", {"answer": "井盖已补装", "resolved": True, "by": "urban_management"}),
                       ("close", None)]:
        r = await intake.post(f"/v1/complaints/{rid}/{path}", json=body, headers=staff)
        assert r.status_code == 200, (path, r.text)
    return rid


async def test_a_resident_rates_a_closed_request_through_the_app(intake, token, pool):
    rid = await closed_request(intake, token)
    r = await intake.post(f"{API}/servicerequestupdates.xml", data={**UPDATE, "service_request_id": rid,
                                                                     "rating": "very_satisfied"})
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.content)
    assert root.tag == "service_request_updates" and [c.tag for c in root] == ["request_update"]
    update_id = root[0].findtext("update_id")
    rated = await pool.fetchrow("SELECT id::text, data FROM events WHERE stream_id = $1 AND type = $2", rid,
                                "civicgrid.intake.complaint.rated.v1")
    assert rated["id"] == update_id
    complaint = (await intake.get(f"/v1/complaints/{rid}", headers=token("window_clerk", DISTRICT))).json()
    assert (complaint["status"], complaint["ratings"]) == ("rated", ["very_satisfied"])
    # nothing personal the app sent is kept
    assert await pool.fetchval("SELECT count(*) FROM events WHERE data::text LIKE '%resident@example.com%' "
                               "OR data::text LIKE '%修好了%'") == 0
    # the app resends the same update (same update_id): the same answer, nothing recorded twice
    before = await event_count(pool)
    r = await intake.post(f"{API}/servicerequestupdates.json", data={**UPDATE, "service_request_id": rid,
                                                                      "rating": "very_satisfied"})
    assert r.status_code == 200 and r.json() == [{"update_id": update_id}]
    # rated once: another update is refused and changes nothing
    r = await intake.post(f"{API}/servicerequestupdates.json", data={**UPDATE, "service_request_id": rid,
                                                                      "update_id": "fms-comment-4712"})
    assert r.status_code == 400 and r.json()[0]["code"] == 400
    assert await event_count(pool) == before


async def test_not_fixed_reopens_the_request_in_json(intake, token):
    rid = await closed_request(intake, token)
    r = await intake.post(f"{API}/servicerequestupdates.json", data={**UPDATE, "service_request_id": rid,
                                                                      "status": "REOPEN", "description": "井盖又松了"})
    assert r.status_code == 200, r.text
    [answer] = r.json()
    assert list(answer) == ["update_id"]
    complaint = (await intake.get(f"/v1/complaints/{rid}", headers=token("window_clerk", DISTRICT))).json()
    assert (complaint["status"], complaint["round"], complaint["ratings"]) == ("reopened", 2, ["dissatisfied"])
    [shown] = (await intake.get(f"{API}/requests/{rid}.json")).json()
    assert shown["status"] == "open"


async def test_refusals_change_nothing(intake, token, pool):
    rid = await closed_request(intake, token)
    open_one = (await post(intake)).json()[0]["service_request_id"]
    phoned = (await intake.post("/v1/complaints", headers=token("window_clerk", "320104001"), json={
        "category": "environmental_protection", "channel": "phone", "urgency": "general",
        "jurisdiction": "320104001", "location": {"address": "淮海路 1 号"}, "description": "噪声扰民",
        "anonymous": True})).json()["id"]
    before = await event_count(pool)
    cases = [
        ({"service_request_id": rid, "api_key": "wrong"}, 403),
        ({"service_request_id": "cp-no-such-request"}, 404),
        ({"service_request_id": phoned}, 404),           # not an Open311 request: rated at the window
        ({"service_request_id": open_one}, 400),         # not closed yet
        ({"service_request_id": rid, "status": "PLANNED"}, 400),
    ]
    for changes, status in cases:
        r = await intake.post(f"{API}/servicerequestupdates.xml", data={**UPDATE, **changes})
        assert r.status_code == status, (changes, r.text)
        root = ET.fromstring(r.content)
        assert root.tag == "errors" and root[0].findtext("code") == str(status)
    r = await intake.post(f"{API}/servicerequestupdates.json", content=b"service_request_id=x",
                          headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert await event_count(pool) == before
