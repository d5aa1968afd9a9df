"""The inbox of notifications (消息) in a real browser on the running stack, live: the community
reviewer keeps the page open; a clerk accepts and routes a case at the window (through the API,
with a script token), approval starts its community review, and notifications' rule
"approval-new-item" tells the community's reviewers. The item appears at the top of the open
page without a reload (the server-sent-events stream through the gateway); marking it read
brings the unread count down and survives a reload."""
from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from console_browser import GATEWAY, assert_accessible, keep_screenshot, signed_in_page
from intake_cases import accepted_case
from playwright.async_api import Page, expect

from civicgrid_common.identity.tokens import mint_local_token

pytestmark = pytest.mark.integration

STREET, COMMUNITY = "320104001", "320104001001"


def bearer(role: str, jurisdiction: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction)}"}


async def unread_shown(page: Page) -> int:
    text = await page.locator("[data-test=unread]").inner_text()
    found = re.search(r"[0-9]+", text)
    assert found, f"the unread count shows {text!r}"
    return int(found.group())


async def case_number_of(case_id: str) -> str:
    async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/intake", timeout=30) as intake:
        r = await intake.get(f"/v1/cases/{case_id}", headers=bearer("window_clerk", STREET))
        assert r.status_code == 200, r.text
        return r.json()["receipt"]["case_number"]


async def test_a_reviewer_sees_a_new_item_arrive_live_and_marks_it_read():
    async with signed_in_page("reviewer.community", next_path="/notifications") as page:
        await expect(page.locator("[data-test=live-status]")).to_have_text(re.compile("实时接收中"), timeout=30_000)
        await expect(page.locator("[data-test=unread]")).to_have_text(re.compile(r"[0-9]+"))
        loads = []
        page.on("framenavigated", lambda frame: loads.append(frame.url) if frame == page.main_frame else None)

        clerk = bearer("window_clerk", STREET)
        async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/intake", timeout=30) as intake:
            case_id = await accepted_case(intake, clerk, COMMUNITY)
            r = await intake.post(f"/v1/cases/{case_id}/route", headers=clerk)
            assert r.status_code == 200, r.text
        number = await case_number_of(case_id)

        # intake → approval → notifications over Kafka, then the stream: no reload of the page
        item = page.locator("[data-test=item]").filter(has_text=number)
        await expect(item).to_have_count(1, timeout=120_000)
        assert loads == [], f"the page was reloaded: {loads}"
        await expect(item).to_have_attribute("data-read", "false")
        await expect(item.locator("[data-test=unread-badge]")).to_be_visible()
        # newest first: nothing above it but what came after it
        ids = [int(i) for i in await page.locator("[data-test=item]").evaluate_all("els => els.map(e => e.dataset.id)")]
        mine = int(await item.get_attribute("data-id"))
        assert ids == sorted(ids, reverse=True) and mine in ids, ids
        await keep_screenshot(page, "notifications")
        await assert_accessible(page)

        # Marked read: the count goes down by one. Other tests may tell the same reviewers of
        # their own cases meanwhile; those arrive on the page too, unread, and are counted back.
        before = await unread_shown(page)
        seen_before = set(ids)
        await item.locator("[data-test=mark-read]").click()
        await expect(item).to_have_attribute("data-read", "true")
        await expect(item.locator("[data-test=unread-badge]")).to_have_count(0)
        expected = None
        for _ in range(40):
            arrived = await page.locator("[data-test=item][data-read=false]").evaluate_all(
                "els => els.map(e => Number(e.dataset.id))")
            expected = before - 1 + len([i for i in arrived if i not in seen_before])
            if await unread_shown(page) == expected:
                break
            await asyncio.sleep(0.25)
        assert await unread_shown(page) == expected, (await unread_shown(page), expected)
        await assert_accessible(page)

        # the service keeps it read: after a reload it is still so
        await page.reload()
        await expect(page.locator(f"[data-test=item][data-id='{mine}']")).to_have_attribute("data-read", "true",
                                                                                          timeout=30_000)
