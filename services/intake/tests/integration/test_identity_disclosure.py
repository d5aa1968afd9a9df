"""The applicant's identity number goes to a department system only when the case is routed to
that department, and every disclosure is recorded as an event (never the number itself, never
in a log); anyone else is refused (404 for a department system the case is not routed to, 403 for
other roles) and nothing is recorded."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from civicgrid_common.calendar import WorkingCalendar
from civicgrid_common.contracts import Contracts
from civicgrid_common.paths import contracts_dir

from civicgrid_intake.domain import case as c
from civicgrid_intake.domain.case import Actor, Case, CaseRuleViolation
from civicgrid_intake.domain.routing import LeadWithCoDepartments

from residents import COMMUNITY, STREET, register_resident, resident_number
from test_case_lifecycle import CLERK, DIBAO, T0, accepted, registered, routed

DISTRICT = "320104"
CIVIL_AFFAIRS_SYSTEM = Actor.of("dept-civil-affairs", ["department"])
DIBAO_CODE = "civil.minimum_living_allowance"
DIBAO_MATERIALS = ["id_card", "household_register", "application_form", "verification_authorisation",
                   "income_statement"]
PURPOSE = "低保家庭经济状况核对 (income and assets check of the household)"


# ---------------------------------------------------------------------- domain


def test_a_routed_case_discloses_to_its_department_and_records_it_without_the_number() -> None:
    case = routed()
    case.disclose_identity(department="civil_affairs", purpose=PURPOSE, actor=CIVIL_AFFAIRS_SYSTEM,
                           at=T0 + timedelta(days=1))
    event = case.pending_events[-1]
    assert event.type == c.IDENTITY_DISCLOSED
    assert event.data == {"applicant_id": case.applicant_id, "department": "civil_affairs", "purpose": PURPOSE,
                          "disclosed_at": (T0 + timedelta(days=1)).isoformat(), "actor": "dept-civil-affairs"}
    Contracts(contracts_dir()).validate(event.type, json.loads(json.dumps(event.data)))
    assert case.disclosures == 1


@pytest.mark.parametrize("make, department", [
    (registered, "civil_affairs"),   # not routed yet
    (accepted, "civil_affairs"),     # accepted, not routed yet
    (routed, "public_security"),     # routed elsewhere
])
def test_no_disclosure_before_routing_or_to_another_department(make, department) -> None:
    case = make()
    before = len(case.pending_events)
    with pytest.raises(CaseRuleViolation) as caught:
        case.disclose_identity(department=department, purpose=PURPOSE, actor=CIVIL_AFFAIRS_SYSTEM, at=T0)
    assert caught.value.code == "not_routed_to_department" and len(case.pending_events) == before


def test_a_lead_and_its_co_departments_may_each_have_it() -> None:
    affair = DIBAO.__class__(**{**vars(DIBAO), "routing": LeadWithCoDepartments("housing", ("urban_management",))})
    case = Case("case-l")
    case.register(applicant_id="ap-1", affair=affair, jurisdiction=COMMUNITY, channel="window",
                  materials_handed_in=affair.materials_required, actor=CLERK, at=T0)
    case.accept(daily_sequence=1, calendar=WorkingCalendar(), actor=CLERK, at=T0)
    case.route(actor=CLERK, at=T0)
    for department in ("housing", "urban_management"):
        case.disclose_identity(department=department, purpose=PURPOSE, actor=CIVIL_AFFAIRS_SYSTEM, at=T0)
    with pytest.raises(CaseRuleViolation):
        case.disclose_identity(department="civil_affairs", purpose=PURPOSE, actor=CIVIL_AFFAIRS_SYSTEM, at=T0)
    assert case.disclosures == 2


def test_a_disclosure_needs_a_purpose() -> None:
    with pytest.raises(CaseRuleViolation) as caught:
        routed().disclose_identity(department="civil_affairs", purpose=" ", actor=CIVIL_AFFAIRS_SYSTEM, at=T0)
    assert caught.value.code == "reason_required"


# ---------------------------------------------------------------------- over HTTP


async def dibao_case(intake, token, number: str, route: bool = True, phone: str | None = None) -> str:
    clerk = token("window_clerk", STREET)
    applicant = await register_resident(intake, token, number=number, phone=phone)
    r = await intake.post("/v1/cases", headers=clerk, json={
        "applicant_id": applicant, "affair_code": DIBAO_CODE, "jurisdiction": COMMUNITY,
        "materials_handed_in": DIBAO_MATERIALS})
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    for step in ("accept", "route") if route else ("accept",):
        assert (await intake.post(f"/v1/cases/{case_id}/{step}", headers=clerk)).status_code == 200
    return case_id


async def disclosures(pool, case_id: str, event_type: str = c.IDENTITY_DISCLOSED) -> list[dict]:
    rows = await pool.fetch("SELECT data FROM events WHERE stream_id = $1 AND type = $2 ORDER BY version",
                            case_id, event_type)
    return [json.loads(r["data"]) if isinstance(r["data"], str) else dict(r["data"]) for r in rows]


@pytest.mark.integration
async def test_the_routed_department_gets_the_number_and_the_disclosure_is_recorded(intake, token, pool, caplog):
    caplog.set_level(logging.DEBUG)
    number = resident_number()
    case_id = await dibao_case(intake, token, number)
    civil_affairs = token("department", DISTRICT, department="civil_affairs")
    r = await intake.post(f"/v1/cases/{case_id}/applicant-identity", json={"purpose": PURPOSE},
                          headers={**civil_affairs, "Idempotency-Key": "civil-affairs-check-77"})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    # no-store: the answer is not kept under its Idempotency-Key either
    kept = await pool.fetch("SELECT * FROM http_idempotency_keys")
    assert not [row for row in kept if number in str(dict(row))]
    body = r.json()
    assert (body["identity_number"], body["kind"], body["department"]) == (number, "resident_id", "civil_affairs")
    [recorded] = await disclosures(pool, case_id)
    assert recorded["department"] == "civil_affairs" and recorded["purpose"] == PURPOSE
    assert recorded["applicant_id"] == body["applicant_id"]
    # never the number: not in any event, not in the outbox, not in a log line
    assert await pool.fetchval("SELECT count(*) FROM events WHERE data::text LIKE '%' || $1 || '%'", number) == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE position(convert_to($1, 'UTF8') in value) > 0",
                               number) == 0
    assert number not in caplog.text
    # the auditor sees the disclosure in the case's history
    history = (await intake.get(f"/v1/cases/{case_id}/history", headers=token("auditor", DISTRICT))).json()
    assert history["events"][-1]["type"] == c.IDENTITY_DISCLOSED and history["verification"]["valid"]


@pytest.mark.integration
async def test_anyone_else_is_refused_and_nothing_is_recorded(intake, token, pool):
    number = resident_number()
    case_id = await dibao_case(intake, token, number)
    not_yet_routed = await dibao_case(intake, token, resident_number(), route=False)
    before = await pool.fetchval("SELECT count(*) FROM events")
    # A department system the case is not routed to does not learn that it exists (404); anyone
    # who is no department system lacks the role (403).
    attempts = [
        (case_id, token("department", DISTRICT, department="public_security"), 404),     # another department
        (case_id, token("department", "320105", department="civil_affairs"), 404),       # another district's system
        (not_yet_routed, token("department", DISTRICT, department="civil_affairs"), 404),  # not routed yet
        (case_id, token("window_clerk", STREET), 403),
        (case_id, token("street_reviewer", STREET), 403),
        (case_id, token("auditor", DISTRICT), 403),
        (case_id, token("admin", DISTRICT), 403),
    ]
    for target, headers, status in attempts:
        r = await intake.post(f"/v1/cases/{target}/applicant-identity", headers=headers, json={"purpose": PURPOSE})
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert number not in r.text
    assert await pool.fetchval("SELECT count(*) FROM events") == before


@pytest.mark.integration
async def test_bad_requests_are_4xx_and_record_nothing(intake, token, pool):
    case_id = await dibao_case(intake, token, resident_number())
    civil_affairs = token("department", DISTRICT, department="civil_affairs")
    before = await pool.fetchval("SELECT count(*) FROM events")
    for body in ({}, {"purpose": ""}, {"purpose": "x" * 501}, {"purpose": PURPOSE, "also": "the phone"}):
        r = await intake.post(f"/v1/cases/{case_id}/applicant-identity", headers=civil_affairs, json=body)
        assert r.status_code == 422, r.text
    r = await intake.post("/v1/cases/no-such-case/applicant-identity", headers=civil_affairs, json={"purpose": PURPOSE})
    assert r.status_code == 404
    r = await intake.post(f"/v1/cases/{case_id}/applicant-identity", json={"purpose": PURPOSE})
    assert r.status_code == 401
    assert await pool.fetchval("SELECT count(*) FROM events") == before
