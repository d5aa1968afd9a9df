"""Open311 GeoReport v2 conformance through the real FastAPI router, in process.

The port behind the router is a small in-memory implementation of our own application port
(Open311Port) built on the real Complaint aggregate: no Kafka or PostgreSQL is involved in
the wire format. XML is parsed back and checked element by element; JSON field by field.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Sequence

import pytest
from civicgrid_common.calendar import CHINA_TZ, WorkingCalendar
from civicgrid_common.contracts import Contracts
from civicgrid_common.paths import contracts_dir
from fastapi import FastAPI
from fastapi.testclient import TestClient

from civicgrid_intake.domain.complaint import Channel, Complaint, Rating
from civicgrid_intake.domain.routing import DepartmentHandles
from civicgrid_intake.entrypoints.open311.mapping import (
    COMPLAINT_SERVICES,
    complaint_intake,
    service_request_view,
    updates_from_events,
)
from civicgrid_intake.entrypoints.open311.model import (
    DEMO_API_KEY,
    CreatedRequest,
    Discovery,
    Endpoint,
    Jurisdiction,
    NewServiceRequest,
    RequestQuery,
    RequestUpdate,
    Service,
    ServiceRequest,
    TokenResult,
    UpdatesQuery,
)
from civicgrid_intake.entrypoints.open311.router import open311_router
from open311_form import FORM

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=CHINA_TZ)
CAL = WorkingCalendar()

JURISDICTION = Jurisdiction("320104", aliases=("qinhuai.nanjing.gov.cn",), api_keys=frozenset({DEMO_API_KEY}))
SERVICES = {s.service_code: s for s in COMPLAINT_SERVICES}


class InMemoryIntake:
    """Test double of OUR application port: complaints kept in a dict, events from the aggregate."""

    def __init__(self) -> None:
        self.complaints: dict[str, Complaint] = {}
        self.events: dict[str, list] = {}
        self.contacts_seen: list = []
        self.tokens = {"tok-1": TokenResult("tok-1", None)}

    async def services(self) -> Sequence[Service]:
        return COMPLAINT_SERVICES

    async def create(self, request: NewServiceRequest) -> CreatedRequest:
        intake = complaint_intake(request)
        self.contacts_seen.append(request.contact)
        complaint_id = f"QH-{len(self.complaints) + 1:04d}"
        complaint = Complaint.receive(
            complaint_id, category=intake.category, channel=Channel.OPEN311, urgency=intake.urgency,
            jurisdiction="320104001", location=intake.location, description=intake.description,
            at=NOW - timedelta(days=1), calendar=CAL, anonymous=intake.anonymous,
            applicant_id=None if intake.anonymous else "app-open311-1",
            open311_service_code=intake.service_code, media_url=intake.media_url,
        )
        self._keep(complaint)
        return CreatedRequest(service_request_id=complaint_id, service_notice="2 小时至 15 个工作日内反馈")

    def _keep(self, complaint: Complaint) -> None:
        self.complaints[complaint.id] = complaint
        self.events.setdefault(complaint.id, []).extend(complaint.pending_events)
        complaint.mark_saved()

    async def requests(self, query: RequestQuery) -> Sequence[ServiceRequest]:
        views = [service_request_view(x, SERVICES) for x in self.complaints.values()]
        if query.service_request_ids:
            return [v for v in views if v.service_request_id in query.service_request_ids]
        return [
            v for v in views
            if query.start <= v.requested_datetime <= query.end
            and (not query.statuses or v.status in query.statuses)
            and (not query.service_codes or v.service_code in query.service_codes)
        ]

    async def request(self, service_request_id: str) -> ServiceRequest | None:
        found = self.complaints.get(service_request_id)
        return service_request_view(found, SERVICES) if found else None

    async def token(self, token: str) -> TokenResult | None:
        return self.tokens.get(token)

    async def updates(self, query: UpdatesQuery) -> Sequence[RequestUpdate]:
        updates = [u for cid, evs in self.events.items() for u in updates_from_events(cid, evs)]
        return [u for u in updates if query.start <= u.updated_datetime <= query.end]


@pytest.fixture
def intake() -> InMemoryIntake:
    return InMemoryIntake()


@pytest.fixture
def client(intake: InMemoryIntake) -> TestClient:
    app = FastAPI()
    discovery = Discovery(
        changeset="2026-03-01T00:00:00+08:00", contact="秦淮区 12345 热线 qinhuai@example.invalid",
        key_service="api_key: apply at the district's data office",
        endpoints=(Endpoint(url="http://testserver/open311/v2", changeset="2026-03-01T00:00:00+08:00"),),
    )
    app.include_router(open311_router(intake, jurisdiction=JURISDICTION, discovery=discovery, clock=lambda: NOW))
    return TestClient(app)


def xml(response) -> ET.Element:
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(response.content)


def children(element: ET.Element) -> list[str]:
    return [child.tag for child in element]




def post(client: TestClient, fmt: str = "xml", **changes: str | None):
    form = {k: v for k, v in {**FORM, **changes}.items() if v is not None}
    return client.post(f"/open311/v2/requests.{fmt}", data=form)


# ------------------------------------------------------------------ discovery and services


def test_discovery_in_both_formats(client: TestClient) -> None:
    root = xml(client.get("/open311/v2/discovery.xml"))
    assert root.tag == "discovery" and children(root) == ["changeset", "contact", "key_service", "endpoints"]
    endpoint = root.find("endpoints/endpoint")
    assert endpoint is not None and endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
    assert [f.text for f in endpoint.findall("formats/format")] == ["text/xml", "application/json"]
    body = client.get("/open311/v2/discovery.json").json()
    assert body["endpoints"][0]["formats"] == ["text/xml", "application/json"]
    assert body["endpoints"][0]["type"] == "production"


def test_service_list(client: TestClient) -> None:
    root = xml(client.get("/open311/v2/services.xml", params={"jurisdiction_id": "qinhuai.nanjing.gov.cn"}))
    assert root.tag == "services" and set(children(root)) == {"service"} and len(root) == 8
    first = root[0]
    assert children(first) == ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
    assert first.findtext("metadata") == "true" and first.findtext("type") == "realtime"
    listed = client.get("/open311/v2/services.json").json()
    assert [s["service_code"] for s in listed] == [s.service_code for s in COMPLAINT_SERVICES]
    assert listed[0]["metadata"] is True and isinstance(listed[0]["keywords"], str)


def test_service_definition(client: TestClient) -> None:
    root = xml(client.get("/open311/v2/services/municipal_works.xml"))
    assert root.tag == "service_definition" and children(root) == ["service_code", "attributes"]
    attribute = root.find("attributes/attribute")
    assert attribute is not None
    assert children(attribute) == ["variable", "code", "datatype", "required", "datatype_description", "order",
                                   "description", "values"]
    assert attribute.findtext("datatype") == "singlevaluelist" and attribute.findtext("required") == "false"
    assert [v.findtext("key") for v in attribute.findall("values/value")] == [
        "life_or_property", "utilities", "general", "complex"]
    body = client.get("/open311/v2/services/municipal_works.json").json()
    assert body["service_code"] == "municipal_works"
    assert body["attributes"][0]["order"] == 1 and body["attributes"][0]["variable"] is True
    assert body["attributes"][0]["values"][0] == {"key": "life_or_property", "name": "危及生命财产安全 Threat to life or property"}


# ------------------------------------------------------------------ POST requests


def test_post_creates_a_complaint_and_answers_with_its_id(client: TestClient, intake: InMemoryIntake) -> None:
    root = xml(post(client))
    assert root.tag == "service_requests" and children(root) == ["request"]
    assert children(root[0]) == ["service_request_id", "service_notice", "account_id"]
    assert root[0].findtext("service_request_id") == "QH-0001" and root[0].find("account_id").text is None
    complaint = intake.complaints["QH-0001"]
    assert complaint.channel is Channel.OPEN311 and complaint.urgency.value == "life_or_property"
    assert complaint.anonymous is False and complaint.applicant_id == "app-open311-1"
    # personal data reached the application port, and no event carries it
    assert intake.contacts_seen[0].phone == "13800000000" and "13800000000" not in repr(intake.contacts_seen[0])
    for event in intake.events["QH-0001"]:
        Contracts(contracts_dir()).validate(event.type, event.data)
        assert "13800000000" not in str(event.data) and "resident@example.com" not in str(event.data)

    created = post(client, "json", email=None, phone=None, lat=None, long=None, address_string=None,
                   address_id="QH-ADDR-77").json()
    assert created == [{"service_request_id": "QH-0002", "service_notice": "2 小时至 15 个工作日内反馈", "account_id": None}]
    assert intake.complaints["QH-0002"].anonymous is True


def test_post_takes_api_key_and_jurisdiction_from_the_query_string_as_published_clients_send_them(
    client: TestClient, intake: InMemoryIntake
) -> None:
    """GeoReport v2 puts them in the form; clients in use put api_key or
    jurisdiction_id (node-open311 does) in the query string, as on a GET. Both are accepted, a
    wrong key there is refused as in the form, and nothing else is read from the query."""
    form = {k: v for k, v in FORM.items() if k not in ("api_key", "jurisdiction_id")}
    credentials = {"api_key": FORM["api_key"], "jurisdiction_id": FORM["jurisdiction_id"]}
    created = client.post("/open311/v2/requests.json", params=credentials, data=form)
    assert created.status_code == 200, created.text
    assert created.json()[0]["service_request_id"] == "QH-0001"
    # the same value in both places counts once (not "given more than once")
    both = client.post("/open311/v2/requests.json", params=credentials, data={**form, **credentials})
    assert both.status_code == 200, both.text

    wrong = client.post("/open311/v2/requests.json", params={"api_key": "wrong"}, data=form)
    assert wrong.status_code == 403 and "Invalid api_key" in wrong.json()[0]["description"]
    # a request field in the query is not taken: the form lacks service_code, so it is missing
    no_code = {k: v for k, v in form.items() if k != "service_code"}
    refused = client.post("/open311/v2/requests.json", params={**credentials, "service_code": FORM["service_code"]},
                          data=no_code)
    assert refused.status_code == 400 and "service_code was not provided" in refused.text
    assert sorted(intake.complaints) == ["QH-0001", "QH-0002"]


@pytest.mark.parametrize(
    "changes, status, fragment",
    [
        ({"api_key": None}, 403, "api_key is missing"),
        ({"api_key": "wrong"}, 403, "Invalid api_key"),
        ({"jurisdiction_id": "beijing.gov.cn"}, 404, "jurisdiction_id"),
        ({"service_code": None}, 400, "service_code was not provided"),
        ({"service_code": "potholes"}, 404, "service_code 'potholes' was not found"),
        ({"lat": None, "long": None, "address_string": None}, 400, "a location is required"),
        ({"long": None}, 400, "lat and long must both be sent"),
        ({"lat": "north"}, 400, "not a WGS84 coordinate"),
        ({"lat": "48.85", "long": "2.35"}, 400, "not in China"),
        ({"attribute[urgency]": "yesterday"}, 400, "is not one of"),
        ({"attribute[colour]": "red"}, 400, "attribute 'colour' is not defined"),
        ({"description": "<script>alert(1)</script>"}, 400, "not html or code"),
        ({"description": "很长" * 2001}, 400, "longer than 4000"),
        ({"email": "not-an-email"}, 400, "email"),
        ({"media_url": "ftp://x"}, 400, "media_url"),
    ],
)
def test_post_refusals_in_the_spec_error_format(
    client: TestClient, intake: InMemoryIntake, changes: dict, status: int, fragment: str
) -> None:
    response = post(client, **changes)
    assert response.status_code == status
    root = xml(response)
    assert root.tag == "errors" and set(children(root)) == {"error"}
    assert children(root[0]) == ["code", "description"]
    assert any(fragment in (e.findtext("description") or "") for e in root)
    as_json = post(client, "json", **changes)
    assert as_json.status_code == status and as_json.headers["content-type"] == "application/json; charset=utf-8"
    assert all(set(e) == {"code", "description"} for e in as_json.json())
    assert intake.complaints == {}  # nothing was created


def test_several_problems_are_reported_together(client: TestClient) -> None:
    response = post(client, "json", service_code="potholes", email="x", media_url="ftp://x")
    assert response.status_code == 404  # a 404 among 400s: the resource is not there
    assert len(response.json()) == 3


def test_post_must_be_form_encoded(client: TestClient) -> None:
    response = client.post("/open311/v2/requests.json", json=FORM)
    assert response.status_code == 400 and "x-www-form-urlencoded" in response.json()[0]["description"]


# ------------------------------------------------------------------ GET requests, tokens, updates


REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"]


def test_get_request_by_id(client: TestClient) -> None:
    post(client)
    root = xml(client.get("/open311/v2/requests/QH-0001.xml"))
    assert root.tag == "service_requests" and children(root[0]) == REQUEST_FIELDS
    assert root[0].findtext("status") == "open"
    assert root[0].findtext("requested_datetime") == "2026-03-01T09:30:00+08:00"
    assert root[0].findtext("expected_datetime") == "2026-03-01T11:30:00+08:00"  # 2 hours: life or property
    [item] = client.get("/open311/v2/requests/QH-0001.json").json()
    assert list(item) == REQUEST_FIELDS
    assert item["lat"] == 32.0301 and item["long"] == 118.7902 and item["zipcode"] is None
    missing = client.get("/open311/v2/requests/QH-9999.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404


def test_status_follows_the_complaint_until_closed(client: TestClient, intake: InMemoryIntake) -> None:
    post(client)
    post(client, service_code="environmental_protection")
    complaint = intake.complaints["QH-0001"]
    at = NOW - timedelta(hours=20)
    complaint.route(DepartmentHandles("urban_management"), at=at)
    complaint.respond(at=at + timedelta(minutes=30), by="urban_management")
    complaint.give_answer("已补装井盖", resolved=True, at=at + timedelta(hours=2))
    complaint.close(at=at + timedelta(hours=3))
    intake._keep(complaint)

    closed = client.get("/open311/v2/requests.json", params={"status": "closed"}).json()
    assert [r["service_request_id"] for r in closed] == ["QH-0001"]
    assert closed[0]["status_notes"] == "已补装井盖" and closed[0]["agency_responsible"] == "urban_management"
    assert closed[0]["updated_datetime"] == "2026-03-01T16:30:00+08:00"
    both = client.get("/open311/v2/requests.json?status=open,closed&service_code=municipal_works").json()
    assert [r["service_request_id"] for r in both] == ["QH-0001"]
    by_ids = client.get("/open311/v2/requests.xml", params={"service_request_id": "QH-0002,QH-0001",
                                                           "start_date": "garbage"})
    assert by_ids.status_code == 200 and len(xml(by_ids)) == 2  # ids override the other arguments

    complaint.rate(Rating.DISSATISFIED, at=NOW, calendar=CAL)
    intake._keep(complaint)
    assert client.get("/open311/v2/requests/QH-0001.json").json()[0]["status"] == "open"  # reopened


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-04-02T00:00:00Z"}, "more than 90 days"),
        ({"start_date": "2026-03-01T00:00:00Z", "end_date": "2026-02-01T00:00:00Z"}, "before start_date"),
        ({"start_date": "2026-03-01"}, "W3C date-time"),
        ({"start_date": "2026-03-01T00:00:00"}, "W3C date-time"),
        ({"status": "pending"}, "not open or closed"),
        ({"jurisdiction_id": "sfgov.org"}, "jurisdiction_id"),
    ],
)
def test_bad_queries_are_refused(client: TestClient, params: dict, fragment: str) -> None:
    response = client.get("/open311/v2/requests.json", params=params)
    assert response.status_code in (400, 404) and fragment in response.json()[0]["description"]


def test_the_default_range_is_the_last_90_days(client: TestClient) -> None:
    post(client)
    assert len(client.get("/open311/v2/requests.json").json()) == 1
    old = client.get("/open311/v2/requests.json", params={"end_date": "2025-12-01T00:00:00+08:00"}).json()
    assert old == []


def test_tokens(client: TestClient) -> None:
    root = xml(client.get("/open311/v2/tokens/tok-1.xml"))
    assert root.tag == "service_requests" and children(root[0]) == ["service_request_id", "token"]
    assert client.get("/open311/v2/tokens/tok-1.json").json() == [{"service_request_id": None, "token": "tok-1"}]
    assert client.get("/open311/v2/tokens/nope.json").status_code == 404


def test_servicerequestupdates(client: TestClient, intake: InMemoryIntake) -> None:
    post(client)
    complaint = intake.complaints["QH-0001"]
    complaint.route(DepartmentHandles("urban_management"), at=NOW - timedelta(hours=23))
    intake._keep(complaint)
    root = xml(client.get("/open311/v2/servicerequestupdates.xml"))
    assert root.tag == "service_request_updates" and set(children(root)) == {"request_update"}
    assert children(root[0]) == ["update_id", "service_request_id", "status", "updated_datetime", "description",
                                 "media_url"]
    updates = client.get("/open311/v2/servicerequestupdates.json").json()
    assert [(u["service_request_id"], u["status"]) for u in updates] == [("QH-0001", "open"), ("QH-0001", "investigating")]
    assert updates[1]["updated_datetime"] == "2026-03-01T10:30:00+08:00"
    assert updates[0]["update_id"] == str(intake.events["QH-0001"][0].id)
    window = client.get("/open311/v2/servicerequestupdates.json",
                        params={"start_date": "2026-03-01T10:00:00+08:00", "end_date": "2026-03-02T00:00:00+08:00"})
    assert [u["status"] for u in window.json()] == ["investigating"]


def test_an_unknown_format_is_a_404_in_xml(client: TestClient) -> None:
    response = client.get("/open311/v2/services.html")
    assert response.status_code == 404 and xml(response).tag == "errors"
