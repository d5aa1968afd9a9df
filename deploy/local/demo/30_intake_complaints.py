"""intake's part of the demo: complaints. A resident phones the 12345 hotline about restaurant
fumes (filed by the Huaihai Road window clerk, routed by its category's default to environmental
protection); another reports a missing manhole cover from an Open311 app, the district's 12345
centre and urban management take it to closed, the resident rates it from the app (FixMyStreet's
POST servicerequestupdates), and the public Open311 endpoint then shows it."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from civicgrid_common.identity.tokens import mint_local_token

# The running local stack's intake; another instance can be named for a rehearsal.
INTAKE = os.environ.get("CIVICGRID_DEMO_INTAKE_URL", "http://127.0.0.1:8001")
OPEN311 = f"{INTAKE}/open311/v2"
DEMO_API_KEY = "demo-open311-key"


def bearer(role: str, jurisdiction: str, department: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, department=department)}"}


async def staff(ctx, path: str, headers: dict[str, str], body: dict | None = None) -> dict:
    r = await ctx.http.post(f"{INTAKE}/v1/complaints{path}", json=body, headers=headers)
    if r.status_code >= 400:
        raise RuntimeError(f"POST /v1/complaints{path}: {r.status_code} {r.text}")
    return r.json()


async def phone_complaint(ctx) -> None:
    clerk = bearer("window_clerk", "320104001")
    filed = await staff(ctx, "", clerk, {
        "category": "environmental_protection", "channel": "phone", "urgency": "general",
        "jurisdiction": "320104001001",
        "location": {"address": "淮海路 30 号 餐馆后门", "lat": 32.0312, "long": 118.7895},
        "description": "餐馆油烟直排，晚上六点到十点最严重", "anonymous": True,
    })
    ctx.say(f"  12345 call filed by the Huaihai Road clerk: {filed['id']} ({filed['category']}, by {filed['channel']}), "
            f"feedback due {filed['feedback_due_at']}")
    routed = await staff(ctx, f"/{filed['id']}/route", clerk)  # no rule given: the category's default
    ctx.say(f"  routed by its category's default to {routed['routing']['department']}: status {routed['status']}")
    ctx.facts["phone_complaint"] = filed["id"]


async def open311_complaint(ctx) -> None:
    form = {
        "api_key": DEMO_API_KEY, "jurisdiction_id": "320104", "service_code": "municipal_works",
        "lat": "32.0301", "long": "118.7902", "address_string": "淮海路 12 号门口",
        "description": "井盖缺失，夜间危险", "attribute[urgency]": "life_or_property",
        "email": "resident@example.com",
    }
    r = await ctx.http.post(f"{OPEN311}/requests.json", data=form)
    if r.status_code != 200:
        raise RuntimeError(f"Open311 POST requests.json: {r.status_code} {r.text}")
    [created] = r.json()
    rid = created["service_request_id"]
    ctx.say(f"  Open311 app reported a missing manhole cover: service_request_id {rid}")
    ctx.say(f"    service_notice: {created['service_notice']}")
    r = await ctx.http.post(f"{OPEN311}/requests.json", data={**form, "api_key": "wrong"})
    ctx.say(f"  the same POST with a wrong api_key: {r.status_code} {r.json()}")

    centre = bearer("window_clerk", "320104")  # the district's 12345 centre
    urban = bearer("department", "320104", department="urban_management")
    await staff(ctx, f"/{rid}/route", centre, {"kind": "department", "department": "urban_management"})
    await staff(ctx, f"/{rid}/response", urban, {})
    await staff(ctx, f"/{rid}/answer", urban, {"answer": "井盖已补装，周边已设警示", "resolved": True})
    await staff(ctx, f"/{rid}/close", centre)
    ctx.say("  routed to urban_management, responded, answered, closed")
    r = await ctx.http.post(f"{OPEN311}/servicerequestupdates.xml", data={
        "api_key": DEMO_API_KEY, "jurisdiction_id": "320104", "service_request_id": rid,
        "update_id": "app-update-1", "status": "FIXED", "updated_datetime": "2026-11-23T20:00:00+08:00",
        "description": "已修好，谢谢", "rating": "very_satisfied"})
    if r.status_code != 200:
        raise RuntimeError(f"Open311 POST servicerequestupdates.xml: {r.status_code} {r.text}")
    update_id = ET.fromstring(r.content).findtext("request_update/update_id")
    rated = (await ctx.http.get(f"{INTAKE}/v1/complaints/{rid}", headers=centre)).json()
    ctx.say(f"  the resident rates it from the app (POST servicerequestupdates, update_id {update_id}): "
            f"{rated['ratings'][-1]} -> status {rated['status']}")

    r = await ctx.http.get(f"{OPEN311}/requests/{rid}.xml")
    request = ET.fromstring(r.content).find("request")
    assert request is not None
    ctx.say(f"  GET requests/{rid}.xml: status {request.findtext('status')}, "
            f"status_notes {request.findtext('status_notes')!r}, agency {request.findtext('agency_responsible')}")
    updates = (await ctx.http.get(f"{OPEN311}/servicerequestupdates.json")).json()
    mine = [u["status"] for u in updates if u["service_request_id"] == rid]
    ctx.say(f"  servicerequestupdates for it: {' -> '.join(mine)}")
    ctx.facts["open311_complaint"] = rid


async def run(ctx) -> None:
    await phone_complaint(ctx)
    await open311_complaint(ctx)
