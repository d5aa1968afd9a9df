"""The contracts as a deployment publishes them: every event's schema at the URL its events name
as dataschema, that URL its `$id`; the mount follows the base URL's path; cacheable by ETag."""
from __future__ import annotations

import httpx
import pytest

from civicgrid_common.cloudevents import dataschema_for
from civicgrid_common.contracts import Contracts
from civicgrid_common.paths import contracts_dir

from civicgrid_gateway.adapters.contracts import PublishedContracts, mount_path
from civicgrid_gateway.config import GatewaySettings
from civicgrid_gateway.entrypoints.main import build_app

BASE = "https://civicgrid.example.org/district/contracts"


def test_every_event_schema_is_published_at_its_dataschema_with_that_url_as_its_id() -> None:
    contracts = Contracts(contracts_dir())
    published = PublishedContracts(contracts, BASE)
    assert published.mount == "/district/contracts"
    assert len(contracts.event_types()) > 40
    for event_type in contracts.event_types():
        url = dataschema_for(event_type, BASE)
        document = published.get(url.removeprefix(BASE + "/"))
        assert document is not None and document.media_type == "application/schema+json", event_type
        schema = httpx.Response(200, content=document.body).json()
        assert schema["$id"] == url
        # nothing else of the contract changed
        assert {k: v for k, v in schema.items() if k != "$id"} == \
            {k: v for k, v in contracts.schema(event_type).items() if k != "$id"}
    assert published.get("events/civicgrid.nothing.v1.schema.json") is None
    assert published.get("../asyncapi.yaml") is None


@pytest.mark.parametrize("base", ["https://x.example", "https://x.example/", "https://x.example/api/contracts",
                                  "https://x.example/open311", "http://x/healthz"])
def test_a_base_url_whose_path_the_gateway_serves_otherwise_is_refused(base: str) -> None:
    with pytest.raises(ValueError, match="CIVICGRID_SCHEMA_BASE_URL"):
        mount_path(base)


async def test_the_gateway_serves_them_with_an_etag_and_a_problem_for_an_unknown_name() -> None:
    app = build_app(GatewaySettings(schema_base_url="http://gw.test/contracts", upstreams={}))
    event_type = "civicgrid.intake.case.accepted.v1"
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test") as client:
            r = await client.get(f"/contracts/events/{event_type}.schema.json")
            assert r.status_code == 200 and r.json()["$id"] == dataschema_for(event_type, "http://gw.test/contracts")
            assert r.headers["cache-control"] == "public, max-age=300"
            again = await client.get(f"/contracts/events/{event_type}.schema.json",
                                     headers={"If-None-Match": r.headers["etag"]})
            assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == r.headers["etag"]
            index = (await client.get("/contracts")).json()
            assert index == (await client.get("/contracts/")).json()
            assert index["events"][event_type] == r.json()["$id"]
            assert index["asyncapi"] == "http://gw.test/contracts/asyncapi.yaml"
            assert (await client.get("/contracts/departments.yaml")).headers["content-type"] == "application/yaml"
            missing = await client.get("/contracts/events/nothing.json")
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"
            assert "/contracts/" in missing.json()["detail"]
