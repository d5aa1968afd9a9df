"""approval's part of the demo: the back office behind the Huaihai Road window (内部协办).

- 低保 for Zhou Fang: the community reviews, the street reviews, the civil affairs system gives
  its opinion over Kafka (part 40 plays it), the bureau decides: approved, sealed seal by seal,
  verified and archived; intake completes the case from approval's `concluded`.
- 尊老金 for Wu Lan: the community asks for a supplement (the clock stops), the window takes it
  (the clock runs again), the street extends the deadline and sends it back to the community.
- 临时救助 for Zheng Hao: refused (退办) at the community, with the reason.
- an access application (准入): market regulation asks to put up signs in two communities; the
  district community office reviews, the district approves, the access is published.
Then a reviewer's inbox with their counts.
"""
from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import date, timedelta

from stdnum.cn import ric

from civicgrid_common.identity.tokens import mint_local_token

INTAKE = os.environ.get("CIVICGRID_DEMO_INTAKE_URL", "http://127.0.0.1:8001")
APPROVAL = os.environ.get("CIVICGRID_DEMO_APPROVAL_URL", "http://127.0.0.1:8002")
STREET, COMMUNITY = "320104001", "320104001001"

def bearer(role: str, jurisdiction: str, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **claims)}"}


CLERK = bearer("window_clerk", STREET, subject="clerk-huaihai-01", name="窗口 刘敏")
COMMUNITY_REVIEWER = bearer("community_reviewer", COMMUNITY, subject="cr-huaihai-001", name="社区 王红")
STREET_REVIEWER = bearer("street_reviewer", STREET, subject="sr-huaihai", name="街道 李强")
BUREAU = bearer("bureau_approver", "320104", department="civil_affairs", subject="ba-civil-01", name="区民政局 赵静")
AUDITOR = bearer("auditor", "320104", subject="auditor-01")


def identity_number(birth_year: int) -> str:
    body = f"320104{birth_year}0{random.randint(1, 9)}1{random.randint(0, 9)}{random.randint(0, 999):03d}"
    return body + ric.calc_check_digit(body + "0")


async def until(fetch, what: str, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


async def ok(response, what: str):
    if response.status_code >= 300:
        raise RuntimeError(f"{what}: {response.status_code} {response.text}")
    return response.json()


async def routed_case(ctx, name: str, birth_year: int, affair: str, leave_out: str | None = None) -> tuple[str, str]:
    """A resident's case registered (with every required material of the catalogue but
    `leave_out`), accepted and routed at the window; the approval it starts."""
    http = ctx.http
    entry = await ok(await http.get(f"{INTAKE}/v1/affairs/{affair}", headers=CLERK), "catalogue")
    materials = [m["code"] for m in entry["materials"] if m.get("required") and m["code"] != leave_out]
    applicant = await ok(await http.post(f"{INTAKE}/v1/applicants", headers=CLERK, json={
        "kind": "resident", "identity_number": identity_number(birth_year), "name": name,
        "household_registration_code": STREET, "residence_community_code": COMMUNITY}), "applicant")
    case = await ok(await http.post(f"{INTAKE}/v1/cases", headers=CLERK, json={
        "applicant_id": applicant["applicant_id"], "affair_code": affair, "jurisdiction": COMMUNITY,
        "channel": "window", "materials_handed_in": materials}), "register")
    await ok(await http.post(f"{INTAKE}/v1/cases/{case['id']}/accept", headers=CLERK, json={}), "accept")
    await ok(await http.post(f"{INTAKE}/v1/cases/{case['id']}/route", headers=CLERK, json={}), "route")

    async def started():
        r = await http.get(f"{APPROVAL}/v1/approvals", params={"case_id": case["id"]}, headers=AUDITOR)
        return r.json()["items"] if r.status_code == 200 else None

    approval = (await until(started, f"approval of {name}'s case"))[0]["id"]
    return case["id"], approval


async def act(ctx, who, approval: str, action: str, comment: str, **extra) -> dict:
    a = await ok(await ctx.http.get(f"{APPROVAL}/v1/approvals/{approval}", headers=AUDITOR), "get")
    body = {"action": action, "comment": comment, "task": a["task"]["key"], "expected_version": a["version"], **extra}
    done = await ok(await ctx.http.post(f"{APPROVAL}/v1/approvals/{approval}/actions", json=body, headers=who), action)
    move = done["moves"][-1]
    ctx.say(f"  {move['actor_name'] or move['actor']} {action} at {move['from_step']} → {move['to_step'] or 'end'}: "
            f"{comment} (seal {move['seal']['signature'][:12]}…)")
    return done


async def at_step(ctx, approval: str, step: str) -> dict:
    async def there():
        a = (await ctx.http.get(f"{APPROVAL}/v1/approvals/{approval}", headers=AUDITOR)).json()
        return a if a["status"] != "running" or (a["task"] or {}).get("step") == step else None

    return await until(there, f"step {step}")


async def run(ctx) -> None:
    http = ctx.http
    # 1. 低保: community → street → civil affairs system → bureau
    case, dibao = await routed_case(ctx, "周芳", 1961, "civil.minimum_living_allowance")
    ctx.say(f"低保 case {case} started approval {dibao}")
    await act(ctx, COMMUNITY_REVIEWER, dibao, "approve", "入户核查属实，家庭困难")
    await act(ctx, STREET_REVIEWER, dibao, "approve", "街道审核同意，报区民政局")
    await at_step(ctx, dibao, "bureau_decision")
    ctx.say("  the civil affairs system's opinion arrived over Kafka")
    final = await act(ctx, BUREAU, dibao, "approve", "同意纳入最低生活保障")
    verified = await ok(await http.get(f"{APPROVAL}/v1/approvals/{dibao}/verify", headers=AUDITOR), "verify")
    archive = await ok(await http.get(f"{APPROVAL}/v1/approvals/{dibao}/archive", headers=AUDITOR), "archive")
    ctx.say(f"  {final['status']}; verification valid={verified['valid']} over {len(verified['checks'])} checks; "
            f"archive digest {archive['digest'][:16]}… with {len(archive['record']['moves'])} sealed moves")

    async def completed():
        c = (await http.get(f"{INTAKE}/v1/cases/{case}", headers=CLERK)).json()
        return c if c.get("outcome") else None

    c = await until(completed, "intake to complete the case")
    ctx.say(f"  intake: case {c['receipt']['case_number'] if c.get('receipt') else case} is {c['status']} "
            f"({c['outcome']})")

    # 2. 尊老金: supplement, resume, extension, sent back
    case, senior = await routed_case(ctx, "吴兰", 1940, "elderly.senior_allowance")
    ctx.say(f"尊老金 case {case} started approval {senior}")
    await act(ctx, COMMUNITY_REVIEWER, senior, "request_supplement", "请补交户口簿户主页复印件",
              materials=["household_register"])

    async def asked():
        c = (await http.get(f"{INTAKE}/v1/cases/{case}", headers=CLERK)).json()
        return c if c.get("awaiting_supplement") else None

    await until(asked, "intake to record the supplement request")
    await ok(await http.post(f"{INTAKE}/v1/cases/{case}/supplements", headers=CLERK,
                             json={"materials": ["household_register"]}), "supplement")

    async def resumed():
        a = (await http.get(f"{APPROVAL}/v1/approvals/{senior}", headers=AUDITOR)).json()
        return a if a["status"] == "running" else None

    a = await until(resumed, "the supplement to restart the clock")
    ctx.say(f"  the window took the supplement: the clock runs again, due {a['task']['due_date']}")
    await act(ctx, COMMUNITY_REVIEWER, senior, "approve", "年龄、户籍核实无误")
    due = (await http.get(f"{APPROVAL}/v1/approvals/{senior}", headers=AUDITOR)).json()["task"]["due_date"]
    await act(ctx, STREET_REVIEWER, senior, "extend", "需核对养老金发放记录",
              new_due_date=str(date.fromisoformat(due) + timedelta(days=7)))
    await act(ctx, STREET_REVIEWER, senior, "send_back", "请社区补充入户照片")

    # 3. 临时救助: refused at the community
    case, assistance = await routed_case(ctx, "郑浩", 1985, "civil.temporary_assistance")
    refused = await act(ctx, COMMUNITY_REVIEWER, assistance, "refuse", "家庭收入高于救助标准，不予救助")
    ctx.say(f"  临时救助 case {case}: {refused['status']}")

    # 4. access application (准入)
    applicant = bearer("bureau_approver", "320104", department="market_regulation", subject="mr-01",
                       name="区市场监管局 孙涛")
    application = await ok(await http.post(f"{APPROVAL}/v1/access-applications", headers=applicant, json={
        "department": "market_regulation", "title": "食品安全宣传牌进社区", "purpose": "在社区公告栏设置食品安全宣传牌",
        "work_kind": "signboard", "documents": [{"name": "关于设置食品安全宣传牌的函.pdf", "sha256": "5" * 64}],
        "communities": [COMMUNITY, "320104001002"], "cost_bearer": "区市场监管局（费随事转）",
        "valid_from": "2026-12-01", "valid_until": "2027-11-30"}), "access application")
    ctx.say(f"准入 application {application['id']} by market regulation")
    office = bearer("bureau_approver", "320104", department="community_office", subject="co-01", name="区社区办 钱莉")
    district = bearer("leader", "320104", department="district_office", subject="do-01", name="区政府 冯伟")
    await act(ctx, office, application["id"], "approve", "材料齐全，经费由申请部门承担")
    decided = await act(ctx, district, application["id"], "approve", "同意准入")
    ctx.say(f"  access {decided['status']}: published on civicgrid.approval.access")

    # 5. the community reviewer's inbox
    inbox = await ok(await http.get(f"{APPROVAL}/v1/approvals/inbox", headers=COMMUNITY_REVIEWER), "inbox")
    ctx.say(f"the community reviewer's inbox: {inbox['total']} task(s), counts {inbox['counts']}")
