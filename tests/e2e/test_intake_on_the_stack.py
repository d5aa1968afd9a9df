"""intake as `make up` runs it (port 8001, its own database, its outbox relay): what a clerk and
an Open311 app do there ends up on Kafka as CloudEvents that the official SDK reads and that
validate against contracts/."""
from __future__ import annotations

import random
import uuid

import httpx
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from kafka_log import events_about
from stdnum.cn import ric

from civicgrid_common.contracts import Contracts
from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.paths import contracts_dir

pytestmark = pytest.mark.integration

INTAKE = "http://127.0.0.1:8001"
STREET, COMMUNITY = "320104001", "320104001001"


def bearer(role: str, jurisdiction: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction)}"}


def a_resident_number() -> str:
    body = "320104" + f"{random.randint(1940, 2000)}0{random.randint(1, 9)}1{random.randint(0, 9)}" + \
        f"{random.randint(0, 999):03d}"
    return body + ric.calc_check_digit(body + "0")


def check_cloudevent(record, contracts: Contracts) -> str:
    event = from_binary(KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value), JSONFormat())
    attrs = event.get_attributes()
    assert uuid.UUID(attrs["id"]).version == 7
    assert attrs["source"] == "/civicgrid/intake" and attrs["subject"] == record.key.decode()
    assert attrs["dataschema"].endswith(f"/events/{attrs['type']}.schema.json")
    contracts.validate(attrs["type"], event.get_data())
    return attrs["type"]


async def test_a_clerks_case_and_an_open311_report_reach_kafka_as_valid_cloudevents():
    clerk = bearer("window_clerk", STREET)
    async with httpx.AsyncClient(base_url=INTAKE, timeout=30) as http:
        try:
            await http.get("/healthz")
        except httpx.ConnectError:
            pytest.fail("intake of the local stack is not running on :8001; run `make up`", pytrace=False)
        r = await http.post("/v1/applicants", headers=clerk, json={
            "kind": "resident", "identity_number": a_resident_number(), "name": "测试居民",
            "household_registration_code": STREET, "residence_community_code": COMMUNITY})
        assert r.status_code in (200, 201), r.text
        applicant = r.json()["applicant_id"]
        r = await http.post("/v1/cases", headers=clerk, json={
            "applicant_id": applicant, "affair_code": "residence.residence_proof", "jurisdiction": COMMUNITY,
            "channel": "window", "materials_handed_in": ["id_card", "residence_proof", "purpose_note"]})
        assert r.status_code == 201, r.text
        case = r.json()["id"]
        r = await http.post(f"/v1/cases/{case}/accept", headers=clerk, json={})
        assert r.status_code == 200, r.text
        services = (await http.get("/open311/v2/services.json")).json()
        r = await http.post("/open311/v2/requests.json", data={
            "api_key": "demo-open311-key", "service_code": services[0]["service_code"],
            "lat": "32.0345", "long": "118.7910", "description": "路灯不亮"})
        assert r.status_code in (200, 201), r.text
        complaint = r.json()[0]["service_request_id"]

    contracts = Contracts(contracts_dir())
    case_events = await events_about("civicgrid.intake.cases", {case}, wanted=2)
    complaint_events = await events_about("civicgrid.intake.complaints", {complaint}, wanted=1)
    applicant_events = await events_about("civicgrid.intake.applicants", {applicant}, wanted=1)
    assert [check_cloudevent(r, contracts) for r in case_events] == [
        "civicgrid.intake.case.registered.v1", "civicgrid.intake.case.accepted.v1"]
    assert [check_cloudevent(r, contracts) for r in complaint_events] == ["civicgrid.intake.complaint.received.v1"]
    assert [check_cloudevent(r, contracts) for r in applicant_events] == ["civicgrid.intake.applicant.registered.v1"]
    # no personal data on the wire
    for record in case_events + complaint_events + applicant_events:
        assert "测试居民".encode() not in record.value


