"""The affairs catalogue over HTTP, on the real PostgreSQL (seeded on first start)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


async def test_everyone_signed_in_reads_the_seeded_catalogue(intake, token):
    r = await intake.get("/v1/affairs", headers=token("window_clerk", "320104001"))
    assert r.status_code == 200
    affairs = {a["code"]: a for a in r.json()}
    assert len(affairs) >= 12
    dibao = affairs["civil.minimum_living_allowance"]
    assert dibao["version"] == 1 and dibao["department"] == "civil_affairs" and dibao["materials"]


async def test_no_token_no_catalogue(intake):
    r = await intake.get("/v1/affairs")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_an_admin_revises_an_entry_and_earlier_versions_stay(intake, token):
    admin = token("admin", "320104")
    current = (await intake.get("/v1/affairs/civil.minimum_living_allowance", headers=admin)).json()
    changed = {k: v for k, v in current.items() if k != "version"}
    changed["time_limit_working_days"] = current["time_limit_working_days"] - 5
    r = await intake.put("/v1/affairs/civil.minimum_living_allowance",
                         json={"reason": "district notice on faster review", "affair": changed}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    versions = (await intake.get("/v1/affairs/civil.minimum_living_allowance/versions", headers=admin)).json()
    assert [v["time_limit_working_days"] for v in versions] == [
        current["time_limit_working_days"], current["time_limit_working_days"] - 5]


async def _current(intake, token, code: str = "civil.minimum_living_allowance") -> dict:
    current = (await intake.get(f"/v1/affairs/{code}", headers=token("admin", "320104"))).json()
    return {k: v for k, v in current.items() if k != "version"}


async def test_only_an_admin_of_this_district_changes_it(intake, token):
    # A valid change: the refusal is about who asks, decided by the catalogue's service.
    changed = await _current(intake, token)
    changed["fee_fen"] += 100
    body = {"reason": "x", "affair": changed}
    clerk = await intake.put("/v1/affairs/civil.minimum_living_allowance", json=body,
                             headers=token("window_clerk", "320104"))
    other = await intake.put("/v1/affairs/civil.minimum_living_allowance", json=body,
                             headers=token("admin", "320105"))
    street = await intake.put("/v1/affairs/civil.minimum_living_allowance", json=body,
                              headers=token("admin", "320104001"))
    retire = await intake.delete("/v1/affairs/civil.minimum_living_allowance", params={"reason": "x"},
                                 headers=token("admin", "320105"))
    assert (clerk.status_code, other.status_code, street.status_code, retire.status_code) == (403, 403, 403, 403)
    assert other.json()["code"] == "not_the_districts_admin"
    versions = (await intake.get("/v1/affairs/civil.minimum_living_allowance/versions",
                                 headers=token("admin", "320104"))).json()
    assert len(versions) == 1


async def test_a_bad_entry_is_refused_field_by_field_and_changes_nothing(intake, token):
    admin = token("admin", "320104")
    before = (await intake.get("/v1/affairs", headers=admin)).json()
    r = await intake.post("/v1/affairs", json={"code": "x.y", "name_zh": "", "level": "galaxy"}, headers=admin)
    assert r.status_code == 422
    problem = r.json()
    assert problem["errors"] and all(e["pointer"].startswith("#/") and e["detail"] for e in problem["errors"])
    assert (await intake.get("/v1/affairs", headers=admin)).json() == before


async def test_unknown_affair_is_a_404_problem(intake, token):
    r = await intake.get("/v1/affairs/nothing.here", headers=token("window_clerk", "320104001"))
    assert r.status_code == 404 and r.json()["status"] == 404


async def test_a_bad_entry_is_answered_with_a_pointer_per_member(intake, token):
    admin = token("admin", "320104")
    entry = await _current(intake, token)
    entry["code"] = "civil.another_allowance"
    entry["materials"][0]["code"] = "Not A Code"
    entry["eligibility"] = {"rule": "all_of", "rules": [{"rule": "age_at_least", "years": "60"}]}
    entry["routing"] = {"kind": "lead", "lead": "civil_affairs", "co_departments": []}
    r = await intake.post("/v1/affairs", json=entry, headers=admin)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert {e["pointer"] for e in r.json()["errors"]} == {
        "#/materials/0/code", "#/eligibility/rules/0/years", "#/routing/co_departments"}
    entry["code"] = "civil.minimum_living_allowance"
    r = await intake.put("/v1/affairs/civil.minimum_living_allowance", json={"reason": "x", "affair": entry},
                         headers=admin)
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json()["errors"]} == {
        "#/affair/materials/0/code", "#/affair/eligibility/rules/0/years", "#/affair/routing/co_departments"}


async def test_the_catalogues_own_rules_point_into_the_revision(intake, token):
    admin = token("admin", "320104")
    entry = await _current(intake, token)
    other = await _current(intake, token, "civil.temporary_assistance")
    entry["open311"]["service_code"] = other["open311"]["service_code"]
    r = await intake.put("/v1/affairs/civil.minimum_living_allowance", json={"reason": "x", "affair": entry},
                         headers=admin)
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["#/affair/open311/service_code"]
    r = await intake.put("/v1/affairs/civil.temporary_assistance", json={"reason": "x", "affair": entry},
                         headers=admin)
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["#/affair/code"]
    entry = await _current(intake, token)
    entry["department"] = "ministry_of_magic"
    entry["routing"] = {"kind": "department", "department": "ministry_of_magic"}
    r = await intake.put("/v1/affairs/civil.minimum_living_allowance", json={"reason": "x", "affair": entry},
                         headers=admin)
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["#/affair/department"]


async def test_an_unknown_or_retired_code_is_a_404_for_every_route(intake, token):
    admin = token("admin", "320104")
    entry = await _current(intake, token)
    entry["code"] = "nothing.here"
    assert (await intake.get("/v1/affairs/nothing.here/versions", headers=admin)).status_code == 404
    assert (await intake.put("/v1/affairs/nothing.here", json={"reason": "x", "affair": entry},
                             headers=admin)).status_code == 404
    assert (await intake.delete("/v1/affairs/nothing.here", params={"reason": "x"}, headers=admin)).status_code == 404
    r = await intake.delete("/v1/affairs/residence.residence_proof", params={"reason": "certificate abolished"},
                            headers=admin)
    assert r.status_code == 204
    for again in (await intake.get("/v1/affairs/residence.residence_proof", headers=admin),
                  await intake.delete("/v1/affairs/residence.residence_proof", params={"reason": "x"},
                                      headers=admin)):
        assert again.status_code == 404 and again.json()["type"] == "/problems/not-found"


def test_openapi_documents_the_affair_its_routing_and_its_recursive_rules():
    from civicgrid_intake.config import IntakeSettings
    from civicgrid_intake.entrypoints.main import build_app

    document = build_app(IntakeSettings(outbox_relay=False, approval_consumer=False)).openapi()
    schemas = document["components"]["schemas"]
    post = document["paths"]["/v1/affairs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert post["$ref"] == "#/components/schemas/Affair"
    assert schemas["RevisionIn"]["properties"]["affair"]["$ref"] == "#/components/schemas/Affair"
    affair = schemas["Affair"]
    assert affair["additionalProperties"] is False
    assert affair["properties"]["routing"]["discriminator"]["propertyName"] == "kind"
    assert affair["properties"]["eligibility"]["discriminator"]["propertyName"] == "rule"
    any_of = schemas["AnyOf"]["properties"]["rules"]
    assert any_of["minItems"] == 2 and {"$ref": "#/components/schemas/AnyOf"} in any_of["items"]["oneOf"]
    assert "rule" in schemas["AgeAtLeast"]["required"]
