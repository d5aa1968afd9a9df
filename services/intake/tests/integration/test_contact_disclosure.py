"""The contact of a case's applicant goes to the notifications service (role notifier) only, for
one message at a time, and every disclosure is recorded on the case as an event (never the
number, never in a log); nothing is recorded when intake holds no contact for the channel."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from civicgrid_common.contracts import Contracts
from civicgrid_common.paths import contracts_dir

from civicgrid_intake.domain import case as c
from civicgrid_intake.domain.case import Actor, CaseRuleViolation

from residents import COMMUNITY, STREET, resident_number
from test_case_lifecycle import T0, accepted, registered
from test_identity_disclosure import DISTRICT, dibao_case
from test_identity_disclosure import disclosures as disclosure_events

NOTIFIER = Actor.of("svc-notifications", ["notifier"])
PURPOSE = "notification-delivery 5b0e6c1e-case-accepted"
MOBILE = "13912345678"


# ---------------------------------------------------------------------- domain


def test_a_disclosure_of_the_phone_is_recorded_without_it() -> None:
    case = accepted()
    case.disclose_contact(channel="sms", purpose=PURPOSE, actor=NOTIFIER, at=T0 + timedelta(hours=1))
    event = case.pending_events[-1]
    assert event.type == c.CONTACT_DISCLOSED
    assert event.data == {"applicant_id": case.applicant_id, "channel": "sms", "purpose": PURPOSE,
                          "disclosed_at": (T0 + timedelta(hours=1)).isoformat(), "actor": "svc-notifications"}
    Contracts(contracts_dir()).validate(event.type, json.loads(json.dumps(event.data)))
    assert case.contacts_disclosed == 1


@pytest.mark.parametrize("channel", ["fax", "letter"])
def test_a_contact_intake_does_not_record_is_refused_and_nothing_is_recorded(channel: str) -> None:
    case = registered()
    before = len(case.pending_events)
    with pytest.raises(CaseRuleViolation) as caught:
        case.disclose_contact(channel=channel, purpose=PURPOSE, actor=NOTIFIER, at=T0)
    assert caught.value.code == "no_contact_on_record" and len(case.pending_events) == before


def test_a_disclosure_needs_a_purpose() -> None:
    with pytest.raises(CaseRuleViolation) as caught:
        accepted().disclose_contact(channel="sms", purpose="  ", actor=NOTIFIER, at=T0)
    assert caught.value.code == "reason_required"


# ---------------------------------------------------------------------- over HTTP


async def case_of(intake, token, *, phone: str | None) -> str:
    """An accepted case (not routed: the notifier needs no routing) of a resident with `phone`."""
    return await dibao_case(intake, token, resident_number(), route=False, phone=phone)


async def disclosures(pool, case_id: str) -> list[dict]:
    return await disclosure_events(pool, case_id, c.CONTACT_DISCLOSED)


@pytest.mark.integration
async def test_the_notifier_gets_the_phone_and_each_disclosure_is_recorded(intake, token, pool, caplog):
    caplog.set_level(logging.DEBUG)
    case_id = await case_of(intake, token, phone=MOBILE)
    notifier = token("notifier", DISTRICT, subject="svc-notifications")
    for n in (1, 2):  # each message its own disclosure
        r = await intake.post(f"/v1/cases/{case_id}/applicant-contact", headers=notifier,
                              json={"channel": "sms", "purpose": f"{PURPOSE}-{n}"})
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert (body["case_id"], body["channel"], body["address"]) == (case_id, "sms", MOBILE)
    recorded = await disclosures(pool, case_id)
    assert [(d["channel"], d["purpose"], d["actor"]) for d in recorded] == [
        ("sms", f"{PURPOSE}-1", "svc-notifications"), ("sms", f"{PURPOSE}-2", "svc-notifications")]
    assert {d["applicant_id"] for d in recorded} == {body["applicant_id"]}
    # never the number: not in any event, not in the outbox, not in a log line
    assert not await pool.fetchval("SELECT count(*) FROM events WHERE data::text LIKE '%' || $1 || '%'", MOBILE)
    assert not await pool.fetchval("SELECT count(*) FROM outbox WHERE encode(value, 'escape') LIKE '%' || $1 || '%'",
                                   MOBILE)
    assert MOBILE not in "\n".join(r.getMessage() for r in caplog.records)


@pytest.mark.integration
async def test_no_one_else_gets_it_and_a_refusal_records_nothing(intake, token, pool):
    case_id = await case_of(intake, token, phone=MOBILE)
    url, body = f"/v1/cases/{case_id}/applicant-contact", {"channel": "sms", "purpose": PURPOSE}
    for role, jurisdiction, extra in (("window_clerk", STREET, {}), ("community_reviewer", COMMUNITY, {}),
                                      ("department", DISTRICT, {"department": "civil_affairs"}),
                                      ("admin", DISTRICT, {}), ("auditor", DISTRICT, {})):
        r = await intake.post(url, headers=token(role, jurisdiction, **extra), json=body)
        assert r.status_code == 403, (role, r.text)
    # a notifier of another district does not see the case; an unknown case is the same 404
    assert (await intake.post(url, headers=token("notifier", "320105"), json=body)).status_code == 404
    assert (await intake.post("/v1/cases/case-unknown/applicant-contact", headers=token("notifier", DISTRICT),
                              json=body)).status_code == 404
    r = await intake.post(url, headers=token("notifier", DISTRICT), json={"channel": "email", "purpose": PURPOSE})
    assert r.status_code == 409 and r.json()["code"] == "channel_not_chosen", r.text  # the applicant never chose
    r = await intake.post(url, headers=token("notifier", DISTRICT), json={"channel": "fax", "purpose": PURPOSE})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "#/channel", r.text
    assert await disclosures(pool, case_id) == []


@pytest.mark.integration
@pytest.mark.parametrize("phone, why", [(None, "no phone"), ("025-84001234", "landline")])
async def test_an_applicant_without_a_mobile_number_gets_no_sms_and_nothing_is_recorded(intake, token, pool,
                                                                                         phone, why):
    case_id = await case_of(intake, token, phone=phone)
    r = await intake.post(f"/v1/cases/{case_id}/applicant-contact", headers=token("notifier", DISTRICT),
                          json={"channel": "sms", "purpose": PURPOSE})
    assert r.status_code == 409 and r.json()["code"] == "no_contact_on_record", r.text
    assert why.split()[-1] in r.json()["detail"]
    assert await disclosures(pool, case_id) == []
