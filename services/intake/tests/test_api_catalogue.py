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


async def test_only_an_admin_of_this_district_changes_it(intake, token):
    body = {"reason": "x", "affair": {}}
    clerk = await intake.put("/v1/affairs/civil.minimum_living_allowance", json=body,
                             headers=token("window_clerk", "320104"))
    other = await intake.put("/v1/affairs/civil.minimum_living_allowance", json=body,
                             headers=token("admin", "320105"))
    street = await intake.put("/v1/affairs/civil.minimum_living_allowance", json=body,
                              headers=token("admin", "320104001"))
    assert (clerk.status_code, other.status_code, street.status_code) == (403, 403, 403)


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
