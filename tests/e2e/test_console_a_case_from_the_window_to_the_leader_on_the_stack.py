"""A case's day through the console alone, in a real browser on the running stack, as the people of
the demo district sign in to it through Keycloak: the clerk of Huaihai Road street registers a
resident and a minimum living allowance case at the window desk, accepts it (the receipt) and
routes it; the community reviewer and then the street reviewer approve and seal it from their
inboxes; the district leader's dashboard counts it; the auditor's browser verifies its hash chain
and every seal; and the clerk of another street sees nothing of it. What README's "the console"
promises a newcomer after `make up`."""
from __future__ import annotations

import asyncio

import httpx
import pytest
from console_browser import GATEWAY, assert_accessible, chromium, keep_screenshot, signed_in_page
from console_screens import (
    approve_in_page,
    figure_moved_up,
    find_in_inbox,
    register_case_in_page,
    register_resident_in_page,
    row_of,
    shown_figure,
)
from intake_cases import ALLOWANCE_MATERIALS, resident
from playwright.async_api import expect

from civicgrid_common.identity.tokens import mint_local_token

pytestmark = pytest.mark.integration

COMMUNITY = "320104001001"
AUDITOR = {"Authorization": f"Bearer {mint_local_token('auditor', '320104')}"}


async def approval_of(case_id: str) -> dict:
    """The approval the routed case started, once approval has consumed intake's event."""
    async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/approval", headers=AUDITOR, timeout=30) as approval:
        for _ in range(240):
            r = await approval.get("/v1/approvals", params={"case_id": case_id})
            assert r.status_code == 200, r.text
            if r.json()["items"]:
                return r.json()["items"][0]
            await asyncio.sleep(0.5)
    pytest.fail(f"approval did not start case {case_id}'s approval within two minutes")


async def test_a_case_goes_from_the_window_through_two_reviewers_to_the_leader_and_the_auditor():
    person = resident(COMMUNITY, phone="13800001234")
    async with chromium() as browser:
        # the leader's figure before the case exists
        async with signed_in_page("leader.district", browser=browser, next_path="/dashboard") as leader:
            await expect(leader.locator("[data-test=dashboard]")).to_have_attribute("aria-busy", "false")
            accepted_before = await shown_figure(leader, "accepted")

            # the window: the resident, the case, accepted with its receipt, routed
            async with signed_in_page("clerk.huaihai", browser=browser, next_path="/desk") as clerk:
                await register_resident_in_page(clerk, person)
                await expect(clerk.locator("[data-test=applicant-note]")).to_have_text("已登记新申请人。")
                case_id = await register_case_in_page(clerk, ALLOWANCE_MATERIALS, COMMUNITY)
                await clerk.click("[data-test=accept]")
                await expect(clerk.locator("[data-test=case-status]")).to_have_text("已受理")
                case_number = await clerk.inner_text("[data-test=receipt-case-number]")
                assert case_number.startswith("320104001"), case_number
                await clerk.click("[data-test=route]")
                await expect(clerk.locator("[data-test=case-status]")).to_have_text("已转办")
                await expect(clerk.locator("[data-test=routed]")).to_be_visible()
                await keep_screenshot(clerk, "day-1-window")
                await assert_accessible(clerk)

            approval_id = (await approval_of(case_id))["id"]

            # the community's review, then the street's, each approving and sealing in the inbox
            for reviewer, opinion, step in (("reviewer.community", "入户核实属实，同意。", "社区初审"),
                                            ("reviewer.street", "复核无误，同意。", "街道审核")):
                async with signed_in_page(reviewer, browser=browser, next_path="/inbox") as page:
                    await find_in_inbox(page, approval_id)
                    await expect(row_of(page, approval_id)).to_contain_text(case_number)
                    await expect(row_of(page, approval_id)).to_contain_text(step)
                    await row_of(page, approval_id).locator("[data-test=open-task]").click()
                    await expect(page.locator("[data-test=task-case-number]")).to_have_text(case_number)
                    await approve_in_page(page, opinion)
                    await expect(page.locator("[data-test=done]")).to_contain_text("已同意并盖章")
                    await expect(row_of(page, approval_id)).to_have_count(0)
                    await keep_screenshot(page, f"day-2-{reviewer}")

            # the leader's dashboard counts it (statistics consumes the events: within a bound)
            await figure_moved_up(leader, "accepted", accepted_before)
            await keep_screenshot(leader, "day-3-leader")

        # the auditor's browser checks every event's hash and link, intake's and approval's, and
        # both seals itself
        async with signed_in_page("auditor.district", browser=browser, next_path=f"/audit?case={case_id}") as auditor:
            verdict = auditor.locator("[data-test=verdict]")
            await expect(verdict).to_have_attribute("data-verdict", "valid")
            assert set(await auditor.locator("[data-test=event]").evaluate_all(
                "rows => rows.map(r => r.dataset.content + '/' + r.dataset.link)")) == {"ok/ok"}
            seals = auditor.locator("[data-test=seal]")
            await expect(seals).to_have_count(2)
            assert await seals.evaluate_all("rows => rows.map(r => r.dataset.valid)") == ["ok", "ok"]
            await expect(auditor.locator("[data-test=server-case]")).to_have_attribute("data-valid", "true")
            await expect(auditor.locator("[data-test=approval-chain]")).to_have_attribute("data-valid", "ok")
            await keep_screenshot(auditor, "day-4-auditor")
            await assert_accessible(auditor)

        # the clerk of another street: not in their queue, not to be opened, not to be audited
        async with signed_in_page("clerk.other-street", browser=browser, next_path="/desk") as stranger:
            await expect(stranger.locator("[data-test=queue]")).to_have_attribute("aria-busy", "false")
            await expect(stranger.locator(f"[data-test=queue-row-{case_id}]")).to_have_count(0)
            statuses = await stranger.evaluate("""async (id) => Promise.all([
                `/api/intake/v1/cases/${id}`, `/api/intake/v1/cases/${id}/history`, `/api/views/cases/${id}`,
                `/api/intake/v1/cases?limit=200`].map((p) => fetch(p).then(async (r) => [r.status, await r.text()])))""",
                case_id)
            assert [s for s, _ in statuses[:3]] == [404, 404, 404], statuses
            assert statuses[3][0] == 200 and case_id not in statuses[3][1] and case_number not in statuses[3][1]
            await stranger.goto(f"{GATEWAY}/desk/receipt/{case_id}")
            await expect(stranger.locator("[data-test=problem]")).to_be_visible()
            assert case_number not in await stranger.inner_text("body")
