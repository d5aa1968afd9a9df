"""The security review's findings on approval (issue 9), each reproduced as reported and now
refused or filtered, changing nothing: an extension to 9999 that froze the service, a due date
computed from an instant outside the calendar, department systems, auditors and admins reading
approvals they have nothing to do with, references to nothing, and the existence oracle."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from problem_assertions import assert_problem

from approval_builders import COMMUNITY, STREET
from approval_flows import act, event_count, route_case

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------ 2. an extension to the end of time


@pytest.mark.parametrize("new_due_date,code", [("9999-12-31", None), ("2150-01-01", "extension-too-long")])
async def test_an_extension_far_beyond_its_limit_is_refused_at_once(api, approval_app, people, pool, new_due_date,
                                                                    code):
    aid = await route_case(approval_app)
    before = await event_count(pool)
    r = await act(api, people["community"], aid, "extend", comment="入户调查", new_due_date=new_due_date)
    body = assert_problem(r, 422, code)
    assert [e["pointer"] for e in body["errors"]] == ["#/new_due_date"]
    assert await event_count(pool) == before


async def test_an_extension_adds_at_most_the_steps_own_time_limit(api, approval_app, people, pool):
    aid = await route_case(approval_app)
    a = await approval_app.state.approvals.load(aid)
    calendar = approval_app.state.approvals.calendar
    latest = (await calendar()).nth_working_day_after(date.fromisoformat(a.due_date), a.step.extension_limit)
    too_far = await act(api, people["community"], aid, "extend", comment="入户调查",
                        new_due_date=str(latest + timedelta(days=1)))
    assert_problem(too_far, 422, "extension-too-long")
    ok = await act(api, people["community"], aid, "extend", comment="入户调查", new_due_date=str(latest))
    assert ok.status_code == 200, ok.text


# ------------------------------------------------------------------ 3. due dates out of range


@pytest.mark.parametrize("instant", ["9999-12-30T09:00:00+08:00", "0001-01-01T00:00:00+08:00"])
async def test_a_due_date_from_an_instant_outside_the_calendar_is_422(api, token, instant):
    r = await api.get("/v1/calendar/due-date", params={"from": instant, "days": 10}, headers=token("leader"))
    assert [(e["field"], e["in"]) for e in assert_problem(r, 422)["errors"]] == [("from", "query")]


# ------------------------------------------------------------------ 4. reads of what is not one's own


async def test_a_department_system_reads_only_approvals_that_concern_its_department(api, approval_app, people, token):
    civil = await route_case(approval_app)  # the 低保 flow names civil_affairs
    tax = token("department", "320104", department="tax", subject="tax-system")
    listed = (await api.get("/v1/approvals", headers=tax)).json()
    assert listed["items"] == [] and listed["total"] == 0
    for path in ("", "/verify", "/archive"):
        assert_problem(await api.get(f"/v1/approvals/{civil}{path}", headers=tax), 404)
    own = (await api.get("/v1/approvals", headers=people["civil_system"])).json()
    assert [i["id"] for i in own["items"]] == [civil]
    assert (await api.get(f"/v1/approvals/{civil}", headers=people["civil_system"])).status_code == 200


async def test_auditors_and_admins_of_another_district_read_nothing(api, approval_app, token):
    aid = await route_case(approval_app)
    for role in ("auditor", "admin"):
        stranger = token(role, "320105")
        assert (await api.get("/v1/approvals", headers=stranger)).json()["items"] == []
        assert_problem(await api.get(f"/v1/approvals/{aid}", headers=stranger), 404)
        assert_problem(await api.get(f"/v1/approvals/{aid}/verify", headers=stranger), 404)


async def test_an_approval_of_another_jurisdiction_is_answered_like_an_unknown_one(api, approval_app, token):
    aid = await route_case(approval_app)
    other = token("community_reviewer", "320104002001")
    seen = await api.get(f"/v1/approvals/{aid}", headers=other)
    unknown = await api.get("/v1/approvals/5c2d2173-db35-57ee-a4ca-6ebcb4bc8a14", headers=other)
    assert (seen.status_code, seen.json()["type"]) == (unknown.status_code, unknown.json()["type"]) == (
        404, "/problems/not-found")
    assert COMMUNITY not in seen.text and STREET not in seen.text


# ------------------------------------------------------------------ 5. references to nothing


async def test_a_supplement_request_names_only_materials_of_the_cases_checklist(api, approval_app, people, pool):
    aid = await route_case(approval_app, materials=["id_card", "household_register", "income_statement"])
    before = await event_count(pool)
    r = await act(api, people["community"], aid, "request_supplement", comment="请补交", materials=["unicorn_permit"])
    assert [e["pointer"] for e in assert_problem(r, 422, "unknown-material")["errors"]] == ["#/materials"]
    assert await event_count(pool) == before
    ok = await act(api, people["community"], aid, "request_supplement", comment="请补交户口簿",
                   materials=["household_register"])
    assert ok.status_code == 200, ok.text


ACCESS = {"department": "market_regulation", "title": "食品安全入户宣传", "purpose": "宣传", "work_kind": "survey",
          "documents": [{"name": "申请函", "sha256": "a" * 64}], "communities": [COMMUNITY],
          "cost_bearer": "区市场监管局", "valid_from": "2026-05-01", "valid_until": "2026-06-30"}


@pytest.mark.parametrize("change,pointer", [
    ({"communities": [COMMUNITY, "320105001001"]}, "#/communities/1"),  # another district's community
    ({"department": "ministry_of_magic"}, "#/department"),
])
async def test_an_access_application_naming_what_does_not_exist_here_is_refused(api, token, pool, change, pointer):
    applicant = token("department", "320104", department=change.get("department", "market_regulation"))
    before = await event_count(pool)
    r = await api.post("/v1/access-applications", json={**ACCESS, **change}, headers=applicant)
    assert pointer in [e["pointer"] for e in assert_problem(r, 422)["errors"]]
    assert await event_count(pool) == before


async def test_a_workflow_naming_an_unknown_department_is_refused(api, token, pool):
    admin = token("admin", "320104")
    current = (await api.get("/v1/workflows/civil.minimum_living_allowance", headers=admin)).json()["definition"]
    current["steps"][-1]["department"] = "ministry_of_magic"
    before = await event_count(pool)
    r = await api.put("/v1/workflows/civil.minimum_living_allowance", json=current, headers=admin)
    assert "#/steps/3/department" in [e["pointer"] for e in assert_problem(r, 422)["errors"]]
    assert await event_count(pool) == before
