"""Applicants over HTTP, on the real app and the real PostgreSQL: registration and matching,
every failing rule of a number named, masking by role, the event and the logs free of personal
data, the personal fields encrypted at rest, jurisdiction, and every refusal a problem+json
that changes nothing."""
from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest

from civicgrid_intake.adapters.applicant_store import applicant_history
from civicgrid_intake.domain.identity_numbers import credit_code_check_character, resident_id_check_character

pytestmark = pytest.mark.integration

STREET = "320104001"  # Huaihai Road street
COMMUNITY = "320104001001"
OTHER_STREET = "320104002"
OTHER_COMMUNITY = "320104002001"

LI_NUMBER = "32010419850612123" + resident_id_check_character("32010419850612123")  # a man, 1985-06-12
LI = {
    "kind": "resident",
    "identity_number": LI_NUMBER,
    "name": "李建国",
    "phone": "13851234567",
    "household_registration_code": STREET,
    "residence_community_code": COMMUNITY,
}
CREDIT_CODE = "91320104MA1N2P3Q4" + credit_code_check_character("91320104MA1N2P3Q4")
SHOP = {
    "kind": "enterprise",
    "credit_code": CREDIT_CODE,
    "name": "南京淮海路便民超市有限公司",
    "legal_representative": "王秀英",
    "registered_address_code": COMMUNITY,
}


def with_check(number: str, right: bool) -> str:
    """`number` with its last character replaced by the right check character, or a wrong one."""
    good = resident_id_check_character(number[:17])
    return number[:17] + (good if right else ("0" if good != "0" else "1"))


async def register(intake, token, body=LI, who=STREET) -> httpx.Response:
    return await intake.post("/v1/applicants", json=body, headers=token("window_clerk", who))


async def stored(pool) -> tuple[int, int]:
    """Events and applicant rows: a refusal changes neither."""
    return (await pool.fetchval("SELECT count(*) FROM events"), await pool.fetchval("SELECT count(*) FROM applicants"))


def assert_problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == status
    return r.json()


# ---------------------------------------------------------------------- registration and matching


async def test_a_clerk_registers_a_resident(intake, token):
    r = await register(intake, token)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["applicant_id"].startswith("ap-") and len(body["applicant_id"]) == 35
    assert r.headers["location"] == f"/v1/applicants/{body['applicant_id']}"
    assert (body["matched"], body["profile_updated"], body["kind"]) == (False, False, "resident")
    assert body["profile"]["identity_number"] == LI_NUMBER and body["profile"]["phone"] == LI["phone"]
    # GB 11643 carries birth date and sex in the number.
    assert (body["birth_date"], body["sex"]) == ("1985-06-12", "male")
    assert body["history"] == []


async def test_the_second_registration_matches_and_changes_only_what_the_clerk_changed(intake, token, pool):
    first = (await register(intake, token)).json()
    again = await register(intake, token, {**LI, "identity_number": LI_NUMBER.lower()})
    assert again.status_code == 200, again.text
    assert (again.json()["applicant_id"], again.json()["matched"], again.json()["profile_updated"]) == (
        first["applicant_id"], True, False)
    assert again.json()["updated_at"] == first["updated_at"]

    # Phone not sent: the stored one stays. A new phone: the profile is updated.
    without_phone = {k: v for k, v in LI.items() if k != "phone"}
    kept = (await register(intake, token, without_phone)).json()
    assert (kept["profile_updated"], kept["profile"]["phone"]) == (False, LI["phone"])
    moved = (await register(intake, token, {**LI, "phone": "13900001111"})).json()
    assert (moved["matched"], moved["profile_updated"], moved["profile"]["phone"]) == (True, True, "13900001111")

    clerk = token("window_clerk", STREET)
    profile = (await intake.get(f"/v1/applicants/{first['applicant_id']}", headers=clerk)).json()
    assert profile["profile"]["phone"] == "13900001111"
    # null: the applicant has no phone any more.
    gone = (await register(intake, token, {**LI, "phone": None})).json()
    assert (gone["profile_updated"], gone["profile"]["phone"]) == (True, None)
    # One person, one stream with one event, one row.
    registered = await pool.fetch("SELECT stream_id FROM events WHERE stream_type = 'applicant'")
    assert [r["stream_id"] for r in registered] == [first["applicant_id"]]
    assert await pool.fetchval("SELECT count(*) FROM applicants") == 1


async def test_an_applicant_whose_personal_data_were_erased_comes_back_under_the_same_id(intake, token, pool):
    first = (await register(intake, token)).json()
    await pool.execute("DELETE FROM applicants WHERE applicant_id = $1", first["applicant_id"])
    again = await register(intake, token)
    assert again.status_code == 201, again.text
    assert (again.json()["applicant_id"], again.json()["matched"]) == (first["applicant_id"], False)
    # The stream goes on: still its one registered event.
    assert await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", first["applicant_id"]) == 1


async def test_two_clerks_registering_one_person_at_once_make_one_applicant(intake, token, pool):
    answers = await asyncio.gather(register(intake, token), register(intake, token))
    assert sorted(r.status_code for r in answers) == [200, 201], [r.text for r in answers]
    assert len({r.json()["applicant_id"] for r in answers}) == 1
    assert await pool.fetchval("SELECT count(*) FROM events WHERE stream_type = 'applicant'") == 1
    assert await pool.fetchval("SELECT count(*) FROM applicants") == 1


async def test_an_enterprise_is_registered_by_its_credit_code(intake, token):
    r = await register(intake, token, SHOP)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["profile"] == {"kind": "enterprise", "credit_code": CREDIT_CODE, "name": SHOP["name"],
                               "legal_representative": "王秀英", "registered_address_code": COMMUNITY}
    assert (body["birth_date"], body["sex"]) == (None, None)


# ---------------------------------------------------------------------- bad input


async def test_an_enterprise_with_a_bad_credit_code_is_refused_naming_the_field(intake, token, pool):
    before = await stored(pool)
    good = CREDIT_CODE[17]
    bad = CREDIT_CODE[:17] + ("0" if good != "0" else "1")
    problem = assert_problem(await register(intake, token, {**SHOP, "credit_code": bad}), 422)
    assert [(e["pointer"], e["rule"]) for e in problem["errors"]] == [("#/credit_code", "check_character")]
    assert bad not in json.dumps(problem, ensure_ascii=False)
    assert await stored(pool) == before


async def test_a_bad_check_character_is_refused_naming_the_rule(intake, token, pool):
    before = await stored(pool)
    bad = with_check(LI_NUMBER, right=False)
    problem = assert_problem(await register(intake, token, {**LI, "identity_number": bad}), 422)
    assert [(e["pointer"], e["rule"]) for e in problem["errors"]] == [("#/identity_number", "check_character")]
    # The answer names the rule, never the number typed in.
    assert bad not in json.dumps(problem, ensure_ascii=False)
    assert await stored(pool) == before


async def test_every_failing_rule_is_reported_at_once(intake, token, pool):
    before = await stored(pool)
    # Born on 30 February, wrong check character, and a bad phone besides.
    number = with_check("32010419900230002", right=False)
    problem = assert_problem(await register(intake, token, {**LI, "identity_number": number, "phone": "12"}), 422)
    assert {(e["pointer"], e["rule"]) for e in problem["errors"]} == {
        ("#/identity_number", "check_character"), ("#/identity_number", "birth_date_invalid"),
        ("#/phone", "invalid")}
    assert await stored(pool) == before


async def test_birth_date_and_sex_given_must_agree_with_the_number(intake, token, pool):
    before = await stored(pool)
    problem = assert_problem(await register(intake, token, {**LI, "birth_date": "1985-06-13", "sex": "female"}), 422)
    assert {(e["pointer"], e["rule"]) for e in problem["errors"]} == {
        ("#/birth_date", "birth_date_mismatch"), ("#/sex", "sex_mismatch")}
    assert await stored(pool) == before
    agreeing = await register(intake, token, {**LI, "birth_date": "1985-06-12", "sex": "male"})
    assert agreeing.status_code == 201, agreeing.text


@pytest.mark.parametrize("body, pointer", [
    ({**LI, "name": 42}, "#/name"),
    ({**LI, "kind": "cat"}, "#/kind"),
    ({k: v for k, v in LI.items() if k != "kind"}, "#/kind"),
    ({k: v for k, v in LI.items() if k != "residence_community_code"}, "#/residence_community_code"),
    ({**LI, "birth_date": "yesterday"}, "#/birth_date"),
    ({**LI, "sex": "unknown"}, "#/sex"),
    ({**LI, "favourite_colour": "red"}, "#/favourite_colour"),
    ({**SHOP, "credit_code": None}, "#/credit_code"),
    ({**LI, "identity_number": "1" * 40}, "#/identity_number"),
    ({**LI, "residence_community_code": "320104001"}, "#/residence_community_code"),
    ({**LI, "household_registration_code": "32A104"}, "#/household_registration_code"),
    ({**SHOP, "legal_representative": " "}, "#/legal_representative"),
])
async def test_wrong_types_and_bad_fields_are_422_naming_the_field(intake, token, pool, body, pointer):
    before = await stored(pool)
    problem = assert_problem(await register(intake, token, body), 422)
    assert [e["pointer"] for e in problem["errors"]] == [pointer]
    assert await stored(pool) == before


async def test_a_body_that_is_no_object_is_422(intake, token, pool):
    before = await stored(pool)
    problem = assert_problem(await register(intake, token, [LI]), 422)
    assert [e["pointer"] for e in problem["errors"]] == ["#"]
    assert await stored(pool) == before


async def test_malformed_json_is_400_and_an_oversized_body_413(intake, token, pool):
    before = await stored(pool)
    headers = {**token("window_clerk", STREET), "content-type": "application/json"}
    assert_problem(await intake.post("/v1/applicants", content=b'{"kind": "resident", ', headers=headers), 400)
    huge = json.dumps({**LI, "name": "张" * 2_000_000}).encode()
    assert_problem(await intake.post("/v1/applicants", content=huge, headers=headers), 413)
    assert await stored(pool) == before


async def test_only_a_clerk_registers_and_only_with_a_token(intake, token, pool):
    before = await stored(pool)
    assert_problem(await intake.post("/v1/applicants", json=LI), 401)
    assert_problem(await intake.post("/v1/applicants", json=LI, headers=token("street_reviewer", STREET)), 403)
    assert await stored(pool) == before


# ---------------------------------------------------------------------- jurisdiction


async def test_a_clerk_of_another_street_may_not_register_nor_read(intake, token, pool):
    before = await stored(pool)
    problem = assert_problem(await register(intake, token, who=OTHER_STREET), 403)
    assert LI_NUMBER not in json.dumps(problem, ensure_ascii=False)
    assert await stored(pool) == before

    mine = (await register(intake, token)).json()
    other = token("window_clerk", OTHER_STREET)
    # Answered as if nobody were registered: a number or id of another street cannot be probed.
    assert_problem(await intake.get(f"/v1/applicants/{mine['applicant_id']}", headers=other), 404)
    assert_problem(await intake.post("/v1/applicants/lookup", json={"identity_number": LI_NUMBER}, headers=other), 404)


async def test_a_resident_registered_here_but_living_elsewhere_is_served_here(intake, token):
    r = await register(intake, token, {**LI, "residence_community_code": OTHER_COMMUNITY})
    assert r.status_code == 201, r.text
    # ... and by the street they live in too.
    r = await intake.get(f"/v1/applicants/{r.json()['applicant_id']}", headers=token("window_clerk", OTHER_STREET))
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------- reading


async def test_masking_follows_the_role(intake, token):
    applicant_id = (await register(intake, token)).json()["applicant_id"]
    url = f"/v1/applicants/{applicant_id}"
    answer = await intake.get(url, headers=token("window_clerk", STREET))
    assert answer.headers["cache-control"] == "no-store"
    clerk = answer.json()
    auditor = (await intake.get(url, headers=token("auditor", "320104"))).json()
    reviewer = (await intake.get(url, headers=token("community_reviewer", COMMUNITY))).json()

    assert clerk["profile"]["identity_number"] == LI_NUMBER
    assert (clerk["profile"]["name"], clerk["profile"]["phone"]) == (LI["name"], LI["phone"])
    assert clerk["shown_in_full"] == {"identity_number": True, "phone": True, "name": True}

    assert auditor["profile"]["identity_number"] == "320104********" + LI_NUMBER[-4:]
    assert (auditor["profile"]["name"], auditor["profile"]["phone"]) == ("李**", "138****4567")
    assert (auditor["birth_date"], auditor["sex"]) == (None, None)
    assert auditor["shown_in_full"] == {"identity_number": False, "phone": False, "name": False}
    assert LI_NUMBER not in json.dumps(auditor) and LI["phone"] not in json.dumps(auditor)

    # The community visits the household: name and phone, not the number.
    assert (reviewer["profile"]["name"], reviewer["profile"]["phone"]) == (LI["name"], LI["phone"])
    assert reviewer["profile"]["identity_number"] != LI_NUMBER


async def test_a_clerk_looks_up_by_number_in_the_body(intake, token):
    applicant_id = (await register(intake, token)).json()["applicant_id"]
    clerk = token("window_clerk", STREET)
    found = await intake.post("/v1/applicants/lookup", json={"identity_number": LI_NUMBER.lower()}, headers=clerk)
    assert found.status_code == 200, found.text
    assert found.json()["applicant_id"] == applicant_id

    enterprise = await intake.post("/v1/applicants/lookup", json={"kind": "enterprise", "identity_number": LI_NUMBER},
                                   headers=clerk)
    assert enterprise.status_code == 422  # a resident number is no credit code
    unknown = "11010519491231002X"
    assert_problem(await intake.post("/v1/applicants/lookup", json={"identity_number": unknown}, headers=clerk), 404)
    problem = assert_problem(await intake.post("/v1/applicants/lookup", json={
        "identity_number": with_check(LI_NUMBER, right=False)}, headers=clerk), 422)
    assert problem["errors"][0]["rule"] == "check_character"
    # Reading by number is the window's: an auditor reads by pseudonymous id only.
    assert_problem(await intake.post("/v1/applicants/lookup", json={"identity_number": LI_NUMBER},
                                     headers=token("auditor", "320104")), 403)


async def test_unknown_and_malformed_ids(intake, token):
    clerk = token("window_clerk", STREET)
    assert_problem(await intake.get("/v1/applicants/ap-" + "0" * 32, headers=clerk), 404)
    assert_problem(await intake.get(f"/v1/applicants/{LI_NUMBER}", headers=clerk), 422)


async def test_the_profile_shows_earlier_cases_and_complaints(intake, token):
    applicant_id = (await register(intake, token)).json()["applicant_id"]
    clerk = token("window_clerk", STREET)
    case = await intake.post("/v1/cases", headers=clerk, json={
        "applicant_id": applicant_id, "affair_code": "civil.temporary_assistance", "jurisdiction": COMMUNITY,
        "channel": "window", "materials_handed_in": []})
    assert case.status_code == 201, case.text
    complaint = await intake.post("/v1/complaints", headers=clerk, json={
        "category": "public_order", "channel": "window", "urgency": "general", "jurisdiction": COMMUNITY,
        "location": {"address": "淮海路 30 号"}, "description": "夜间施工噪声", "applicant_id": applicant_id})
    assert complaint.status_code == 201, complaint.text

    history = (await intake.get(f"/v1/applicants/{applicant_id}", headers=clerk)).json()["history"]
    assert {(h["kind"], h["id"], h["subject"]) for h in history} == {
        ("case", case.json()["id"], "civil.temporary_assistance"),
        ("complaint", complaint.json()["id"], "public_order")}
    # A match at the window shows the same history.
    matched = (await register(intake, token)).json()
    assert [h["id"] for h in matched["history"]] == [h["id"] for h in history]


async def test_history_is_empty_where_the_read_tables_do_not_exist(pool):
    assert await applicant_history(pool, "ap-" + "1" * 32) == []


# ---------------------------------------------------------------------- personal data at rest


async def test_the_event_carries_no_personal_data(intake, token, pool):
    applicant_id = (await register(intake, token)).json()["applicant_id"]
    row = await pool.fetchrow("SELECT type, data, metadata FROM events WHERE stream_id = $1", applicant_id)
    assert row["type"] == "civicgrid.intake.applicant.registered.v1"
    assert row["data"] == {"applicant_id": applicant_id, "kind": "resident", "jurisdiction": COMMUNITY}
    outbox = await pool.fetch("SELECT key, value, headers FROM outbox")
    everything = json.dumps([dict(row)], ensure_ascii=False, default=str) + "".join(
        r["key"].decode() + r["value"].decode() + json.dumps(r["headers"], ensure_ascii=False) for r in outbox)
    for personal in (LI_NUMBER, LI_NUMBER[6:14], LI["name"], LI["phone"]):
        assert personal not in everything


async def test_personal_fields_are_stored_encrypted(intake, token, pool):
    await register(intake, token)
    await register(intake, token, SHOP)
    rows = await pool.fetch("SELECT * FROM applicants ORDER BY kind DESC")
    raw = json.dumps([dict(r) for r in rows], ensure_ascii=False, default=str)
    for plaintext in (LI_NUMBER, LI_NUMBER[6:14], LI["name"], LI["phone"], "王秀英", CREDIT_CODE):
        assert plaintext not in raw
    resident = rows[0]
    for column in ("identity_number", "name", "phone"):
        assert resident[column].startswith("pd1.")
    # The database itself refuses a plaintext in an encrypted column.
    with pytest.raises(Exception, match="applicants_phone_check"):
        await pool.execute("UPDATE applicants SET phone = $1 WHERE applicant_id = $2", LI["phone"],
                           resident["applicant_id"])


async def test_no_personal_data_in_the_logs(intake, token, caplog):
    caplog.set_level(logging.DEBUG)
    await register(intake, token)
    await register(intake, token, {**LI, "phone": "13900001111"})
    await register(intake, token, {**LI, "identity_number": with_check(LI_NUMBER, right=False)})
    await intake.post("/v1/applicants/lookup", json={"identity_number": LI_NUMBER},
                      headers=token("window_clerk", STREET))
    await register(intake, token, who=OTHER_STREET)
    # Request lines are logged with their URLs (why look-up takes the number in a body, not ?number=).
    assert any("/v1/applicants/lookup" in r.getMessage() for r in caplog.records)
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    for personal in (LI_NUMBER, LI_NUMBER[:17], LI["name"], LI["phone"], "13900001111"):
        assert personal not in text
