"""The reviewer inbox (审批待办) in a real browser on the running stack: a minimum living
allowance case accepted and routed at the window (through the API, with a clerk's script token)
reaches approval; the community reviewer finds it in their inbox, opens it (the case, its
materials, its history), approves it with an opinion and sees it sealed and gone from the inbox;
the street reviewer, in a browser of their own, approves it at the street level. And a decision
on a version someone else has changed meanwhile (the same reviewer in two browsers) is refused,
said so plainly, and changes nothing twice."""
from __future__ import annotations

import asyncio

import httpx
import pytest
from console_screens import approve_in_page, find_in_inbox, row_of, told_in_inbox
from console_browser import GATEWAY, assert_accessible, chromium, keep_screenshot, signed_in_page
from intake_cases import accepted_case
from playwright.async_api import expect

from civicgrid_common.identity.tokens import mint_local_token

pytestmark = pytest.mark.integration

STREET, COMMUNITY = "320104001", "320104001001"
CONFLICT_MESSAGE = "数据已被他人更新，请刷新后重试。"


def bearer(role: str, jurisdiction: str, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **claims)}"}


async def approval_of_a_new_case() -> tuple[str, str, str]:
    """A case accepted and routed at the window, and the approval it starts: (case id, case
    number, approval id), once approval has it at the community review."""
    clerk = bearer("window_clerk", STREET)
    auditor = bearer("auditor", "320104")
    async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/intake", timeout=30) as intake, \
            httpx.AsyncClient(base_url=f"{GATEWAY}/api/approval", timeout=30) as approval:
        case_id = await accepted_case(intake, clerk, COMMUNITY)
        r = await intake.post(f"/v1/cases/{case_id}/route", headers=clerk)
        assert r.status_code == 200, r.text
        for _ in range(240):
            r = await approval.get("/v1/approvals", params={"case_id": case_id}, headers=auditor)
            assert r.status_code == 200, r.text
            if r.json()["items"]:
                row = r.json()["items"][0]
                assert row["step"] == "community_review", row
                return case_id, row["case_number"], row["id"]
            await asyncio.sleep(0.5)
    pytest.fail(f"approval did not start case {case_id}'s approval within two minutes")


async def approval_now(approval_id: str) -> dict:
    async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/approval", timeout=30) as approval:
        r = await approval.get(f"/v1/approvals/{approval_id}", headers=bearer("auditor", "320104"))
        assert r.status_code == 200, r.text
        return r.json()


async def test_a_community_reviewer_then_a_street_reviewer_approve_a_case_from_their_inboxes():
    case_id, case_number, approval_id = await approval_of_a_new_case()

    async with chromium() as browser:
        async with signed_in_page("reviewer.community", browser=browser, next_path="/inbox") as page:
            await find_in_inbox(page, approval_id)
            await expect(page.locator("h1")).to_have_text("审批待办")
            # shown in the order the service gives (green channel first, then the oldest)
            shown = await page.locator("[data-test=inbox-row]").evaluate_all(
                "rows => rows.map(r => r.dataset.approval)")
            served = await page.evaluate(
                "() => fetch('/api/approval/v1/approvals/inbox?limit=200').then(r => r.json())"
                ".then(p => p.items.map(i => i.id))")
            # (other tests' tasks come and go meanwhile: the order of those in both is compared)
            assert [i for i in shown if i in served] == [i for i in served if i in shown]
            assert approval_id in shown
            await expect(row_of(page, approval_id)).to_contain_text(case_number)
            await expect(row_of(page, approval_id)).to_contain_text("最低生活保障申请")
            await expect(row_of(page, approval_id)).to_contain_text("社区初审")
            await keep_screenshot(page, "reviewer-inbox")
            await assert_accessible(page)

            await row_of(page, approval_id).locator("[data-test=open-task]").click()
            await expect(page.locator("[data-test=task-case-number]")).to_have_text(case_number)
            await expect(page.locator("[data-test=case-details]")).to_contain_text("测试居民")
            await expect(page.locator("[data-test=materials]")).to_contain_text("户口簿")
            await expect(page.locator("[data-test=current-step]")).to_contain_text("社区初审")
            await expect(page.locator("[data-test=move]")).to_have_count(0)
            # every move the step offers, each its own button
            for action in ("approve", "escalate", "request_supplement", "extend", "refuse", "send_back"):
                await expect(page.locator(f"[data-test=action-{action}]")).to_be_visible()
            await expect(page.locator("[data-test=action-send_back]")).to_be_disabled()  # the first step

            # an extension further than the step allows: the service's error beside the date field
            await page.click("[data-test=action-extend]")
            await page.fill("[data-test=new-due-date]", "2030-01-01")
            await page.fill("[data-test=comment]", "需入户核实，申请延期。")
            await page.click("[data-test=submit-action]")
            await expect(page.locator("[data-test=action-form] #due-err")).to_be_visible()
            assert "due-err" in await page.get_attribute("[data-test=new-due-date]", "aria-describedby")
            await expect(page.locator("[data-test=done]")).to_have_count(0)
            assert (await approval_now(approval_id))["moves"] == []

            await page.click("[data-test=action-approve]")
            await page.fill("[data-test=comment]", "社区走访核实，家庭情况属实，同意上报街道。")
            await keep_screenshot(page, "reviewer-task")
            await assert_accessible(page)
            await page.click("[data-test=submit-action]")

            await expect(page.locator("[data-test=done]")).to_contain_text("已同意并盖章")
            await expect(page.locator("[data-test=left-inbox]")).to_be_visible()
            await expect(page.locator("[data-test=move]")).to_have_count(1)
            move = page.locator("[data-test=move]").first
            await expect(move.locator("[data-test=move-what]")).to_contain_text("社区初审: 同意")
            await expect(move.locator("[data-test=move-comment]")).to_have_text("社区走访核实，家庭情况属实，同意上报街道。")
            await expect(page.locator("[data-test=current-step]")).to_contain_text("街道审核")
            await expect(page.locator("[data-test=not-yours]")).to_be_visible()
            await expect(page.locator("[data-test=task-actions]")).to_have_count(0)
            await expect(row_of(page, approval_id)).to_have_count(0)

            a = await approval_now(approval_id)
            assert a["task"]["step"] == "street_review" and len(a["moves"]) == 1
            [first] = a["moves"]
            assert first["outcome"] == "approved" and first["actor_roles"] == ["community_reviewer"]
            assert first["comment"] == "社区走访核实，家庭情况属实，同意上报街道。"
            await expect(move.locator("[data-test=move-seal]")).to_contain_text(first["seal"]["key_id"])
            await expect(page.locator("[data-test=verification]")).to_contain_text("校验通过")

        # notifications told the street's reviewers that the case reached their step, by name
        told = await told_in_inbox(bearer("street_reviewer", STREET), f"/approvals/{case_id}")
        assert told["title"] == f"新待审事项 {case_number}"
        assert told["body"].startswith("最低生活保障申请 已转入“街道审核”环节，请于 "), told["body"]

        async with signed_in_page("reviewer.street", browser=browser, next_path="/inbox") as page:
            await find_in_inbox(page, approval_id)
            await expect(row_of(page, approval_id)).to_contain_text("街道审核")
            await row_of(page, approval_id).locator("[data-test=open-task]").click()
            await expect(page.locator("[data-test=move]")).to_have_count(1)
            await expect(page.locator("[data-test=move-comment]")).to_have_text("社区走访核实，家庭情况属实，同意上报街道。")
            await expect(page.locator("[data-test=action-send_back]")).to_be_enabled()
            await approve_in_page(page, "街道复核无误，同意，转民政核对。")
            await expect(page.locator("[data-test=done]")).to_contain_text("已同意并盖章")
            await expect(page.locator("[data-test=move]")).to_have_count(2)
            await expect(page.locator("[data-test=move-what]").nth(1)).to_contain_text("街道审核: 同意")
            await expect(row_of(page, approval_id)).to_have_count(0)

    a = await approval_now(approval_id)
    assert [(m["step"], m["outcome"]) for m in a["moves"][:2]] == [("community_review", "approved"),
                                                                  ("street_review", "approved")]
    assert a["moves"][1]["actor_roles"] == ["street_reviewer"]
    assert a["moves"][1]["seal"]["decision"]["previous"] == a["moves"][0]["seal"]["signature"]


async def test_a_decision_on_a_version_someone_changed_meanwhile_is_refused_and_said_so():
    case_id, case_number, approval_id = await approval_of_a_new_case()

    async with chromium() as browser:
        async with signed_in_page("reviewer.community", browser=browser, next_path="/inbox") as first, \
                signed_in_page("reviewer.community", browser=browser, next_path="/inbox") as second:
            for page in (first, second):
                await page.goto(f"{GATEWAY}/inbox?task={approval_id}")
                await expect(page.locator("[data-test=task-case-number]")).to_have_text(case_number)
                await expect(page.locator("[data-test=action-approve]")).to_be_visible()

            await approve_in_page(first, "第一位审核人：同意。")
            await expect(first.locator("[data-test=done]")).to_contain_text("已同意并盖章")

            # the second browser still shows the version it read, and decides on it
            await expect(second.locator("[data-test=move]")).to_have_count(0)
            await approve_in_page(second, "第二次同意，不应生效。")
            problem = second.locator("[data-test=action-form] [data-test=problem]")
            await expect(problem).to_contain_text(CONFLICT_MESSAGE)
            await expect(second.locator("[data-test=done]")).to_have_count(0)

            a = await approval_now(approval_id)
            assert len(a["moves"]) == 1 and a["moves"][0]["comment"] == "第一位审核人：同意。", a["moves"]
            assert a["task"]["step"] == "street_review"

            await problem.get_by_role("button", name="刷新").click()
            await expect(second.locator("[data-test=move]")).to_have_count(1)
            await expect(second.locator("[data-test=move-comment]")).to_have_text("第一位审核人：同意。")
            await expect(second.locator("[data-test=current-step]")).to_contain_text("街道审核")
            await expect(second.locator("[data-test=task-actions]")).to_have_count(0)
            await expect(second.locator("[data-test=not-yours]")).to_be_visible()
            await assert_accessible(second)

    a = await approval_now(approval_id)
    assert len(a["moves"]) == 1
