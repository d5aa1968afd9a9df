"""The window desk (综合窗口) in a real browser on the running stack, as the clerk of Huaihai Road
street uses it: a registration with a wrong identity number and no name is refused beside its
fields and registers nobody; corrected, a fresh resident is registered (numbers masked on the
screen); a minimum living allowance case is registered for them with every material ticked,
accepted, and its receipt printed on a page of its own (case number, due date, affair, applicant
masked, the print button hidden on paper); the case is in the window's queue; in English the
labels change. And a case handed in incomplete is told all its missing materials at once, cannot
be accepted until they are brought, and is accepted once the supplement is recorded."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import httpx
import pytest
from console_screens import find_in_queue, register_case_in_page, register_resident_in_page
from console_browser import GATEWAY, assert_accessible, keep_screenshot, signed_in_page
from intake_cases import ALLOWANCE_MATERIALS, resident
from playwright.async_api import expect

from civicgrid_common.identity.tokens import mint_local_token

pytestmark = pytest.mark.integration

STREET, COMMUNITY = "320104001", "320104001001"
CHINA = ZoneInfo("Asia/Shanghai")
def clerk() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token('window_clerk', STREET)}"}


def wrong_check_character(number: str) -> str:
    last = number[-1]
    return number[:-1] + ("0" if last != "0" else "1")


async def registered_under(number: str) -> int:
    """What intake answers a clerk's lookup of `number`: 200 registered, 404 not."""
    async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/intake", timeout=30) as intake:
        r = await intake.post("/v1/applicants/lookup", headers=clerk(), json={"identity_number": number})
        assert r.status_code in (200, 404), r.text
        return r.status_code


async def case_now(case_id: str) -> dict:
    async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/intake", timeout=30) as intake:
        r = await intake.get(f"/v1/cases/{case_id}", headers=clerk())
        assert r.status_code == 200, r.text
        return r.json()


async def test_a_clerk_registers_a_resident_and_an_allowance_case_accepts_it_and_prints_the_receipt():
    person = resident(COMMUNITY, phone="13912345678")
    number = person["identity_number"]
    async with signed_in_page("clerk.huaihai", next_path="/desk") as page:
        await expect(page.locator("h1")).to_have_text("综合窗口")
        await expect(page.locator("[data-test=affair], [data-test=start-register]").first).to_be_visible()

        # a wrong check character and no name: refused beside both fields, nobody registered
        await register_resident_in_page(page, {**person, "identity_number": wrong_check_character(number),
                                               "name": ""})
        await expect(page.locator("#ap-identity_number-err")).to_be_visible()
        await expect(page.locator("#ap-identity_number-err")).to_contain_text("check character")
        await expect(page.locator("#ap-name-err")).to_be_visible()
        assert await page.get_attribute("[data-test=reg-identity-number]", "aria-describedby") == \
            "ap-identity_number-err"
        assert await page.locator("[data-test=applicant]").count() == 0
        assert await page.locator("[data-test=case-registration]").count() == 0
        assert await registered_under(number) == 404

        # corrected: a new applicant, their numbers masked on the screen
        await page.fill("[data-test=reg-identity-number]", number)
        await page.fill("[data-test=reg-name]", person["name"])
        await page.click("[data-test=register]")
        await expect(page.locator("[data-test=applicant-note]")).to_have_text("已登记新申请人。")
        shown = await page.inner_text("[data-test=applicant-number]")
        assert shown == number[:6] + "*" * 8 + number[-4:], shown
        await expect(page.locator("[data-test=applicant-phone]")).to_have_text("139****5678")
        assert number not in await page.inner_text("main")
        assert await registered_under(number) == 200

        # the allowance case with every material, accepted: the receipt on the desk
        case_id = await register_case_in_page(page, ALLOWANCE_MATERIALS, COMMUNITY)
        await expect(page.locator("[data-test=missing]")).to_have_count(0)
        await page.click("[data-test=accept]")
        await expect(page.locator("[data-test=case-status]")).to_have_text("已受理")
        case = await case_now(case_id)
        assert case["status"] == "accepted" and case["receipt"], case
        receipt = case["receipt"]
        await expect(page.locator("[data-test=receipt-case-number]")).to_have_text(receipt["case_number"])
        await expect(page.locator("[data-test=receipt-due-date]")).to_contain_text(receipt["due_date"])
        await expect(page.locator("[data-test=accept]")).to_have_count(0)

        await find_in_queue(page, case_id)
        row = page.locator(f"[data-test=queue-row-{case_id}]")
        await expect(row).to_contain_text(receipt["case_number"])
        await expect(row).to_contain_text("最低生活保障申请")
        await expect(row).to_contain_text(receipt["due_date"])
        await keep_screenshot(page, "window-desk")
        await assert_accessible(page)

        # the printable receipt, on a page of its own without the shell
        async with page.context.expect_page() as opened:
            await page.click("[data-test=print-receipt]")
        slip = await opened.value
        await slip.wait_for_load_state()
        assert slip.url == f"{GATEWAY}/desk/receipt/{case_id}"
        await expect(slip.locator("[data-test=receipt-case-number]")).to_have_text(receipt["case_number"])
        await expect(slip.locator("[data-test=receipt-due-date]")).to_have_text(receipt["due_date"])
        await expect(slip.locator("[data-test=receipt-affair]")).to_have_text("最低生活保障申请")
        await expect(slip.locator("[data-test=receipt-identity]")).to_have_text(number[:6] + "*" * 8 + number[-4:])
        await expect(slip.locator("[data-test=receipt-applicant]")).to_have_text("测***")
        assert number not in await slip.inner_text("body")
        assert await slip.locator("[data-test=who]").count() == 0  # no shell on paper
        await expect(slip.locator("[data-test=print]")).to_be_visible()
        await keep_screenshot(slip, "receipt")
        await assert_accessible(slip)
        await slip.emulate_media(media="print")
        await expect(slip.locator("[data-test=print]")).to_be_hidden()
        await expect(slip.locator("[data-test=receipt-case-number]")).to_be_visible()
        await slip.close()

        # in English: the same desk, its labels in English
        await page.select_option("[data-test=locale]", "en")
        await expect(page.locator("h1")).to_have_text("Window desk")
        await expect(page.locator("[data-test=case-status]")).to_have_text("Accepted")
        await expect(page.locator("#desk-queue-h")).to_have_text("The window queue")
        await page.select_option("[data-test=locale]", "zh-CN")
        await expect(page.locator("h1")).to_have_text("综合窗口")


async def test_an_incomplete_case_is_told_every_missing_material_at_once_and_accepted_after_the_supplement():
    person = resident(COMMUNITY)
    async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/intake", timeout=30) as intake:
        r = await intake.post("/v1/applicants", headers=clerk(), json=person)
        assert r.status_code == 201, r.text
    handed_in, missing = ALLOWANCE_MATERIALS[:2], ALLOWANCE_MATERIALS[2:]
    async with signed_in_page("clerk.huaihai", next_path="/desk") as page:
        await page.fill("[data-test=lookup-number]", person["identity_number"])
        await page.click("[data-test=lookup]")
        await expect(page.locator("[data-test=applicant-name]")).to_have_text(person["name"])

        case_id = await register_case_in_page(page, handed_in, COMMUNITY)
        told = page.locator("[data-test=missing]")
        await expect(told).to_be_visible()
        for code in missing:
            await expect(told.locator(f"[data-test=missing-{code}]")).to_be_visible()
        assert await told.locator("input[type=checkbox]").count() == len(missing)

        # accepting now is refused, naming what is missing; the case stays as it was
        await page.click("[data-test=accept]")
        await expect(page.locator("[data-test=problem]")).to_be_visible()
        await expect(page.locator("[data-test=accept-missing] li")).to_have_count(len(missing))
        await expect(page.locator("[data-test=case-status]")).to_have_text("已登记待受理")
        assert (await case_now(case_id))["status"] == "registered"

        # a refusal without a reason is refused beside the reason, and refuses nothing
        await page.click("[data-test=start-refuse]")
        await page.click("[data-test=refuse]")
        await expect(page.locator("#refuse-reason-err")).to_be_visible()
        assert (await case_now(case_id))["status"] == "registered"
        await page.click("[data-test=start-refuse]")

        # what the applicant brings, recorded; then it is accepted
        for code in missing:
            await page.check(f"[data-test=missing-{code}]")
        await page.click("[data-test=supplement]")
        await expect(page.locator("[data-test=missing]")).to_have_count(0)
        await page.click("[data-test=accept]")
        await expect(page.locator("[data-test=case-status]")).to_have_text("已受理")
        case = await case_now(case_id)
        assert case["status"] == "accepted" and case["materials_handed_in"] == ALLOWANCE_MATERIALS, case
        await expect(page.locator("[data-test=receipt-case-number]")).to_have_text(case["receipt"]["case_number"])
