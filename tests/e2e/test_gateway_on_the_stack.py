"""The gateway as `make up` runs it (port 8000): an Open311 report posted through it as a
published client posts it (api_key and jurisdiction_id in the query string) becomes a complaint
whose CloudEvent on Kafka names a dataschema that resolves, on this same gateway, to a schema
whose `$id` is that URL and which the event's data satisfies; intake's routes answer through it
as they answer directly."""
from __future__ import annotations

import json

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from kafka_log import events_about

from civicgrid_common.identity.tokens import mint_local_token

pytestmark = pytest.mark.integration

GATEWAY = "http://127.0.0.1:8000"


async def test_an_open311_report_through_the_gateway_names_a_schema_that_resolves_there():
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=30) as http:
        try:
            await http.get("/healthz")
        except httpx.ConnectError:
            pytest.fail("the gateway of the local stack is not running on :8000; run `make up`", pytrace=False)
        [service, *_] = (await http.get("/open311/v2/services.json")).json()
        r = await http.post("/open311/v2/requests.json", params={"api_key": "demo-open311-key", "jurisdiction_id": "320104"},
                            data={"service_code": service["service_code"], "lat": "32.0345", "long": "118.7910",
                                  "description": "路灯不亮"})
        assert r.status_code == 200, r.text
        [created] = r.json()
        [shown] = (await http.get(f"/open311/v2/requests/{created['service_request_id']}.json")).json()
        assert shown["service_notice"] == created["service_notice"] is not None

        [record] = await events_about("civicgrid.intake.complaints", {created["service_request_id"]}, wanted=1)
        headers = {k: v.decode() for k, v in record.headers}
        dataschema = headers["ce_dataschema"]
        assert dataschema.startswith(GATEWAY + "/contracts/events/")
        published = await http.get(dataschema)
        assert published.status_code == 200 and published.headers["content-type"] == "application/schema+json"
        schema = published.json()
        assert schema["$id"] == dataschema
        Draft202012Validator(schema, format_checker=FormatChecker()).validate(json.loads(record.value))

        # the index lists every event's schema; the AsyncAPI document is there too
        index = (await http.get("/contracts/")).json()
        assert index["events"][headers["ce_type"]] == dataschema
        assert "\nasyncapi: " in (await http.get("/contracts/asyncapi.yaml")).text

        clerk = {"Authorization": f"Bearer {mint_local_token('window_clerk', '320104001')}"}
        through = await http.get("/api/intake/v1/affairs", headers=clerk)
        async with httpx.AsyncClient(base_url="http://127.0.0.1:8001") as intake:
            direct = await intake.get("/v1/affairs", headers=clerk)
        assert through.status_code == direct.status_code == 200 and through.json() == direct.json()
