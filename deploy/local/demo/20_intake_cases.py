"""intake's part of the demo, second scene: a morning at the Huaihai Road window (淮海路街道受理中心).

Four residents come to the window: one is accepted at once and gets a receipt, one is refused
(her household is registered in another district: the catalogue's eligibility rule refuses her
minimum living allowance at registration, the clerk refuses her residence proof), one is missing materials, is told every
missing item at once, comes back with them and is accepted, and one is put on the green
channel by the street reviewer. Then the clerk looks at the queue and an auditor verifies a
case's history.

The residents are first registered as applicants (POST /v1/applicants): the cases carry
their pseudonymous ids, never their identity numbers.
"""
from __future__ import annotations

import os

import httpx
from stdnum.cn import ric

from civicgrid_common.identity.tokens import mint_local_token

INTAKE = os.environ.get("CIVICGRID_DEMO_INTAKE_URL", "http://127.0.0.1:8001")
STREET = "320104001"  # Huaihai Road street, Qinhuai district
COMMUNITY = "320104001001"

# Fictitious residents of the demo district (the identity numbers only get their check character).
RESIDENTS = {
    "Wang": ("3201041958031512", "1", "王秀英"),
    "Li": ("3201061990071123", "2", "李娜"),
    "Zhao": ("3201041972110845", "1", "赵建国"),
    "Sun": ("3201041940020617", "3", "孙桂兰"),
}
# Their phones (fictitious): notifications texts an accepted case's applicant at a mobile number;
# Zhao has a landline and Sun none, so they get no SMS; Zhao asks to be told by WeChat and email.
PHONES = {"Wang": "13951234567", "Li": "13851230000", "Zhao": "025-84561234"}
ZHAO_CONTACTS = {"email": "zhao.jianguo@example.com", "wechat_openid": "oQhDemoZhaoJianguo0000000001"}
def bearer(role: str, jurisdiction: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction)}"}


def identity_number(prefix: str, sequence: str) -> str:
    body = prefix + sequence
    # stdnum computes from the first 17 of a whole number: give it a placeholder 18th.
    return body + ric.calc_check_digit(body + "0")


async def applicant_ids(ctx, clerk: dict[str, str]) -> dict[str, str]:
    """Register the residents as applicants; returns their pseudonymous ids."""
    ids: dict[str, str] = {}
    for who, (prefix, sequence, name) in RESIDENTS.items():
        household = "320106" if who == "Li" else STREET
        body = {"kind": "resident", "identity_number": identity_number(prefix, sequence), "name": name,
                "household_registration_code": household, "residence_community_code": COMMUNITY,
                **({"phone": PHONES[who]} if who in PHONES else {})}
        r = await ctx.http.post(f"{INTAKE}/v1/applicants", json=body, headers=clerk)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"POST /v1/applicants answered {r.status_code}: {r.text}")
        ids[who] = r.json()["applicant_id"]
    ctx.say("  the residents were registered as applicants: " + ", ".join(f"{w} {i}" for w, i in ids.items()))
    r = await ctx.http.put(f"{INTAKE}/v1/applicants/{ids['Zhao']}/contact-channels", headers=clerk,
                           json={"channels": ["wechat", "email"], **ZHAO_CONTACTS})
    if r.status_code != 200:
        raise RuntimeError(f"PUT .../contact-channels answered {r.status_code}: {r.text}")
    ctx.say(f"  Zhao has no mobile phone: he asks to be told by {' and '.join(r.json()['channels'])} "
            f"({r.json()['email']}, the openid of his WeChat in the district's mini program)")
    return ids


async def post(ctx, path: str, headers: dict[str, str], body: dict | None = None) -> httpx.Response:
    return await ctx.http.post(f"{INTAKE}{path}", json=body if body is not None else {}, headers=headers)


async def ok(ctx, path: str, headers: dict[str, str], body: dict | None = None) -> dict:
    r = await post(ctx, path, headers, body)
    if r.status_code >= 400:
        raise RuntimeError(f"POST {path} answered {r.status_code}: {r.text}")
    return r.json()


async def register(ctx, clerk, applicant_id: str, affair: str, materials: list[str], where: str = COMMUNITY) -> dict:
    return await ok(ctx, "/v1/cases", clerk, {"applicant_id": applicant_id, "affair_code": affair,
                                              "jurisdiction": where, "channel": "window",
                                              "materials_handed_in": materials})


def receipt_line(receipt: dict) -> str:
    return (f"case number {receipt['case_number']}, to be completed within {receipt['time_limit_working_days']} "
            f"working days: by {receipt['due_date']}")


async def run(ctx) -> None:
    clerk = bearer("window_clerk", STREET)
    reviewer = bearer("street_reviewer", STREET)
    ids = await applicant_ids(ctx, clerk)

    # 1. Mrs Wang, temporary assistance, everything handed in: accepted at once.
    wang = await register(ctx, clerk, ids["Wang"], "civil.temporary_assistance",
                          ["id_card", "application_form", "hardship_proof", "verification_authorisation"])
    receipt = await ok(ctx, f"/v1/cases/{wang['id']}/accept", clerk)
    ctx.say(f"  Wang (temporary assistance): accepted, {receipt_line(receipt)}")
    routed = await ok(ctx, f"/v1/cases/{wang['id']}/route", clerk)
    ctx.say(f"    routed: {routed['affair']['routing']} (the street handles it itself)")

    # 2. Ms Li first asks for the minimum living allowance: the catalogue's rule wants her household
    #    registered in this street, so registration itself is refused, naming the rule.
    r = await post(ctx, "/v1/cases", clerk, {"applicant_id": ids["Li"], "affair_code": "civil.minimum_living_allowance",
                                             "jurisdiction": COMMUNITY, "materials_handed_in": ["id_card"]})
    if r.status_code != 422 or r.json().get("code") != "not_eligible":
        raise RuntimeError(f"Li's minimum living allowance should be refused as not eligible: {r.status_code} {r.text}")
    ctx.say(f"  Li (minimum living allowance): refused at registration, {r.status_code} not_eligible: "
            + "; ".join(f"{e['rule']}: {e['detail']}" for e in r.json()["errors"]))
    #    Then a residence proof: she lives here, but the clerk refuses it at the window.
    li = await register(ctx, clerk, ids["Li"], "residence.residence_proof",
                        ["id_card", "residence_proof", "purpose_note"])
    refused = await ok(ctx, f"/v1/cases/{li['id']}/refuse", clerk,
                       {"reason": "户籍在鼓楼区，请到户籍所在地社区办理 (household registered in Gulou district)"})
    ctx.say(f"  Li (residence proof): {refused['status']} — {refused['refusal_reason']}")

    # 3. Mr Zhao, minimum living allowance, with two papers: told everything missing at once.
    zhao = await register(ctx, clerk, ids["Zhao"], "civil.minimum_living_allowance", ["id_card", "application_form"])
    missing = zhao["missing_materials"]
    ctx.say(f"  Zhao (minimum living allowance): registered; missing, all at once ({len(missing)}):")
    for m in missing:
        ctx.say(f"    - {m['name_zh']} ({m['name_en']}), {m['copies']} cop{'y' if m['copies'] == 1 else 'ies'}")
    r = await post(ctx, f"/v1/cases/{zhao['id']}/accept", clerk)
    ctx.say(f"    accepting now is refused: {r.status_code} {r.json().get('code')}")
    supplemented = await ok(ctx, f"/v1/cases/{zhao['id']}/supplements", clerk,
                            {"materials": [m["code"] for m in missing]})
    ctx.say(f"    he comes back with them (补办): missing now {supplemented['missing_materials']}")
    receipt = await ok(ctx, f"/v1/cases/{zhao['id']}/accept", clerk)
    ctx.say(f"    accepted, {receipt_line(receipt)}")

    # 4. Mrs Sun, 84 and alone: the street reviewer puts her elderly-care file on the green channel.
    sun = await register(ctx, clerk, ids["Sun"], "elderly.care_service_file",
                         ["id_card", "household_register", "contact_form"])
    r = await post(ctx, f"/v1/cases/{sun['id']}/green-channel", clerk, {"reason": "84, lives alone, just out of hospital"})
    ctx.say(f"  Sun (elderly care file): the clerk may not use the green channel ({r.status_code})")
    green = await ok(ctx, f"/v1/cases/{sun['id']}/green-channel", reviewer,
                     {"reason": "84, lives alone, just out of hospital"})
    ctx.say(f"    the street reviewer may: green channel = {green['green_channel']} ({green['green_channel_reason']})")
    receipt = await ok(ctx, f"/v1/cases/{sun['id']}/accept", clerk)
    ctx.say(f"    accepted, {receipt_line(receipt)}")

    # The window's queue of open accepted cases: green channel first, then the oldest.
    r = await ctx.http.get(f"{INTAKE}/v1/cases", params={"status": "accepted", "limit": 5}, headers=clerk)
    r.raise_for_status()
    ctx.say(f"  the window's queue of accepted cases ({r.json()['total']} in all, first 5):")
    for item in r.json()["items"]:
        flag = "GREEN" if item["green_channel"] else "     "
        ctx.say(f"    {flag} {item['case_number']} {item['affair_code']:<34} due {item['due_date']}")

    # An auditor replays Zhao's case and checks its hash chain.
    r = await ctx.http.get(f"{INTAKE}/v1/cases/{zhao['id']}/history", headers=bearer("auditor", "320104"))
    r.raise_for_status()
    history = r.json()
    ctx.say(f"  an auditor replays Zhao's case: {' → '.join(e['type'].split('.')[-2] for e in history['events'])}; "
            f"hash chain valid: {history['verification']['valid']} ({history['verification']['checked']} events)")
    ctx.facts["cases"] = {"Wang": wang["id"], "Li": li["id"], "Zhao": zhao["id"], "Sun": sun["id"]}
