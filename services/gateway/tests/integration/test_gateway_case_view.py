"""The joined view of a case through the gateway, in front of the real intake service (on a
fresh database, over uvicorn) while approval is down (nothing listens on its port): the clerk
still sees the case, as intake shows it, with the approvals said to be missing and why; intake's
own refusals come back as intake gave them; nothing reaches a service without a valid token or
with an id that is not one; intake down is 503 at once."""
from __future__ import annotations

import random
import socket

import httpx
import pytest
from standins.serving import serving  # uvicorn on 127.0.0.1:0 for a test
from stdnum.cn import ric

from civicgrid_gateway.config import GatewaySettings
from civicgrid_gateway.entrypoints.main import build_app

from civicgrid_intake.config import IntakeSettings
from civicgrid_intake.entrypoints.main import build_app as intake_app

pytestmark = pytest.mark.integration

STREET, COMMUNITY = "320104001", "320104001001"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _resident_number() -> str:
    body = f"3201041950{random.randint(1, 9):02d}1{random.randint(0, 9)}{random.randint(0, 999):03d}"
    return body + ric.calc_check_digit(body + "0")


@pytest.fixture
async def intake(fresh_db):
    app = intake_app(IntakeSettings(pg_database=fresh_db.pg_database, outbox_relay=False, approval_consumer=False))
    asked: list[str] = []

    async def noting(scope, receive, send):
        if scope["type"] == "http":
            asked.append(scope["path"])
        await app(scope, receive, send)

    async with app.router.lifespan_context(app), serving(noting) as base:
        yield base, asked


async def _gateway(upstreams: dict[str, str]):
    app = build_app(GatewaySettings(upstreams=upstreams, circuit_failures=2, circuit_cooldown_seconds=30))
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_approval_down_the_clerk_still_sees_the_case_and_why_its_approvals_are_missing(intake, token):
    base, asked = intake
    clerk = token("window_clerk", STREET)
    down = f"http://127.0.0.1:{_free_port()}"
    app, gateway = await _gateway({"intake": base, "approval": down})
    async with app.router.lifespan_context(app), gateway, httpx.AsyncClient(base_url=base) as direct:
        r = await direct.post("/v1/applicants", headers=clerk, json={
            "kind": "resident", "identity_number": _resident_number(), "name": "测试居民",
            "household_registration_code": STREET, "residence_community_code": COMMUNITY})
        assert r.status_code in (200, 201), r.text
        r = await direct.post("/v1/cases", headers=clerk, json={
            "applicant_id": r.json()["applicant_id"], "affair_code": "civil.temporary_assistance",
            "jurisdiction": COMMUNITY, "channel": "window",
            "materials_handed_in": ["id_card", "application_form", "hardship_proof", "verification_authorisation"]})
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]

        r = await gateway.get(f"/api/views/cases/{case_id}", headers={**clerk, "X-Request-Id": "desk-7"})
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == "desk-7"
        view = r.json()
        assert view["case"] == (await direct.get(f"/v1/cases/{case_id}", headers=clerk)).json()
        assert view["approvals"] is None
        [missing] = view["missing"]
        assert missing["part"] == "approvals" and missing["service"] == "approval" and missing["status"] is None
        assert "not answering" in missing["detail"]

        # intake's own refusal as intake gave it: a case it does not have, a clerk of another street
        r = await gateway.get("/api/views/cases/no-such-case", headers=clerk)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 404
        r = await gateway.get(f"/api/views/cases/{case_id}", headers=token("window_clerk", "320104002"))
        assert r.status_code in (403, 404) and r.json()["status"] == r.status_code

        # nothing is asked of a service without a token, or for an id that is not one
        before = len(asked)
        assert (await gateway.get(f"/api/views/cases/{case_id}")).status_code == 401
        r = await gateway.get("/api/views/cases/" + "x" * 65, headers=clerk)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
        r = await gateway.get("/api/views/cases/%2e%2e%2fapplicants", headers=clerk)  # not a view's path
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
        r = await gateway.get("/api/views/cases/a%20b", headers=clerk)
        assert r.status_code == 422
        assert len(asked) == before


async def test_intake_down_is_503_with_retry_after(token):
    app, gateway = await _gateway({"intake": f"http://127.0.0.1:{_free_port()}",
                                   "approval": f"http://127.0.0.1:{_free_port()}"})
    async with app.router.lifespan_context(app), gateway:
        r = await gateway.get("/api/views/cases/c-1", headers=token("window_clerk", STREET))
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
        assert int(r.headers["retry-after"]) >= 1 and r.json()["upstream"] == "intake"
