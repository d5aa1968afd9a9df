"""Registration checks who applies: an applicant intake does not know is refused, and the
catalogue's eligibility rule for the affair is enforced at the window (a 422 naming the rule
and why), on the real app and the real PostgreSQL; a refusal records nothing."""
from __future__ import annotations

import json
from datetime import date

import pytest

from civicgrid_intake.domain.identity_numbers import credit_code_check_character

from residents import COMMUNITY, STREET, register_resident

pytestmark = pytest.mark.integration

OTHER_STREET = "320104002"
TODAY_AGE_70 = date(1955, 1, 10)  # 70 or 71 in 2025/2026: below the senior allowance's 80


async def stored(pool) -> tuple[int, int]:
    return (await pool.fetchval("SELECT count(*) FROM events"), await pool.fetchval("SELECT count(*) FROM case_view"))


async def apply(intake, token, applicant_id: str, affair: str, materials: list[str], where: str = COMMUNITY,
                declared: dict | None = None):
    body = {"applicant_id": applicant_id, "affair_code": affair, "jurisdiction": where,
            "materials_handed_in": materials}
    if declared is not None:
        body["declared_facts"] = declared
    return await intake.post("/v1/cases", json=body, headers=token("window_clerk", where[:9]))


def refused(r, code: str) -> dict:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == code
    assert all(e["pointer"] == "#/applicant_id" for e in problem["errors"])
    return problem


async def test_an_applicant_intake_does_not_know_is_refused(intake, token, pool):
    before = await stored(pool)
    r = await apply(intake, token, "ap-" + "0" * 32, "residence.residence_proof",
                    ["id_card", "residence_proof", "purpose_note"])
    problem = refused(r, "unknown_applicant")
    assert "/v1/applicants" in problem["detail"]
    assert await stored(pool) == before


async def test_too_young_for_the_senior_allowance_names_the_age_rule(intake, token, pool):
    younger = await register_resident(intake, token, born=TODAY_AGE_70)
    before = await stored(pool)
    r = await apply(intake, token, younger, "elderly.senior_allowance", ["id_card", "household_register",
                                                                        "payment_account"])
    problem = refused(r, "not_eligible")
    assert [e["rule"] for e in problem["errors"]] == ["age_at_least"]
    assert "must be at least 80" in problem["errors"][0]["detail"]
    assert problem["eligibility_rule"] == {"rule": "all_of", "rules": [
        {"rule": "age_at_least", "years": 80}, {"rule": "household_registered_in", "level": "street"}]}
    assert await stored(pool) == before
    older = await register_resident(intake, token)
    r = await apply(intake, token, older, "elderly.senior_allowance", ["id_card", "household_register",
                                                                      "payment_account"])
    assert r.status_code == 201, r.text


async def test_household_registration_elsewhere_is_refused_for_dibao_but_residence_is_enough_for_temporary_aid(
        intake, token, pool):
    # 户籍 in another street of the district, living in Huaihai Road's community
    newcomer = await register_resident(intake, token, household=OTHER_STREET)
    r = await apply(intake, token, newcomer, "civil.minimum_living_allowance",
                    ["id_card", "household_register", "application_form", "verification_authorisation",
                     "income_statement"])
    problem = refused(r, "not_eligible")
    assert [e["rule"] for e in problem["errors"]] == ["household_registered_in"]
    # temporary assistance: household registration OR residence in the street
    r = await apply(intake, token, newcomer, "civil.temporary_assistance",
                    ["id_card", "application_form", "hardship_proof", "verification_authorisation"])
    assert r.status_code == 201, r.text


async def test_a_fact_the_profile_does_not_hold_is_declared_by_the_clerk_and_recorded(intake, token, pool):
    resident = await register_resident(intake, token)
    materials = ["disability_certificate", "id_card", "application_form"]
    r = await apply(intake, token, resident, "disability.home_rehabilitation_enrolment", materials)
    problem = refused(r, "not_eligible")
    assert [e["rule"] for e in problem["errors"]] == ["holds_disability_certificate"]
    assert "not known" in problem["errors"][0]["detail"]
    r = await apply(intake, token, resident, "disability.home_rehabilitation_enrolment", materials,
                    declared={"holds_disability_certificate": False})
    refused(r, "not_eligible")
    r = await apply(intake, token, resident, "disability.home_rehabilitation_enrolment", materials,
                    declared={"holds_disability_certificate": True})
    assert r.status_code == 201, r.text
    data = await pool.fetchval("SELECT data FROM events WHERE stream_id = $1 AND version = 1", r.json()["id"])
    data = json.loads(data) if isinstance(data, str) else data
    assert data["declared_facts"] == {"holds_disability_certificate": True}


async def test_the_40_50_subsidy_depends_on_sex_and_age(intake, token):
    materials = ["id_card", "employment_certificate", "contribution_record", "subsidy_application",
                 "social_security_card"]
    man_of_45 = await register_resident(intake, token, born=date(1980, 6, 1), sex="male")
    problem = refused(await apply(intake, token, man_of_45, "labour.flexible_employment_subsidy_4050", materials),
                      "not_eligible")
    assert [e["rule"] for e in problem["errors"]] == ["any_of"]
    woman_of_45 = await register_resident(intake, token, born=date(1980, 6, 1), sex="female")
    r = await apply(intake, token, woman_of_45, "labour.flexible_employment_subsidy_4050", materials)
    assert r.status_code == 201, r.text


async def test_a_shop_sign_is_for_an_enterprise_registered_in_the_district(intake, token):
    materials = ["business_licence", "application_form", "design_drawing", "premises_proof", "safety_undertaking"]
    resident = await register_resident(intake, token)
    problem = refused(await apply(intake, token, resident, "urban.shop_sign_approval", materials), "not_eligible")
    assert problem["errors"][0]["rule"] == "enterprise_registered_in"
    code = "91320104MA1N2P3Q4"
    r = await intake.post("/v1/applicants", headers=token("window_clerk", STREET), json={
        "kind": "enterprise", "credit_code": code + credit_code_check_character(code), "name": "南京淮海路便民超市有限公司",
        "legal_representative": "王秀英", "registered_address_code": COMMUNITY})
    assert r.status_code in (200, 201), r.text
    r = await apply(intake, token, r.json()["applicant_id"], "urban.shop_sign_approval", materials)
    assert r.status_code == 201, r.text


async def test_declared_facts_are_checked_field_by_field(intake, token, pool):
    resident = await register_resident(intake, token)
    before = await stored(pool)
    for declared, pointer in (({"holds_disability_certificate": "yes"}, "#/declared_facts/holds_disability_certificate"),
                              ({"owns_a_horse": True}, "#/declared_facts/owns_a_horse")):
        r = await apply(intake, token, resident, "disability.home_rehabilitation_enrolment",
                        ["disability_certificate", "id_card", "application_form"], declared=declared)
        assert r.status_code == 422, r.text
        assert pointer in [e.get("pointer") for e in r.json()["errors"]]
    assert await stored(pool) == before
