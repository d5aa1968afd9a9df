"""Cases at the window over HTTP, on the real app and the real PostgreSQL: registration to an
accepted case with its receipt (due dates on China's calendar and the admins' overrides),
missing materials told at once then supplemented, refusal, the green channel, withdrawal,
rating with its follow-up, the window's queue, the audited history, and every refusal a
problem+json that changes nothing."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import httpx
import pytest

from civicgrid_common.calendar import CHINA_TZ

from civicgrid_intake.adapters.case_views import rebuild_case_views, rows
from civicgrid_common.eventstore import EventStore, canonical_content, chain_hash
from civicgrid_intake.config import IntakeSettings

from residents import register_resident

pytestmark = pytest.mark.integration

STREET = "320104001"  # Huaihai Road street
COMMUNITY = "320104001001"
OTHER_STREET = "320104002"
# 临时救助: 15 working days, decided by the street, four required materials.
AID = "civil.temporary_assistance"
AID_MATERIALS = ["id_card", "application_form", "hardship_proof", "verification_authorisation"]
MONDAY_BEFORE_NATIONAL_DAY = datetime(2025, 9, 29, 9, 30, tzinfo=CHINA_TZ)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(intake_app) -> FakeClock:
    fake = FakeClock(MONDAY_BEFORE_NATIONAL_DAY)
    intake_app.state.cases.clock = fake
    return fake


def applicant() -> str:
    """A well-formed pseudonymous applicant id (as the applicants API hands them out)."""
    return "ap-" + uuid.uuid4().hex


async def stored(pool) -> tuple[int, int]:
    """Events in the store and rows in the window's table: a refusal changes neither."""
    return (await pool.fetchval("SELECT count(*) FROM events"), await pool.fetchval("SELECT count(*) FROM case_view"))


async def resident(intake, token, where: str = COMMUNITY) -> str:
    """A resident registered at the window, living and registered where the case is made."""
    return await register_resident(intake, token, household=where[:9], residence=where if len(where) == 12
                                   else where + "001", who=where[:9])


async def register(intake, token, *, materials=AID_MATERIALS, affair=AID, where=COMMUNITY, who=STREET,
                   applicant_id=None) -> dict:
    applicant_id = applicant_id or await resident(intake, token, where)
    body = {"applicant_id": applicant_id, "affair_code": affair, "jurisdiction": where,
            "channel": "window", "materials_handed_in": materials}
    r = await intake.post("/v1/cases", json=body, headers=token("window_clerk", who))
    assert r.status_code == 201, r.text
    return r.json()


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == status
    if code is not None:
        assert problem["code"] == code
    return problem


# ---------------------------------------------------------------------- registration to receipt


async def test_a_clerk_takes_a_resident_from_registration_to_an_accepted_case_with_a_receipt(intake, token, clock):
    clerk = token("window_clerk", STREET)
    case = await register(intake, token)
    assert case["status"] == "registered" and case["missing_materials"] == []
    assert case["affair"]["code"] == AID and case["affair"]["version"] == 1
    assert case["affair"]["time_limit_working_days"] == 15

    clock.advance(minutes=12)
    r = await intake.post(f"/v1/cases/{case['id']}/accept", headers=clerk)
    assert r.status_code == 200, r.text
    receipt = r.json()
    # street + date (China time) + the street's first number of the day
    assert receipt["case_number"] == "320104001" "20250929" "0001"
    # 15 working days from Monday 29 September 2025: the 30th, then National Day (1-8 October)
    # is skipped, Saturday 11 October is a swapped working day: Monday 27 October.
    assert receipt["due_date"] == "2025-10-27"
    assert datetime.fromisoformat(receipt["accepted_at"]) == MONDAY_BEFORE_NATIONAL_DAY + timedelta(minutes=12)
    assert receipt["time_limit_working_days"] == 15 and receipt["affair_code"] == AID

    r = await intake.get(f"/v1/cases/{case['id']}", headers=clerk)
    assert r.status_code == 200
    assert r.json()["status"] == "accepted" and r.json()["receipt"] == receipt

    second = await register(intake, token)
    r = await intake.post(f"/v1/cases/{second['id']}/accept", headers=clerk)
    assert r.json()["case_number"] == "320104001202509290002"


async def test_two_clerks_accepting_at_once_never_get_the_same_number(intake, token, clock):
    cases = [await register(intake, token) for _ in range(4)]
    clerks = [token("window_clerk", STREET, subject=f"clerk-{i}") for i in range(4)]
    answers = await asyncio.gather(*(intake.post(f"/v1/cases/{c['id']}/accept", headers=h)
                                     for c, h in zip(cases, clerks)))
    assert [a.status_code for a in answers] == [200] * 4
    numbers = sorted(a.json()["case_number"] for a in answers)
    assert numbers == [f"32010400120250929000{n}" for n in range(1, 5)]


async def test_an_admins_calendar_override_moves_the_due_date(intake, token, clock):
    override = {"is_working_day": False, "reason": "typhoon: district offices closed"}
    r = await intake.put("/v1/calendar/overrides/2025-10-13", json=override, headers=token("window_clerk", STREET))
    assert_problem(r, 403)
    r = await intake.put("/v1/calendar/overrides/2025-10-13", json=override, headers=token("admin", "320105"))
    assert_problem(r, 403)
    r = await intake.put("/v1/calendar/overrides/2025-10-13", json=override, headers=token("admin", "320104"))
    assert r.status_code == 200, r.text

    case = await register(intake, token)
    r = await intake.post(f"/v1/cases/{case['id']}/accept", headers=token("window_clerk", STREET))
    assert r.json()["due_date"] == "2025-10-28"  # one working day fewer before it
    # the overrides are read with a token, never without
    assert (await intake.get("/v1/calendar/overrides")).status_code == 401
    listed = await intake.get("/v1/calendar/overrides", headers=token("window_clerk", STREET))
    assert listed.status_code == 200 and "2025-10-13" in listed.text


async def test_missing_materials_are_told_at_once_then_supplemented_then_accepted(intake, token, clock, pool):
    clerk = token("window_clerk", STREET)
    case = await register(intake, token, materials=["id_card"])
    missing = case["missing_materials"]
    assert [m["code"] for m in missing] == ["application_form", "hardship_proof", "verification_authorisation"]
    assert all(m["name_zh"] and m["name_en"] for m in missing)  # what the window prints for the applicant

    before = await stored(pool)
    r = await intake.post(f"/v1/cases/{case['id']}/accept", headers=clerk)
    problem = assert_problem(r, 409, "materials_incomplete")
    assert problem["missing_materials"] == ["application_form", "hardship_proof", "verification_authorisation"]
    assert await stored(pool) == before
    # nor was a case number used up: the next acceptance gets the day's first

    r = await intake.post(f"/v1/cases/{case['id']}/supplements",
                          json={"materials": ["hardship_proof", "application_form"]}, headers=clerk)
    assert r.status_code == 200, r.text
    assert [m["code"] for m in r.json()["missing_materials"]] == ["verification_authorisation"]
    for bad, code in ((["hardship_proof"], "invalid_materials"), (["marriage_certificate"], "invalid_materials")):
        r = await intake.post(f"/v1/cases/{case['id']}/supplements", json={"materials": bad}, headers=clerk)
        assert assert_problem(r, 422, code)["errors"][0]["pointer"] == "#/materials"
    r = await intake.post(f"/v1/cases/{case['id']}/supplements",
                          json={"materials": ["verification_authorisation"]}, headers=clerk)
    assert r.json()["missing_materials"] == []

    r = await intake.post(f"/v1/cases/{case['id']}/accept", headers=clerk)
    assert r.status_code == 200 and r.json()["case_number"].endswith("0001")
    r = await intake.post(f"/v1/cases/{case['id']}/supplements", json={"materials": ["id_card"]}, headers=clerk)
    assert_problem(r, 409, "no_supplement_requested")  # only approval asks after acceptance


async def test_a_refusal_at_the_window_needs_a_reason_and_ends_the_case(intake, token, clock, pool):
    clerk = token("window_clerk", STREET)
    case = await register(intake, token)
    before = await stored(pool)
    r = await intake.post(f"/v1/cases/{case['id']}/refuse", json={"reason": "   "}, headers=clerk)
    assert assert_problem(r, 422, "reason_required")["errors"] == [
        {"pointer": "#/reason", "detail": "a reason is required"}]
    r = await intake.post(f"/v1/cases/{case['id']}/refuse", json={}, headers=clerk)
    assert_problem(r, 422)
    assert await stored(pool) == before

    r = await intake.post(f"/v1/cases/{case['id']}/refuse",
                          json={"reason": "户籍不在本街道，请到户籍地街道申请"}, headers=clerk)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refused" and r.json()["refusal_reason"].startswith("户籍不在本街道")
    r = await intake.post(f"/v1/cases/{case['id']}/accept", headers=clerk)
    assert_problem(r, 409, "illegal_transition")


async def test_the_green_channel_is_for_a_street_reviewer_not_a_clerk(intake, token, clock, pool):
    case = await register(intake, token)
    before = await stored(pool)
    r = await intake.post(f"/v1/cases/{case['id']}/green-channel", json={"reason": "family in acute hardship"},
                          headers=token("window_clerk", STREET))
    assert_problem(r, 403)
    r = await intake.post(f"/v1/cases/{case['id']}/green-channel", json={"reason": "family in acute hardship"},
                          headers=token("street_reviewer", OTHER_STREET))
    assert_problem(r, 404)  # another street's case is none it may know of
    assert await stored(pool) == before

    reviewer = token("street_reviewer", STREET)
    r = await intake.post(f"/v1/cases/{case['id']}/green-channel", json={"reason": "family in acute hardship"},
                          headers=reviewer)
    assert r.status_code == 200, r.text
    assert r.json()["green_channel"] is True and r.json()["green_channel_reason"] == "family in acute hardship"
    r = await intake.post(f"/v1/cases/{case['id']}/green-channel", json={"reason": "again"}, headers=reviewer)
    assert_problem(r, 409, "already_green_channel")


async def test_an_accepted_case_is_routed_by_the_catalogues_rule(intake, token, clock):
    clerk = token("window_clerk", STREET)
    case = await register(intake, token, affair="residence.residence_permit",
                          materials=["id_card", "photo", "residence_proof"])
    r = await intake.post(f"/v1/cases/{case['id']}/route", headers=clerk)
    assert_problem(r, 409, "illegal_transition")  # not accepted yet
    await intake.post(f"/v1/cases/{case['id']}/accept", headers=clerk)
    r = await intake.post(f"/v1/cases/{case['id']}/route", headers=clerk)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "routed"
    assert r.json()["affair"]["routing"] == {"kind": "department", "department": "public_security"}


async def test_the_applicant_withdraws_at_the_window(intake, token, clock, pool):
    clerk = token("window_clerk", STREET)
    resident_id = await resident(intake, token)
    case = await register(intake, token, applicant_id=resident_id)
    before = await stored(pool)
    r = await intake.post(f"/v1/cases/{case['id']}/withdraw", json={"applicant_id": applicant()}, headers=clerk)
    assert_problem(r, 422, "not_the_applicant")
    assert await stored(pool) == before
    r = await intake.post(f"/v1/cases/{case['id']}/withdraw",
                          json={"applicant_id": resident_id, "reason": "moved away"}, headers=clerk)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"


async def test_a_bad_review_opens_a_follow_up_and_a_second_rating(intake, intake_app, token, clock):
    clerk = token("window_clerk", STREET)
    resident_id = await resident(intake, token)
    case = await register(intake, token, applicant_id=resident_id)
    rating = {"applicant_id": resident_id, "level": "very_dissatisfied"}
    r = await intake.post(f"/v1/cases/{case['id']}/rating", json=rating, headers=clerk)
    assert_problem(r, 409, "not_completed")
    await intake.post(f"/v1/cases/{case['id']}/accept", headers=clerk)
    # The result comes from approval's events (its consumer calls the service, not a person).
    await intake_app.state.cases.complete(case["id"], outcome="approved", approval_reference="approval-42",
                                         decided_at=clock.now + timedelta(days=9))

    r = await intake.post(f"/v1/cases/{case['id']}/rating", json={**rating, "level": "so-so"}, headers=clerk)
    assert_problem(r, 422)
    r = await intake.post(f"/v1/cases/{case['id']}/rating", json=rating, headers=clerk)
    assert r.status_code == 200, r.text
    follow_up = r.json()["follow_up"]
    assert follow_up["call_back_due"] == "2025-09-30"  # one working day
    r = await intake.post(f"/v1/cases/{case['id']}/follow-up/close", headers=clerk)
    assert_problem(r, 409, "not_called_back")
    r = await intake.post(f"/v1/cases/{case['id']}/follow-up/call-back", headers=clerk)
    assert r.status_code == 200 and r.json()["follow_up"]["called_back_at"]
    r = await intake.post(f"/v1/cases/{case['id']}/follow-up/close", headers=token("street_reviewer", STREET))
    assert r.status_code == 200 and r.json()["follow_up"]["closed_at"]
    r = await intake.post(f"/v1/cases/{case['id']}/rating", json={**rating, "level": "satisfied"}, headers=clerk)
    assert r.status_code == 200 and r.json()["ratings"] == ["very_dissatisfied", "satisfied"]


# ---------------------------------------------------------------------- the window's queue


async def test_the_queue_puts_the_green_channel_first_then_the_oldest(intake, token, clock):
    first = await register(intake, token)
    clock.advance(hours=1)
    second = await register(intake, token, where=STREET)
    clock.advance(hours=1)
    urgent = await register(intake, token, affair="elderly.care_service_file",
                            materials=["id_card", "household_register", "contact_form"])
    clock.advance(days=1)
    elsewhere = await register(intake, token, where=OTHER_STREET + "001", who=OTHER_STREET)
    await intake.post(f"/v1/cases/{urgent['id']}/green-channel", json={"reason": "bedridden, alone"},
                      headers=token("street_reviewer", STREET))
    await intake.post(f"/v1/cases/{second['id']}/accept", headers=token("window_clerk", STREET))

    clerk = token("window_clerk", STREET)

    async def ids(**params) -> list[str]:
        r = await intake.get("/v1/cases", params=params, headers=clerk)
        assert r.status_code == 200, r.text
        return [item["id"] for item in r.json()["items"]]

    assert await ids() == [urgent["id"], first["id"], second["id"]]  # not the other street's
    assert await ids(status="accepted") == [second["id"]]
    assert await ids(affair_code=AID) == [first["id"], second["id"]]
    assert await ids(community=COMMUNITY) == [urgent["id"], first["id"]]
    assert await ids(registered_from="2025-09-29", registered_to="2025-09-29") == [
        urgent["id"], first["id"], second["id"]]
    assert await ids(registered_from="2025-09-30") == []

    r = await intake.get("/v1/cases", params={"limit": 2}, headers=clerk)
    page = r.json()
    assert [i["id"] for i in page["items"]] == [urgent["id"], first["id"]]
    assert (page["total"], page["next_offset"]) == (3, 2)
    r = await intake.get("/v1/cases", params={"limit": 2, "offset": 2}, headers=clerk)
    assert [i["id"] for i in r.json()["items"]] == [second["id"]] and r.json()["next_offset"] is None

    other = await intake.get("/v1/cases", headers=token("window_clerk", OTHER_STREET))
    assert [i["id"] for i in other.json()["items"]] == [elsewhere["id"]]
    district = await intake.get("/v1/cases", headers=token("auditor", "320104"))
    assert district.json()["total"] == 4


async def test_the_queue_refuses_bad_filters_and_communities_of_others(intake, token, clock):
    clerk = token("window_clerk", STREET)
    assert_problem(await intake.get("/v1/cases", params={"community": "320104002001"}, headers=clerk), 403)
    assert_problem(await intake.get("/v1/cases", params={"status": "lost"}, headers=clerk), 422)
    assert_problem(await intake.get("/v1/cases", params={"limit": 0}, headers=clerk), 422)
    assert_problem(await intake.get("/v1/cases", params={"registered_from": "yesterday"}, headers=clerk), 422)
    assert_problem(await intake.get("/v1/cases", params={"registered_from": "2025-10-02",
                                                         "registered_to": "2025-10-01"}, headers=clerk), 422)
    assert_problem(await intake.get("/v1/cases", headers=token("department", "320104", department="tax")), 403)


# ---------------------------------------------------------------------- refusals change nothing


async def test_someone_elses_street_sees_nothing_not_even_that_the_case_exists(intake, token, clock, pool):
    case = await register(intake, token)
    stranger = token("window_clerk", OTHER_STREET)
    before = await stored(pool)
    unknown = assert_problem(await intake.get("/v1/cases/no-such-case", headers=stranger), 404)
    for r in (await intake.get(f"/v1/cases/{case['id']}", headers=stranger),
              await intake.get(f"/v1/cases/{case['id']}/history", headers=token("auditor", OTHER_STREET)),
              await intake.post(f"/v1/cases/{case['id']}/accept", headers=stranger),
              await intake.post(f"/v1/cases/{case['id']}/refuse", json={"reason": "x"}, headers=stranger)):
        # Answered exactly as an unknown id: the same type and title, no community code in it.
        problem = assert_problem(r, 404)
        assert (problem["type"], problem["title"]) == (unknown["type"], unknown["title"])
        assert COMMUNITY not in r.text and "jurisdiction" not in problem
    body = {"applicant_id": await resident(intake, token), "affair_code": AID, "jurisdiction": COMMUNITY,
            "materials_handed_in": AID_MATERIALS}
    before = await stored(pool)
    assert_problem(await intake.post("/v1/cases", json=body, headers=stranger), 403)
    assert await stored(pool) == before


async def test_unknown_affair_is_refused_naming_the_field(intake, token, clock, pool):
    resident_id = await resident(intake, token)
    before = await stored(pool)
    body = {"applicant_id": resident_id, "affair_code": "civil.free_money", "jurisdiction": COMMUNITY,
            "materials_handed_in": []}
    r = await intake.post("/v1/cases", json=body, headers=token("window_clerk", STREET))
    problem = assert_problem(r, 422, "unknown_affair")
    assert problem["errors"][0]["pointer"] == "#/affair_code"
    assert await stored(pool) == before


@pytest.mark.parametrize("body, pointer", [
    ({"applicant_id": 5}, "#/applicant_id"),
    ({"applicant_id": "张三 110101199003074258"}, "#/applicant_id"),
    ({"jurisdiction": "32010400"}, "#/jurisdiction"),
    ({"channel": "carrier_pigeon"}, "#/channel"),
    ({"materials_handed_in": ["id_card", "marriage_certificate"]}, "#/materials_handed_in"),
    ({"materials_handed_in": "id_card"}, "#/materials_handed_in"),
    ({"surprise": True}, "#/surprise"),
])
async def test_bad_registrations_are_refused_field_by_field(intake, token, clock, pool, body, pointer):
    good = {"applicant_id": await resident(intake, token), "affair_code": AID, "jurisdiction": COMMUNITY,
            "materials_handed_in": AID_MATERIALS}
    before = await stored(pool)
    r = await intake.post("/v1/cases", json={**good, **body}, headers=token("window_clerk", STREET))
    problem = assert_problem(r, 422)
    assert pointer in [e.get("pointer") for e in problem["errors"]]
    assert "110101199003074258" not in r.text  # an identity number is never echoed back
    assert await stored(pool) == before


async def test_malformed_json_is_a_400_and_no_token_a_401(intake, token, clock, pool):
    before = await stored(pool)
    r = await intake.post("/v1/cases", content=b'{"applicant_id": "ap-1", ', headers={
        **token("window_clerk", STREET), "content-type": "application/json"})
    assert_problem(r, 400)
    assert_problem(await intake.post("/v1/cases", json={}), 401)
    assert_problem(await intake.get("/v1/cases/no-such-case", headers=token("window_clerk", STREET)), 404)
    assert_problem(await intake.post("/v1/cases/320104/accept", headers=token("window_clerk", STREET)), 404)
    assert await stored(pool) == before


async def test_a_repeated_registration_with_the_same_idempotency_key_creates_one_case(intake, token, clock, pool):
    body = {"applicant_id": await resident(intake, token), "affair_code": AID, "jurisdiction": COMMUNITY,
            "materials_handed_in": AID_MATERIALS}
    headers = {**token("window_clerk", STREET), "Idempotency-Key": "window-3-ticket-0815"}
    first = await intake.post("/v1/cases", json=body, headers=headers)
    again = await intake.post("/v1/cases", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert await pool.fetchval("SELECT count(*) FROM case_view") == 1


# ---------------------------------------------------------------------- history and the read table


async def test_the_history_verifies_and_shows_a_tampered_event(intake, token, clock, pool):
    clerk = token("window_clerk", STREET)
    case = await register(intake, token, materials=["id_card"])
    await intake.post(f"/v1/cases/{case['id']}/supplements",
                      json={"materials": ["application_form", "hardship_proof", "verification_authorisation"]},
                      headers=clerk)
    await intake.post(f"/v1/cases/{case['id']}/accept", headers=clerk)
    auditor = token("auditor", "320104")

    r = await intake.get(f"/v1/cases/{case['id']}/history", headers=auditor)
    assert r.status_code == 200, r.text
    history = r.json()
    assert [e["type"].split(".")[-2] for e in history["events"]] == ["registered", "supplemented", "accepted"]
    assert [e["version"] for e in history["events"]] == [1, 2, 3]
    assert history["events"][0]["prev_hash"] is None
    assert [e["prev_hash"] for e in history["events"][1:]] == [e["hash"] for e in history["events"][:-1]]
    assert history["verification"] == {"valid": True, "checked": 3, "failures": []}
    # every input of each hash is in the answer: the chain recomputes from it alone
    for e in history["events"]:
        content = canonical_content(
            id=uuid.UUID(e["id"]), stream_id=e["stream_id"], stream_type=e["stream_type"], version=e["version"],
            schema_revision=e["schema_revision"], type=e["type"], data=e["data"], metadata=e["metadata"],
            recorded_at=datetime.fromisoformat(e["recorded_at"]))
        assert chain_hash(content, e["prev_hash"]) == e["hash"] and e["stream_id"] == case["id"]

    # What only a superuser can do: switch the guard off, change one byte, switch it on.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_update_delete")
        await conn.execute("UPDATE events SET data = jsonb_set(data, '{due_date}', '\"2025-10-28\"') "
                           "WHERE stream_id = $1 AND version = 3", case["id"])
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_refuse_update_delete")

    r = await intake.get(f"/v1/cases/{case['id']}/history", headers=token("window_clerk", STREET))
    verification = r.json()["verification"]
    assert verification["valid"] is False and verification["checked"] == 3
    assert [(f["version"], f["reason"].split(":")[0]) for f in verification["failures"]] == [
        (3, "content hash mismatch")]


async def test_a_rebuilt_case_view_equals_the_live_one(intake, token, clock, pool):
    clerk = token("window_clerk", STREET)
    accepted = await register(intake, token)
    await intake.post(f"/v1/cases/{accepted['id']}/accept", headers=clerk)
    refused = await register(intake, token)
    await intake.post(f"/v1/cases/{refused['id']}/refuse", json={"reason": "not eligible"}, headers=clerk)
    urgent = await register(intake, token, materials=["id_card"])
    await intake.post(f"/v1/cases/{urgent['id']}/green-channel", json={"reason": "urgent"},
                      headers=token("street_reviewer", STREET))
    await intake.post(f"/v1/cases/{urgent['id']}/supplements", json={"materials": ["hardship_proof"]},
                      headers=clerk)
    store = EventStore.for_service(pool, IntakeSettings())

    live = await rows(pool)
    report = await rebuild_case_views(pool, store)
    assert report.equal and report.rows == 3 and report.events == 7
    assert await rows(pool) == live

    # A drifted live row is noticed and put right from the log.
    await pool.execute("UPDATE case_view SET status = 'accepted', green_channel = false WHERE id = $1", urgent["id"])
    report = await rebuild_case_views(pool, store)
    assert not report.equal
    assert await rows(pool) == live
