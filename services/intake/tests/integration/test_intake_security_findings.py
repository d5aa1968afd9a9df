"""The security review's findings on intake (issue 9), each reproduced exactly as reported, now
refused or filtered as it should be, and changing nothing: the applicant takeover by another
street's clerk, department systems and grid workers reading what is not routed to them, dates
that overflowed into a 500, references to nothing, the existence oracle, uneven problems, token
edge cases. The classes these belong to are covered route by route in tests/security/."""
from __future__ import annotations

import json

import pytest
from problem_assertions import assert_problem

from civicgrid_common.identity.tokens import mint_token
from civicgrid_common.identity.localkeys import private_key_path
from civicgrid_common.paths import local_state_dir

from civicgrid_intake.domain.identity_numbers import resident_id_check_character

pytestmark = pytest.mark.integration

STREET, COMMUNITY = "320104001", "320104001001"
OTHER_STREET, OTHER_COMMUNITY = "320104002", "320104002001"
NUMBER = "32010419780301456" + resident_id_check_character("32010419780301456")
RESIDENT = {"kind": "resident", "identity_number": NUMBER, "name": "周桂兰", "phone": "13912345678",
            "household_registration_code": STREET, "residence_community_code": COMMUNITY}
AID = "civil.temporary_assistance"


async def counts(pool) -> tuple[int, int, str]:
    rows = await pool.fetch("SELECT applicant_id, residence_community_code, household_registration_code, name "
                            "FROM applicants ORDER BY applicant_id")
    return (await pool.fetchval("SELECT count(*) FROM events"), await pool.fetchval("SELECT count(*) FROM outbox"),
            json.dumps([dict(r) for r in rows], default=str))


async def case_of(intake, token, applicant_id: str) -> str:
    clerk = token("window_clerk", STREET)
    r = await intake.post("/v1/cases", headers=clerk, json={
        "applicant_id": applicant_id, "affair_code": AID, "jurisdiction": COMMUNITY,
        "materials_handed_in": ["id_card", "application_form", "hardship_proof", "verification_authorisation"]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


# ------------------------------------------------------------------ 1. applicant takeover


async def test_another_streets_clerk_neither_sees_nor_overwrites_a_registered_resident(intake, token, pool):
    mine = (await intake.post("/v1/applicants", json=RESIDENT, headers=token("window_clerk", STREET))).json()
    case_id = await case_of(intake, token, mine["applicant_id"])
    before = await counts(pool)

    takeover = {**RESIDENT, "name": "冒名者", "phone": None, "household_registration_code": OTHER_STREET,
                "residence_community_code": OTHER_COMMUNITY}
    r = await intake.post("/v1/applicants", json=takeover, headers=token("window_clerk", OTHER_STREET))
    body = assert_problem(r, 409, "registered_elsewhere")
    # Nothing of the stored person: no name, no phone, no id, no place.
    for secret in ("周桂兰", "13912345678", mine["applicant_id"], COMMUNITY):
        assert secret not in r.text
    assert await counts(pool) == before
    # Street 001's clerk still serves their own applicant, with the open case in the history.
    again = await intake.get(f"/v1/applicants/{mine['applicant_id']}", headers=token("window_clerk", STREET))
    assert again.status_code == 200, again.text
    assert again.json()["profile"]["name"] == "周桂兰"
    assert [h["id"] for h in again.json()["history"]] == [case_id]
    assert body["errors"][0]["pointer"] == "#/identity_number"


async def test_a_match_in_the_clerks_own_street_does_not_move_the_resident(intake, token, pool):
    await intake.post("/v1/applicants", json=RESIDENT, headers=token("window_clerk", STREET))
    before = await counts(pool)
    moved = {**RESIDENT, "residence_community_code": "320104001002"}
    body = assert_problem(await intake.post("/v1/applicants", json=moved, headers=token("window_clerk", STREET)), 409,
                   "places_differ")
    assert [e["pointer"] for e in body["errors"]] == ["#/residence_community_code"]
    assert await counts(pool) == before


async def test_a_move_is_its_own_audited_command_by_the_new_places_clerk(intake, token, pool):
    mine = (await intake.post("/v1/applicants", json=RESIDENT, headers=token("window_clerk", STREET))).json()
    case_id = await case_of(intake, token, mine["applicant_id"])
    relocation = {"identity_number": NUMBER, "residence_community_code": OTHER_COMMUNITY,
                  "household_registration_code": OTHER_STREET, "evidence": "household_register"}
    # Only a clerk of the new place records it, and only with the document shown.
    assert_problem(await intake.post("/v1/applicants/relocations", json=relocation, headers=token("window_clerk", STREET)),
            403, "outside_jurisdiction")
    assert_problem(await intake.post("/v1/applicants/relocations", json={**relocation, "evidence": "a letter"},
                              headers=token("window_clerk", OTHER_STREET)), 422)
    r = await intake.post("/v1/applicants/relocations", json=relocation, headers=token("window_clerk", OTHER_STREET))
    assert r.status_code == 200, r.text
    assert (r.json()["profile"]["residence_community_code"], r.json()["profile"]["name"]) == (OTHER_COMMUNITY,
                                                                                               "周桂兰")
    assert r.json()["history"] == []  # street 002 sees none of street 001's cases
    event = await pool.fetchrow("SELECT data FROM events WHERE type = 'civicgrid.intake.applicant.relocated.v1'")
    data = event["data"] if isinstance(event["data"], dict) else json.loads(event["data"])
    assert (data["jurisdiction"], data["previous_jurisdiction"], data["evidence"]) == (
        OTHER_COMMUNITY, COMMUNITY, "household_register")
    assert NUMBER not in json.dumps(data) and "周桂兰" not in json.dumps(data, ensure_ascii=False)
    # Street 001 keeps seeing the applicant of its open case.
    seen = await intake.get(f"/v1/applicants/{mine['applicant_id']}", headers=token("window_clerk", STREET))
    assert seen.status_code == 200 and [h["id"] for h in seen.json()["history"]] == [case_id]
    # Recording the same move again is refused.
    assert_problem(await intake.post("/v1/applicants/relocations", json=relocation,
                              headers=token("window_clerk", OTHER_STREET)), 409, "not_moved")


# ------------------------------------------------------------------ 3. dates that overflowed


@pytest.mark.parametrize("instant", ["9999-12-30T09:00:00+08:00", "0001-01-01T00:00:00+08:00"])
async def test_a_due_date_from_an_instant_outside_the_calendar_is_422_naming_it(intake, token, instant):
    r = await intake.get("/v1/calendar/due-date", params={"from": instant, "days": 10}, headers=token("window_clerk"))
    body = assert_problem(r, 422)
    assert [(e["field"], e["in"]) for e in body["errors"]] == [("from", "query")]


async def test_a_due_date_beyond_the_calendar_is_422_naming_days(intake, token):
    r = await intake.get("/v1/calendar/due-date", params={"from": "2199-12-01T09:00:00+08:00", "days": 10000},
                         headers=token("window_clerk"))
    assert [e["field"] for e in assert_problem(r, 422)["errors"]] == ["days"]


# ------------------------------------------------------------------ 4. reads of what is not routed


async def test_department_systems_and_grid_workers_do_not_read_residents_routed_elsewhere(intake, token, pool):
    mine = (await intake.post("/v1/applicants", json=RESIDENT, headers=token("window_clerk", STREET))).json()
    await case_of(intake, token, mine["applicant_id"])  # handled by the street: routed to no department
    url = f"/v1/applicants/{mine['applicant_id']}"
    assert_problem(await intake.get(url, headers=token("department", "320104", department="tax")), 404)
    assert_problem(await intake.get(url, headers=token("department", "320104", department="civil_affairs")), 404)
    assert_problem(await intake.get(url, headers=token("grid_worker", COMMUNITY)), 403)


# ------------------------------------------------------------------ 5. references to nothing, unknown fields


async def test_a_complaint_routed_to_a_department_that_does_not_exist_is_refused(intake, token, pool):
    clerk = token("window_clerk", STREET)
    r = await intake.post("/v1/complaints", headers=clerk, json={
        "category": "public_order", "channel": "phone", "jurisdiction": COMMUNITY,
        "location": {"address": "淮海路 8 号"}, "anonymous": True})
    assert r.status_code == 201, r.text
    before = await counts(pool)
    routed = await intake.post(f"/v1/complaints/{r.json()['id']}/route", headers=clerk,
                               json={"kind": "lead", "lead": "public_security", "co_departments": ["ministry_of_magic"]})
    body = assert_problem(routed, 422, "complaint.unknown_department")
    assert [e["pointer"] for e in body["errors"]] == ["#/co_departments/0"]
    assert await counts(pool) == before


async def test_a_calendar_override_with_an_extra_field_is_refused(intake, token, pool):
    r = await intake.put("/v1/calendar/overrides/2026-12-24", headers=token("admin", "320104"),
                         json={"is_working_day": False, "reason": "平安夜", "extra": True})
    assert [e["pointer"] for e in assert_problem(r, 422)["errors"]] == ["#/extra"]
    assert await pool.fetchval("SELECT count(*) FROM calendar_overrides") == 0


async def test_booleans_are_json_booleans(intake, token):
    r = await intake.put("/v1/calendar/overrides/2026-12-24", headers=token("admin", "320104"),
                         json={"is_working_day": "no", "reason": "平安夜"})
    assert [e["pointer"] for e in assert_problem(r, 422)["errors"]] == ["#/is_working_day"]


# ------------------------------------------------------------------ 6. the existence oracle


async def test_a_lookup_from_another_street_is_answered_as_for_an_unknown_number(intake, token):
    await intake.post("/v1/applicants", json=RESIDENT, headers=token("window_clerk", STREET))
    other = token("window_clerk", OTHER_STREET)
    unknown = "11010519491231002X"
    registered = await intake.post("/v1/applicants/lookup", json={"identity_number": NUMBER}, headers=other)
    never = await intake.post("/v1/applicants/lookup", json={"identity_number": unknown}, headers=other)
    assert (registered.status_code, registered.json()) == (never.status_code, never.json()) == (404, never.json())


# ------------------------------------------------------------------ 7. one shape of problem


async def test_unreadable_bodies_are_malformed_body_problems(intake, token):
    clerk = {**token("window_clerk", STREET), "Content-Type": "application/json"}
    invalid_utf8 = b'{"kind": "resident", "name": "\xff\xfe"}'
    deep = b'{"kind": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    truncated = b'{"kind": "resident", '
    for body in (invalid_utf8, deep, truncated):
        r = await intake.post("/v1/applicants", content=body, headers=clerk)
        assert assert_problem(r, 400)["type"] == "/problems/malformed-body", r.text


async def test_a_nul_in_a_complaint_names_its_field(intake, token, pool):
    before = await counts(pool)
    r = await intake.post("/v1/complaints", headers=token("window_clerk", STREET), json={
        "category": "public_order", "channel": "phone", "jurisdiction": COMMUNITY,
        "location": {"address": "淮海路\u00008 号"}, "description": "夜间\u0000施工", "anonymous": True})
    body = assert_problem(r, 422)
    assert [e["pointer"] for e in body["errors"]] == ["#/description", "#/location/address"]
    assert await counts(pool) == before


async def test_complaint_and_catalogue_problems_come_from_the_catalogue(intake, token):
    clerk = token("window_clerk", STREET)
    for r in (await intake.get("/v1/complaints/cp-nothing", headers=clerk),
              await intake.get("/v1/affairs/no.such.affair", headers=clerk),
              await intake.post("/v1/affairs", json={"code": "x"}, headers=token("admin", "320104"))):
        assert r.json()["type"] in ("/problems/not-found", "/problems/validation-error"), r.text
        assert (await intake.get(r.json()["type"])).status_code == 200  # the type resolves to its page


async def test_the_same_json_in_another_key_order_is_the_same_body(intake, token, pool):
    headers = {**token("window_clerk", STREET), "Idempotency-Key": '"key-order-1"', "Content-Type": "application/json"}
    first = await intake.post("/v1/applicants", headers=headers, content=json.dumps(RESIDENT).encode())
    assert first.status_code == 201, first.text
    reordered = json.dumps(dict(reversed(list(RESIDENT.items()))), indent=2).encode()
    again = await intake.post("/v1/applicants", headers=headers, content=reordered)
    # The answer carries personal data, so it is not kept (no-store): the route runs again and
    # matches the applicant; the point is that the key is not "reused with another body".
    assert again.status_code in (200, 201) and again.json()["applicant_id"] == first.json()["applicant_id"]
    different = await intake.post("/v1/applicants", headers={**headers, "Idempotency-Key": '"key-order-2"'},
                                  content=json.dumps({**RESIDENT, "name": "周桂兰"}).encode())
    assert different.status_code in (200, 201)


# ------------------------------------------------------------------ 8. token edge cases


def _token(**claims) -> str:
    return mint_token(private_key_path(local_state_dir() / "keys").read_bytes(), ["window_clerk"], [STREET], **claims)


async def test_a_token_that_authorises_nothing_is_401(intake):
    import jwt

    key = private_key_path(local_state_dir() / "keys").read_bytes()
    good = jwt.decode(_token(), options={"verify_signature": False})
    for claims in ({**good, "roles": []}, {**good, "jurisdictions": []}):
        forged = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "civicgrid-local-1"})
        r = await intake.get("/v1/cases", headers={"Authorization": f"Bearer {forged}"})
        assert assert_problem(r, 401)["type"] == "/problems/unauthenticated"


async def test_two_authorization_headers_are_refused(intake):
    headers = [("Authorization", f"Bearer {_token()}"), ("Authorization", f"Bearer {_token()}")]
    r = await intake.get("/v1/cases", headers=headers)
    assert [(e["field"], e["in"]) for e in assert_problem(r, 400)["errors"]] == [("Authorization", "header")]


async def test_the_clock_leeway_is_documented(intake):
    schemes = (await intake.get("/openapi.json")).json()["components"]["securitySchemes"]
    assert any("30 s of leeway" in s.get("description", "") for s in schemes.values())
