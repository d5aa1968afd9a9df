"""Certificate and archive over HTTP: after approval's result the window clerk of the case's
jurisdiction hands out the certificate and files the case; every wrong state is a 409
problem+json that changes nothing."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from residents import COMMUNITY, STREET, register_resident

pytestmark = pytest.mark.integration

AID = "civil.temporary_assistance"
AID_MATERIALS = ["id_card", "application_form", "hardship_proof", "verification_authorisation"]
DECIDED = datetime(2026, 11, 20, 2, 15, tzinfo=timezone.utc)


async def counts(pool) -> tuple[int, int]:
    return (await pool.fetchval("SELECT count(*) FROM events"),
            await pool.fetchval("SELECT count(*) FROM case_view WHERE status = 'archived'"))


async def accepted_case(intake, token) -> str:
    clerk = token("window_clerk", STREET)
    applicant = await register_resident(intake, token)
    r = await intake.post("/v1/cases", headers=clerk, json={
        "applicant_id": applicant, "affair_code": AID, "jurisdiction": COMMUNITY, "materials_handed_in": AID_MATERIALS})
    assert r.status_code == 201, r.text
    r = await intake.post(f"/v1/cases/{r.json()['id']}/accept", headers=clerk)
    assert r.status_code == 200, r.text
    return r.json()["case_id"]


async def completed_case(intake_app, intake, token, outcome: str = "approved") -> str:
    case_id = await accepted_case(intake, token)
    # The result comes from approval's events (the consumer calls the service, not a person).
    await intake_app.state.cases.complete(case_id, outcome=outcome, approval_reference="approval-7",
                                          decided_at=DECIDED)
    return case_id


def problem(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if code is not None:
        assert r.json()["code"] == code
    return r.json()


async def test_an_approved_case_gets_its_certificate_then_is_archived(intake_app, intake, token):
    clerk = token("window_clerk", STREET)
    case_id = await completed_case(intake_app, intake, token)
    r = await intake.post(f"/v1/cases/{case_id}/certificate", headers=clerk,
                          json={"certificate_number": "QH-LS-2026-000321"})
    assert r.status_code == 200, r.text
    assert (r.json()["certificate_number"], r.json()["status"]) == ("QH-LS-2026-000321", "completed")
    r = await intake.post(f"/v1/cases/{case_id}/archive", headers=clerk)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "archived"
    queue = (await intake.get("/v1/cases", params={"status": "archived"}, headers=clerk)).json()
    assert [i["id"] for i in queue["items"]] == [case_id]
    history = (await intake.get(f"/v1/cases/{case_id}/history", headers=token("auditor", STREET))).json()
    types = [e["type"].split(".")[-2] for e in history["events"]]
    assert types[-3:] == ["completed", "certificate_issued", "archived"] and history["verification"]["valid"]


async def test_a_refused_case_is_archived_without_a_certificate(intake_app, intake, token, pool):
    clerk = token("window_clerk", STREET)
    case_id = await completed_case(intake_app, intake, token, outcome="refused")
    before = await counts(pool)
    r = await intake.post(f"/v1/cases/{case_id}/certificate", headers=clerk, json={"certificate_number": "QH-1"})
    problem(r, 409, "not_approved")
    assert await counts(pool) == before
    r = await intake.post(f"/v1/cases/{case_id}/archive", headers=clerk)
    assert r.status_code == 200 and r.json()["status"] == "archived"


async def test_wrong_states_are_409_and_change_nothing(intake_app, intake, token, pool):
    clerk = token("window_clerk", STREET)
    open_case = await accepted_case(intake, token)
    done = await completed_case(intake_app, intake, token)
    await intake.post(f"/v1/cases/{done}/certificate", headers=clerk, json={"certificate_number": "QH-2"})
    before = await counts(pool)
    cases = [
        (open_case, "certificate", {"certificate_number": "QH-3"}, "illegal_transition"),  # no result yet
        (open_case, "archive", None, "illegal_transition"),                             # still open
        (done, "certificate", {"certificate_number": "QH-4"}, "certificate_already_issued"),
    ]
    for case_id, action, body, code in cases:
        r = await intake.post(f"/v1/cases/{case_id}/{action}", headers=clerk, json=body)
        problem(r, 409, code)
    r = await intake.post(f"/v1/cases/{done}/archive", headers=clerk)
    assert r.status_code == 200
    before = await counts(pool)
    r = await intake.post(f"/v1/cases/{done}/archive", headers=clerk)
    problem(r, 409, "illegal_transition")   # archived once
    assert await counts(pool) == before


async def test_bad_input_roles_and_jurisdiction(intake_app, intake, token, pool):
    case_id = await completed_case(intake_app, intake, token)
    before = await counts(pool)
    clerk = token("window_clerk", STREET)
    for body, status in (({"certificate_number": "has spaces"}, 422), ({}, 422),
                         ({"certificate_number": "QH-5", "extra": 1}, 422)):
        problem(await intake.post(f"/v1/cases/{case_id}/certificate", headers=clerk, json=body), status)
    # Another street's clerk does not know the case exists; a reviewer or an auditor lacks the role.
    for who, status in ((token("window_clerk", "320104002"), 404), (token("street_reviewer", STREET), 403),
                        (token("auditor", STREET), 403)):
        problem(await intake.post(f"/v1/cases/{case_id}/certificate", headers=who,
                                  json={"certificate_number": "QH-5"}), status)
        problem(await intake.post(f"/v1/cases/{case_id}/archive", headers=who), status)
    problem(await intake.post("/v1/cases/no-such-case/archive", headers=clerk), 404)
    assert await counts(pool) == before
