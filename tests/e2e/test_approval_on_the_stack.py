"""approval as `make up` runs it (port 8002, its database, its outbox relay, its consumers):
a 低保 case registered, accepted and routed at intake (:8001) runs community → street → the
civil affairs system's opinion (over Kafka) → bureau, concludes with a verified, sealed
archive, and intake completes the case from approval's `concluded`; the gateway (:8000) shows
the case joined with its sealed approval."""
from __future__ import annotations

import asyncio
import importlib.util
import random
from pathlib import Path

import httpx
import pytest
from stdnum.cn import ric

from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.settings import PlatformSettings

pytestmark = pytest.mark.integration

INTAKE, APPROVAL, GATEWAY = "http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8000"
STREET, COMMUNITY = "320104001", "320104001001"
DIBAO = "civil.minimum_living_allowance"
DEMO = Path(__file__).resolve().parents[2] / "deploy/local/demo"


def bearer(role: str, jurisdiction: str, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **claims)}"}


def a_resident_number() -> str:
    body = "320104" + f"{random.randint(1940, 2000)}0{random.randint(1, 9)}1{random.randint(0, 9)}" + \
        f"{random.randint(0, 999):03d}"
    return body + ric.calc_check_digit(body + "0")


def demo_part(name: str):
    """A part of the demo: the civil affairs system (40) and the demo's waiting helper (41)."""
    spec = importlib.util.spec_from_file_location(name, DEMO / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


until = demo_part("41_approval_cases").until


async def test_a_dibao_case_from_the_window_to_a_sealed_archive_and_back():
    clerk = bearer("window_clerk", STREET)
    people = {
        "community_review": bearer("community_reviewer", COMMUNITY, subject="e2e-community", name="社区审核员"),
        "street_review": bearer("street_reviewer", STREET, subject="e2e-street", name="街道审核员"),
        "bureau_decision": bearer("bureau_approver", "320104", department="civil_affairs", subject="e2e-bureau",
                                  name="民政局审批人"),
    }
    auditor = bearer("auditor", "320104")
    module = demo_part("40_approval_civil_affairs_system")
    system = module.CivilAffairsSystem(PlatformSettings(service_name="e2e"), group_id="civil-affairs-system-e2e")
    responder = asyncio.create_task(system.run())
    try:
        await system.wait_ready()
        async with httpx.AsyncClient(base_url=INTAKE, timeout=30) as intake, \
                httpx.AsyncClient(base_url=APPROVAL, timeout=30) as approval:
            for client, port in ((intake, 8001), (approval, 8002)):
                try:
                    await client.get("/healthz")
                except httpx.ConnectError:
                    pytest.fail(f"the local stack has nothing on :{port}; run `make up`", pytrace=False)
            r = await intake.post("/v1/applicants", headers=clerk, json={
                "kind": "resident", "identity_number": a_resident_number(), "name": "低保申请人",
                "household_registration_code": STREET, "residence_community_code": COMMUNITY})
            assert r.status_code in (200, 201), r.text
            r = await intake.post("/v1/cases", headers=clerk, json={
                "applicant_id": r.json()["applicant_id"], "affair_code": DIBAO, "jurisdiction": COMMUNITY,
                "channel": "window", "materials_handed_in": ["id_card", "household_register", "application_form",
                                                             "verification_authorisation", "income_statement"]})
            assert r.status_code == 201, r.text
            case = r.json()["id"]
            assert (await intake.post(f"/v1/cases/{case}/accept", headers=clerk, json={})).status_code == 200
            r = await intake.post(f"/v1/cases/{case}/route", headers=clerk)
            assert r.status_code == 200, r.text

            async def found():
                r = await approval.get(f"/v1/approvals?case_id={case}", headers=auditor)
                return r.json()["items"] if r.status_code == 200 else None

            aid = (await until(found, "approval to start the routed case", timeout=240))[0]["id"]

            async def at(step: str):
                a = (await approval.get(f"/v1/approvals/{aid}", headers=auditor)).json()
                return a if (a["task"] or {}).get("step") == step or a["status"] != "running" else None

            for step in ("community_review", "street_review", "income_check", "bureau_decision"):
                a = await until(lambda: at(step), f"the {step} task")
                assert a["status"] == "running" and a["task"]["step"] == step, a
                if step == "income_check":
                    continue  # the civil affairs system answers on Kafka
                r = await approval.post(f"/v1/approvals/{aid}/actions", headers=people[step], json={
                    "action": "approve", "comment": f"{step}: 材料真实，符合条件", "task": a["task"]["key"],
                    "expected_version": a["version"]})
                assert r.status_code == 200, r.text
            final = r.json()
            assert final["status"] == "approved"
            assert [m["step"] for m in final["moves"]] == ["community_review", "street_review", "income_check",
                                                           "bureau_decision"]
            assert final["moves"][2]["actor_department"] == "civil_affairs"
            verified = (await approval.get(f"/v1/approvals/{aid}/verify", headers=auditor)).json()
            assert verified["valid"] is True, verified
            archive = (await approval.get(f"/v1/approvals/{aid}/archive", headers=auditor)).json()
            assert archive["digest"] == final["conclusion"]["archive_digest"]

            async def completed():
                c = (await intake.get(f"/v1/cases/{case}", headers=clerk)).json()
                return c if c["status"] not in ("accepted", "routed", "in_approval", "awaiting_supplement") else None

            c = await until(completed, "intake to complete the case from approval's outcome")
            assert c["outcome"] == "approved", c

        # The same affair as a screen shows it: one request to the gateway (:8000), the case with
        # its approval, every move's seal, and approval's verification of them.
        async with httpx.AsyncClient(base_url=GATEWAY, timeout=30) as gateway:
            r = await gateway.get(f"/api/views/cases/{case}", headers=auditor)
            assert r.status_code == 200, r.text
            view = r.json()
            assert view["missing"] == [] and view["case"]["outcome"] == "approved"
            [joined] = view["approvals"]
            assert joined["approval"]["id"] == aid and joined["approval"]["moves"] == final["moves"]
            assert all(m["seal"]["signature"] for m in joined["approval"]["moves"])
            assert joined["verification"]["valid"] is True
    finally:
        system.stop()
        await responder
