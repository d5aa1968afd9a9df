"""Open311 GeoReport v2 on the running app (real PostgreSQL): a request posted by an app
becomes a complaint, staff take it to closed and rated, and the live endpoints show it in
both formats with the specification's element names and order; refusals in its error format;
nothing personal of a complaint filed elsewhere leaks."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.integration

from open311_form import FORM

API = "/open311/v2"
DISTRICT = "320104"
REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"]
UPDATE_FIELDS = ["update_id", "service_request_id", "status", "updated_datetime", "description", "media_url"]


def xml(response) -> ET.Element:
    assert response.headers["content-type"] == "text/xml; charset=utf-8", response.text
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(response.content)


def children(element: ET.Element) -> list[str]:
    return [child.tag for child in element]


async def post(intake, fmt="json", **changes):
    form = {k: v for k, v in {**FORM, **changes}.items() if v is not None}
    return await intake.post(f"{API}/requests.{fmt}", data=form)


async def event_count(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM events")


async def test_an_open311_request_goes_to_closed_and_rated(intake, token, pool):
    r = await post(intake)
    assert r.status_code == 200, r.text
    [created] = r.json()
    assert list(created) == ["service_request_id", "service_notice", "account_id"]
    rid = created["service_request_id"]

    # the district's 12345 centre (a clerk of the district) takes it from here
    staff = token("window_clerk", DISTRICT)
    complaint = (await intake.get(f"/v1/complaints/{rid}", headers=staff)).json()
    assert complaint["channel"] == "open311" and complaint["urgency"] == "life_or_property"
    assert complaint["anonymous"] is True and complaint["applicant_id"] is None  # the contact is not kept
    steps = [("route", {"kind": "department", "department": "urban_management"}), ("response", {"by": "street"}),
             ("answer", {"answer": "井盖已补装", "resolved": True}), ("close", None),
             ("rating", {"rating": "very_satisfied"})]
    for path, body in steps:
        r = await intake.post(f"/v1/complaints/{rid}/{path}", json=body, headers=staff)
        assert r.status_code == 200, (path, r.text)
    assert r.json()["status"] == "rated"

    [shown] = (await intake.get(f"{API}/requests/{rid}.json")).json()
    assert list(shown) == REQUEST_FIELDS
    assert shown["status"] == "closed" and shown["status_notes"] == "井盖已补装"
    assert shown["agency_responsible"] == "urban_management" and shown["lat"] == 32.0301
    root = xml(await intake.get(f"{API}/requests/{rid}.xml", params={"jurisdiction_id": DISTRICT}))
    assert root.tag == "service_requests" and children(root) == ["request"]
    assert children(root[0]) == REQUEST_FIELDS
    assert root[0].findtext("status") == "closed" and root[0].findtext("service_request_id") == rid
    assert root[0].findtext("requested_datetime").endswith("+08:00")

    updates = (await intake.get(f"{API}/servicerequestupdates.json")).json()
    assert [u["status"] for u in updates if u["service_request_id"] == rid] == [
        "open", "investigating", "in_progress", "in_progress", "fixed"]
    assert all(list(u) == UPDATE_FIELDS for u in updates)
    events = await pool.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY version", rid)
    assert [e["type"] for e in events][-1] == "civicgrid.intake.complaint.rated.v1"


async def test_a_request_posted_as_published_clients_post_it_is_shown_with_its_notice(intake, pool):
    """api_key and jurisdiction_id in the query string as clients in use send them,
    and the GET of the request tells the same service_notice the POST answered."""
    before = await event_count(pool)
    form = {k: v for k, v in FORM.items() if k not in ("api_key", "jurisdiction_id")}
    r = await intake.post(f"{API}/requests.json", data=form,
                          params={"api_key": FORM["api_key"], "jurisdiction_id": DISTRICT})
    assert r.status_code == 200, r.text
    [created] = r.json()
    assert created["service_notice"] and "Feedback by" in created["service_notice"]
    assert await event_count(pool) > before

    rid = created["service_request_id"]
    [shown] = (await intake.get(f"{API}/requests/{rid}.json")).json()
    assert shown["service_notice"] == created["service_notice"]
    listed = (await intake.get(f"{API}/requests.json", params={"service_request_id": rid})).json()
    assert [x["service_notice"] for x in listed] == [created["service_notice"]]
    root = xml(await intake.get(f"{API}/requests/{rid}.xml"))
    assert root[0].findtext("service_notice") == created["service_notice"]

    refused = await intake.post(f"{API}/requests.json", data=form, params={"api_key": "wrong"})
    assert refused.status_code == 403


async def test_services_and_definitions_are_served_as_the_spec_shows(intake):
    root = xml(await intake.get(f"{API}/services.xml", params={"jurisdiction_id": "qinhuai.nanjing.gov.cn"}))
    assert root.tag == "services" and set(children(root)) == {"service"} and len(root) == 8
    assert children(root[0]) == ["service_code", "service_name", "description", "metadata", "type", "keywords",
                                 "group"]
    listed = (await intake.get(f"{API}/services.json")).json()
    assert [s["service_code"] for s in listed][:2] == ["urban_construction", "planning"]
    assert listed[0]["metadata"] is True and listed[0]["type"] == "realtime"
    root = xml(await intake.get(f"{API}/services/environmental_protection.xml"))
    assert root.tag == "service_definition" and children(root) == ["service_code", "attributes"]
    assert children(root.find("attributes/attribute")) == [
        "variable", "code", "datatype", "required", "datatype_description", "order", "description", "values"]
    discovery = (await intake.get(f"{API}/discovery.json")).json()
    assert discovery["endpoints"][0]["url"] == "http://127.0.0.1:8001/open311/v2"


async def test_requests_listing_filters_and_tokens(intake, pool):
    open_one = (await post(intake)).json()[0]["service_request_id"]
    other = (await post(intake, service_code="planning", **{"attribute[urgency]": None})).json()[0][
        "service_request_id"]
    root = xml(await intake.get(f"{API}/requests.xml"))
    assert root.tag == "service_requests" and [r.findtext("service_request_id") for r in root] == [open_one, other]
    assert all(children(r) == REQUEST_FIELDS for r in root)
    by_code = (await intake.get(f"{API}/requests.json", params={"service_code": "planning"})).json()
    assert [r["service_request_id"] for r in by_code] == [other]
    assert (await intake.get(f"{API}/requests.json", params={"status": "closed"})).json() == []
    both = (await intake.get(f"{API}/requests.json", params={"service_request_id": f"{other},{open_one}"})).json()
    assert {r["service_request_id"] for r in both} == {open_one, other}

    # a token resolves to its request (the id of the request's received event)
    token = await pool.fetchval("SELECT open311_token FROM complaint_view WHERE id = $1", other)
    root = xml(await intake.get(f"{API}/tokens/{token}.xml"))
    assert root.tag == "service_requests" and children(root[0]) == ["service_request_id", "token"]
    assert root[0].findtext("service_request_id") == other
    assert (await intake.get(f"{API}/tokens/{token}.json")).json() == [{"service_request_id": other, "token": token}]
    assert (await intake.get(f"{API}/tokens/no-such-token.json")).status_code == 404

    root = xml(await intake.get(f"{API}/servicerequestupdates.xml"))
    assert root.tag == "service_request_updates" and children(root) == ["request_update", "request_update"]
    assert children(root[0]) == UPDATE_FIELDS and root[0].findtext("status") == "open"


@pytest.mark.parametrize(
    "changes, status, fragment",
    [
        ({"api_key": "not-the-key"}, 403, "api_key"),
        ({"api_key": None}, 403, "api_key"),
        ({"lat": None, "long": None, "address_string": None}, 400, "location"),
        ({"service_code": "potholes"}, 404, "service_code"),
        ({"jurisdiction_id": "320105"}, 404, "jurisdiction_id"),
        ({"lat": "51.5072", "long": "-0.1276", "address_string": None}, 400, "China"),  # London
        ({"attribute[urgency]": "yesterday"}, 400, "urgency"),
    ],
)
async def test_refusals_in_the_spec_error_format_change_nothing(intake, pool, changes, status, fragment):
    before = await event_count(pool)
    r = await post(intake, "xml", **changes)
    assert r.status_code == status, r.text
    root = xml(r)
    assert root.tag == "errors" and set(children(root)) == {"error"}
    assert children(root[0]) == ["code", "description"]
    assert any(fragment in (e.findtext("description") or "") for e in root)
    r = await post(intake, "json", **changes)
    assert r.status_code == status and all(set(e) == {"code", "description"} for e in r.json())
    assert await event_count(pool) == before


async def test_nothing_personal_of_other_channels_is_shown(intake, token):
    body = {"category": "housing_management", "channel": "phone", "jurisdiction": "320104001001",
            "location": {"address": "某小区 3 栋 502 室 王某家", "lat": 32.031, "long": 118.79},
            "description": "王某（手机 13912345678）反映楼上漏水", "anonymous": True}
    clerk = token("window_clerk", "320104001")
    cid = (await intake.post("/v1/complaints", json=body, headers=clerk)).json()["id"]
    await intake.post(f"/v1/complaints/{cid}/route", json={"kind": "street"}, headers=clerk)
    await intake.post(f"/v1/complaints/{cid}/response", json={}, headers=clerk)
    await intake.post(f"/v1/complaints/{cid}/answer", json={"answer": "已联系王某楼上住户维修", "resolved": True},
                      headers=clerk)
    for path in ("requests.json", f"requests/{cid}.json", "servicerequestupdates.json", "requests.xml"):
        r = await intake.get(f"{API}/{path}")
        assert r.status_code == 200 and cid in r.text, path
        # whole fragments: a bare "502" turns up inside random UUIDs of other fields
        for personal in ("王某", "13912345678", "3 栋 502 室", "32.031"):
            assert personal not in r.text, (path, personal)
    [shown] = (await intake.get(f"{API}/requests/{cid}.json")).json()
    assert shown["description"] is None and shown["lat"] is None and shown["status"] == "open"
