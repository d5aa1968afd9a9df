"""The bureau's and the leader's inboxes in a real browser on the running stack: a minimum living
allowance case passed by the community and the street (through the API) and checked by the civil
affairs system (the demo's, answering on Kafka) reaches the bureau's step; the civil affairs
bureau's approver finds it in their inbox and sends it to the leader (报领导) with a reason;
notifications tells the leaders; the bureau's leader (a leader of civil affairs: only its own
bureau's leader may act on a bureau's step) finds it in their inbox marked as escalated,
approves and seals it, and approval concludes it approved."""
from __future__ import annotations

import asyncio

import httpx
import pytest
from console_browser import GATEWAY, assert_accessible, chromium, keep_screenshot, signed_in_page
from console_screens import approve_in_page, find_in_inbox, row_of, told_in_inbox
from demo_parts import demo_part
from intake_cases import accepted_case
from playwright.async_api import expect

from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.settings import PlatformSettings

pytestmark = pytest.mark.integration

STREET, COMMUNITY = "320104001", "320104001001"
REASON = "申请人家庭收入认定存在争议，请领导审定。"
OPINION = "经审定，符合最低生活保障条件，同意。"


def bearer(role: str, jurisdiction: str, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **claims)}"}


AUDITOR = bearer("auditor", "320104")


async def approval_at(approval: httpx.AsyncClient, approval_id: str, step: str) -> dict:
    """The approval once its task is at `step` (two minutes at most)."""
    for _ in range(240):
        a = (await approval.get(f"/v1/approvals/{approval_id}", headers=AUDITOR)).json()
        if (a.get("task") or {}).get("step") == step:
            return a
        await asyncio.sleep(0.5)
    pytest.fail(f"approval {approval_id} did not reach {step} within two minutes")


async def a_case_at_the_bureau() -> tuple[str, str, str]:
    """A case accepted and routed at the window, passed by the community and the street and
    checked by the civil affairs system: (case id, case number, approval id) at bureau_decision."""
    clerk = bearer("window_clerk", STREET)
    people = {"community_review": bearer("community_reviewer", COMMUNITY, subject="e2e-bureau-community"),
              "street_review": bearer("street_reviewer", STREET, subject="e2e-bureau-street")}
    system = demo_part("40_approval_civil_affairs_system").CivilAffairsSystem(
        PlatformSettings(service_name="e2e"), group_id="civil-affairs-system-e2e-console")
    responder = asyncio.create_task(system.run())
    try:
        await system.wait_ready()
        async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/intake", timeout=30) as intake, \
                httpx.AsyncClient(base_url=f"{GATEWAY}/api/approval", timeout=30) as approval:
            case_id = await accepted_case(intake, clerk, COMMUNITY)
            assert (await intake.post(f"/v1/cases/{case_id}/route", headers=clerk)).status_code == 200
            for _ in range(240):
                items = (await approval.get("/v1/approvals", params={"case_id": case_id}, headers=AUDITOR)).json()
                if items["items"]:
                    break
                await asyncio.sleep(0.5)
            else:
                pytest.fail(f"approval did not start case {case_id}'s approval within two minutes")
            approval_id, case_number = items["items"][0]["id"], items["items"][0]["case_number"]
            for step, headers in people.items():
                a = await approval_at(approval, approval_id, step)
                r = await approval.post(f"/v1/approvals/{approval_id}/actions", headers=headers, json={
                    "action": "approve", "comment": f"{step}：情况属实", "task": a["task"]["key"],
                    "expected_version": a["version"]})
                assert r.status_code == 200, r.text
            await approval_at(approval, approval_id, "bureau_decision")  # the civil affairs system answered
            return case_id, case_number, approval_id
    finally:
        system.stop()
        await responder


async def test_the_bureau_sends_a_case_to_the_leader_who_approves_and_seals_it():
    case_id, case_number, approval_id = await a_case_at_the_bureau()

    async with chromium() as browser:
        async with signed_in_page("approver.civil", browser=browser, next_path="/inbox") as page:
            await find_in_inbox(page, approval_id)
            await expect(row_of(page, approval_id)).to_contain_text(case_number)
            await expect(row_of(page, approval_id)).to_contain_text("区级部门审批")  # the list names the level
            await row_of(page, approval_id).locator("[data-test=open-task]").click()
            await expect(page.locator("[data-test=current-step]")).to_contain_text("区民政局审批")
            await expect(page.locator("[data-test=move]")).to_have_count(3)  # community, street, the system
            await page.click("[data-test=action-escalate]")
            await page.fill("[data-test=comment]", REASON)
            await keep_screenshot(page, "bureau-task")
            await assert_accessible(page)
            await page.click("[data-test=submit-action]")
            await expect(page.locator("[data-test=done]")).to_contain_text("已报领导")
            await expect(page.locator("[data-test=move]")).to_have_count(4)
            await expect(page.locator("[data-test=move-comment]").nth(3)).to_have_text(REASON)

        # notifications told the leaders over the case, naming the affair and the step
        told = await told_in_inbox(bearer("leader", "320104", department="civil_affairs"), f"/approvals/{case_id}",
                                    title_has="待领导审批")
        assert told["title"] == f"待领导审批 {case_number}"
        assert told["body"] == f"最低生活保障申请 “区民政局审批”环节已报领导，请审批。报请意见：{REASON}"

        async with signed_in_page("leader.civil", browser=browser, next_path="/inbox") as page:
            await find_in_inbox(page, approval_id)
            await expect(row_of(page, approval_id)).to_contain_text("已报领导")
            await row_of(page, approval_id).locator("[data-test=open-task]").click()
            await expect(page.locator("[data-test=move-comment]").nth(3)).to_have_text(REASON)
            await approve_in_page(page, OPINION)
            await expect(page.locator("[data-test=done]")).to_contain_text("已同意并盖章")
            await expect(row_of(page, approval_id)).to_have_count(0)
            await assert_accessible(page)

    async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/approval", timeout=30) as approval:
        a = (await approval.get(f"/v1/approvals/{approval_id}", headers=AUDITOR)).json()
    assert a["status"] == "approved", a
    assert [(m["step"], m["outcome"]) for m in a["moves"][-2:]] == [("bureau_decision", "escalated"),
                                                                   ("bureau_decision", "approved")]
    assert a["moves"][-1]["actor_roles"] == ["leader"] and a["moves"][-1]["comment"] == OPINION
    assert a["moves"][-1]["seal"]["decision"]["previous"] == a["moves"][-2]["seal"]["signature"]
