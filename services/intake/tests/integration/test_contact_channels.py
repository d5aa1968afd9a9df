"""How an applicant chose to be told (PUT/GET /v1/applicants/{id}/contact-channels), and what the
notifications service is then given: an address only for a channel the applicant chose, each
disclosure recorded on the case, the addresses encrypted at rest and never in an event or a log."""
from __future__ import annotations

import logging

import pytest

from civicgrid_intake.domain import applicant as a
from civicgrid_intake.domain import case as c

from residents import COMMUNITY, STREET, resident_number
from test_identity_disclosure import DISTRICT, dibao_case
from test_identity_disclosure import disclosures as stream_events

pytestmark = pytest.mark.integration

MOBILE = "13912345678"
EMAIL = "zhang.wei@example.com"
OPENID = "oB_hN41zbT1OvATDONK5LccFIwwA"
PURPOSE = "notification delivery dlv-test"


async def applicant_of(intake, case_id: str, token) -> str:
    r = await intake.get(f"/v1/cases/{case_id}", headers=token("window_clerk", STREET))
    assert r.status_code == 200, r.text
    return r.json()["applicant_id"]


async def contact(intake, token, case_id: str, channel: str):
    return await intake.post(f"/v1/cases/{case_id}/applicant-contact", headers=token("notifier", DISTRICT),
                             json={"channel": channel, "purpose": f"{PURPOSE} {channel}"})


async def test_the_applicant_is_given_out_only_on_the_channels_they_chose(intake, token, pool, caplog):
    caplog.set_level(logging.DEBUG)
    case_id = await dibao_case(intake, token, resident_number(), route=False, phone=MOBILE)
    applicant = await applicant_of(intake, case_id, token)
    clerk = token("window_clerk", STREET)
    url = f"/v1/applicants/{applicant}/contact-channels"

    # never chosen: SMS to the mobile, as before there was a choice
    r = await intake.get(url, headers=clerk)
    assert r.status_code == 200 and r.json() == {"applicant_id": applicant, "channels": ["sms"], "chosen": False,
                                                 "email": None, "wechat_openid": None, "shown_in_full": True}
    assert (await contact(intake, token, case_id, "sms")).json()["address"] == MOBILE
    never = await contact(intake, token, case_id, "email")
    assert never.status_code == 409 and never.json()["code"] == "channel_not_chosen"

    r = await intake.put(url, headers=clerk, json={"channels": ["wechat", "email"], "email": EMAIL.upper(),
                                                   "wechat_openid": OPENID})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.json() == {"applicant_id": applicant, "channels": ["wechat", "email"], "chosen": True,
                        "email": "ZHANG.WEI@example.com", "wechat_openid": OPENID, "shown_in_full": True}

    got = {ch: await contact(intake, token, case_id, ch) for ch in ("wechat", "email", "sms")}
    assert got["wechat"].json()["address"] == OPENID and got["email"].json()["address"] == "ZHANG.WEI@example.com"
    assert got["sms"].status_code == 409 and got["sms"].json()["code"] == "channel_not_chosen"
    assert "did not choose" in got["sms"].json()["detail"]
    # each disclosure on the case; the refused one recorded nothing
    recorded = await stream_events(pool, case_id, c.CONTACT_DISCLOSED)
    assert [d["channel"] for d in recorded] == ["sms", "wechat", "email"]
    [chosen] = await stream_events(pool, applicant, a.APPLICANT_CONTACT_CHANNELS_SET)
    assert chosen["channels"] == ["wechat", "email"] and chosen["email_on_record"] and chosen["wechat_on_record"]

    # at rest encrypted; never in an event, the outbox or a log line
    row = await pool.fetchrow("SELECT email, wechat_openid FROM applicant_contacts WHERE applicant_id = $1", applicant)
    assert row["email"].startswith("pd1.") and row["wechat_openid"].startswith("pd1.")
    for secret in ("zhang.wei", OPENID):
        assert not await pool.fetchval("SELECT count(*) FROM events WHERE lower(data::text) LIKE '%' || $1 || '%'",
                                       secret.lower())
        assert not await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE position(convert_to($1, 'UTF8') in value) > 0", secret)
        assert secret not in "\n".join(rec.getMessage() for rec in caplog.records).lower().replace(OPENID.lower(),
                                                                                                  OPENID)


async def test_the_same_choice_again_records_nothing_and_a_new_one_replaces_it(intake, token, pool):
    case_id = await dibao_case(intake, token, resident_number(), route=False, phone=MOBILE)
    applicant = await applicant_of(intake, case_id, token)
    url, clerk = f"/v1/applicants/{applicant}/contact-channels", token("window_clerk", STREET)
    body = {"channels": ["email", "sms"], "email": EMAIL}
    for _ in range(2):
        assert (await intake.put(url, headers=clerk, json=body)).status_code == 200
    assert len(await stream_events(pool, applicant, a.APPLICANT_CONTACT_CHANNELS_SET)) == 1
    # told on none: the address left out is gone
    r = await intake.put(url, headers=clerk, json={"channels": []})
    assert r.status_code == 200 and r.json()["email"] is None and r.json()["channels"] == []
    assert len(await stream_events(pool, applicant, a.APPLICANT_CONTACT_CHANNELS_SET)) == 2
    for channel in ("sms", "email", "wechat"):
        assert (await contact(intake, token, case_id, channel)).status_code == 409


@pytest.mark.parametrize("body, pointer", [
    ({"channels": ["email"]}, "#/channels"),
    ({"channels": ["email"], "email": "not-an-address"}, "#/email"),
    ({"channels": ["wechat"], "wechat_openid": "x"}, "#/wechat_openid"),
    ({"channels": ["sms", "sms"]}, "#/channels/1"),
    ({"channels": ["fax"]}, "#/channels/0"),
    ({"channels": ["sms"], "email": "a" * 300 + "@example.com"}, "#/email"),
    ({"channels": ["sms"], "unknown": 1}, "#/unknown"),
])
async def test_bad_input_names_the_field_and_changes_nothing(intake, token, pool, body, pointer):
    case_id = await dibao_case(intake, token, resident_number(), route=False, phone=MOBILE)
    applicant = await applicant_of(intake, case_id, token)
    r = await intake.put(f"/v1/applicants/{applicant}/contact-channels", headers=token("window_clerk", STREET),
                         json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert pointer in [e["pointer"] for e in r.json()["errors"]], r.text
    assert "not-an-address" not in r.text
    assert await stream_events(pool, applicant, a.APPLICANT_CONTACT_CHANNELS_SET) == []
    assert not await pool.fetchval("SELECT count(*) FROM applicant_contacts WHERE applicant_id = $1", applicant)


async def test_sms_is_refused_for_an_applicant_whose_phone_is_a_landline(intake, token):
    case_id = await dibao_case(intake, token, resident_number(), route=False, phone="025-84001234")
    applicant = await applicant_of(intake, case_id, token)
    r = await intake.put(f"/v1/applicants/{applicant}/contact-channels", headers=token("window_clerk", STREET),
                         json={"channels": ["sms"]})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "#/channels", r.text


async def test_who_may_choose_and_who_sees_the_addresses(intake, token, pool):
    case_id = await dibao_case(intake, token, resident_number(), route=False, phone=MOBILE)
    applicant = await applicant_of(intake, case_id, token)
    url = f"/v1/applicants/{applicant}/contact-channels"
    body = {"channels": ["email"], "email": EMAIL, "wechat_openid": OPENID}
    for role, where in (("community_reviewer", COMMUNITY), ("leader", DISTRICT), ("notifier", DISTRICT)):
        assert (await intake.put(url, headers=token(role, where), json=body)).status_code == 403, role
    # a clerk of another street does not see the applicant at all
    assert (await intake.put(url, headers=token("window_clerk", "320104002"), json=body)).status_code == 404
    assert (await intake.get(url, headers=token("window_clerk", "320104002"))).status_code == 404
    assert await stream_events(pool, applicant, a.APPLICANT_CONTACT_CHANNELS_SET) == []
    assert (await intake.put(url, headers=token("window_clerk", STREET), json=body)).status_code == 200
    # the community reviewer sees contacts as the phone (in full); a leader masked
    seen = (await intake.get(url, headers=token("community_reviewer", COMMUNITY))).json()
    assert seen["email"] == EMAIL and seen["shown_in_full"]
    masked = (await intake.get(url, headers=token("leader", DISTRICT))).json()
    assert (masked["email"], masked["wechat_openid"], masked["shown_in_full"]) == ("z***@example.com",
                                                                                   "oB_h…IwwA", False)
