"""Optional materials (needed only if applicable): accepted at registration and in supplements,
shown as handed in, never counted as missing; domain and over HTTP."""
from __future__ import annotations

import json

import pytest

from civicgrid_common.contracts import Contracts
from civicgrid_common.paths import contracts_dir
from civicgrid_intake.domain.case import Case, CaseRuleViolation
from civicgrid_intake.domain.materials import InvalidMaterials, MaterialsChecklist

from residents import COMMUNITY, STREET, register_resident
from test_case_lifecycle import CLERK, DIBAO, T0

DIBAO_WITH_OPTIONAL = DIBAO.__class__(**{**vars(DIBAO), "materials_optional": ("illness_proof", "disability_card")})


def test_the_checklist_accepts_optional_materials_and_never_misses_them() -> None:
    checklist = MaterialsChecklist.start(("id_card", "form"), ["disability_card", "id_card"],
                                         ("illness_proof", "disability_card"))
    assert checklist.missing == ("form",)
    assert checklist.ordered_handed_in() == ["id_card", "disability_card"]
    done = checklist.with_added(["form"])
    assert done.complete and done.optional == ("illness_proof", "disability_card")
    assert done.with_added(["illness_proof"]).ordered_handed_in() == ["id_card", "form", "illness_proof",
                                                                       "disability_card"]
    with pytest.raises(InvalidMaterials, match="if applicable: illness_proof, disability_card"):
        checklist.with_added(["passport"])
    with pytest.raises(InvalidMaterials, match="either required or optional"):
        MaterialsChecklist.start(("id_card",), [], ("id_card",))


def test_a_case_registers_with_optional_materials_and_replays_them() -> None:
    case = Case("case-o")
    case.register(applicant_id="ap-1", affair=DIBAO_WITH_OPTIONAL, jurisdiction=COMMUNITY, channel="window",
                  materials_handed_in=[*DIBAO.materials_required, "disability_card"], actor=CLERK, at=T0)
    assert case.missing_materials == ()
    [event] = case.pending_events
    assert event.data["materials_optional"] == ["illness_proof", "disability_card"]
    assert event.data["materials_handed_in"][-1] == "disability_card"
    Contracts(contracts_dir()).validate(event.type, json.loads(json.dumps(event.data)))

    class Stored:
        version, type, data = 1, event.type, json.loads(json.dumps(event.data))

    again = Case.replay("case-o", [Stored()])
    assert again.checklist == case.checklist and again.affair == case.affair


def test_an_optional_material_is_supplemented_before_acceptance_and_recorded() -> None:
    case = Case("case-p")
    case.register(applicant_id="ap-1", affair=DIBAO_WITH_OPTIONAL, jurisdiction=COMMUNITY, channel="window",
                  materials_handed_in=list(DIBAO.materials_required[:2]), actor=CLERK, at=T0)
    case.supplement(["illness_proof", DIBAO.materials_required[2]], actor=CLERK, at=T0)
    supplemented = case.pending_events[-1].data
    assert supplemented["materials_added"] == [DIBAO.materials_required[2], "illness_proof"]
    assert supplemented["materials_missing"] == [DIBAO.materials_required[3]]
    with pytest.raises(CaseRuleViolation):
        case.supplement(["illness_proof"], actor=CLERK, at=T0)  # already handed in


@pytest.mark.integration
async def test_over_http_optional_materials_are_accepted_and_not_missing(intake, token, pool):
    clerk = token("window_clerk", STREET)
    applicant = await register_resident(intake, token)
    required = ["id_card", "household_register", "application_form", "verification_authorisation", "income_statement"]
    r = await intake.post("/v1/cases", headers=clerk, json={
        "applicant_id": applicant, "affair_code": "civil.minimum_living_allowance", "jurisdiction": COMMUNITY,
        "materials_handed_in": ["illness_or_disability_proof", *required]})
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["missing_materials"] == []
    assert case["materials_optional"] == ["illness_or_disability_proof"]
    assert case["materials_handed_in"] == [*required, "illness_or_disability_proof"]
    r = await intake.post(f"/v1/cases/{case['id']}/accept", headers=clerk)
    assert r.status_code == 200, r.text

    # without the optional one nothing is missing either; it can be brought later, before acceptance
    r = await intake.post("/v1/cases", headers=clerk, json={
        "applicant_id": applicant, "affair_code": "civil.minimum_living_allowance", "jurisdiction": COMMUNITY,
        "materials_handed_in": required[:4]})
    assert [m["code"] for m in r.json()["missing_materials"]] == ["income_statement"]
    r = await intake.post(f"/v1/cases/{r.json()['id']}/supplements", headers=clerk,
                          json={"materials": ["income_statement", "illness_or_disability_proof"]})
    assert r.status_code == 200, r.text
    assert r.json()["missing_materials"] == [] and "illness_or_disability_proof" in r.json()["materials_handed_in"]

    # a material the affair does not list at all is still refused, naming the field, recording nothing
    before = await pool.fetchval("SELECT count(*) FROM events")
    r = await intake.post("/v1/cases", headers=clerk, json={
        "applicant_id": applicant, "affair_code": "civil.minimum_living_allowance", "jurisdiction": COMMUNITY,
        "materials_handed_in": [*required, "marriage_certificate"]})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "#/materials_handed_in"
    assert "if applicable: illness_or_disability_proof" in r.json()["detail"]
    assert await pool.fetchval("SELECT count(*) FROM events") == before
