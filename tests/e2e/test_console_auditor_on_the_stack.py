"""The auditor's screen (/audit) in a real browser against the running stack: a case accepted at
the window, routed, and approved at the community with a seal (through the APIs); auditor.district
opens /audit?case=<id> and the browser itself checks every event's link to its predecessor and
every seal's Ed25519 signature against approval's published keys, beside the server's own
verification. The checks are shown to fail: answers altered on their way to the browser
(Playwright's page.route) break a link, a content hash and a seal where they were altered, and
the screen says the server disagrees.

intake's history answers every input of each event's hash (libs/common/.../eventstore/hashing.py),
so the browser recomputes every content hash from that answer alone; an answer without them
(as intake's was before) is shown as not checkable, never as checked."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime

import httpx
import pytest
from console_browser import GATEWAY, assert_accessible, keep_screenshot, signed_in_page
from intake_cases import accepted_case
from playwright.async_api import Page, Route, expect

from civicgrid_common.identity.tokens import mint_local_token

pytestmark = pytest.mark.integration

INTAKE, APPROVAL = "http://127.0.0.1:8001", "http://127.0.0.1:8002"
STREET, COMMUNITY = "320104001", "320104001001"
HISTORY = "**/api/intake/v1/cases/*/history"
VIEW = "**/api/views/cases/*"
APPROVAL_HISTORY = "**/api/approval/v1/approvals/*/history"


def bearer(role: str, jurisdiction: str, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **claims)}"}


async def until(probe, what: str, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


async def sealed_case() -> tuple[str, str, list[dict]]:
    """A case accepted, routed a moment later, and approved at the community with a seal: its
    id, its approval's id and its history as intake answers it."""
    clerk = bearer("window_clerk", STREET)
    auditor = bearer("auditor", "320104")
    reviewer = bearer("community_reviewer", COMMUNITY, subject="e2e-community", name="社区审核员")
    async with httpx.AsyncClient(base_url=INTAKE, timeout=30) as intake, \
            httpx.AsyncClient(base_url=APPROVAL, timeout=30) as approval:
        try:
            await intake.get("/healthz")
            await approval.get("/healthz")
        except httpx.ConnectError:
            pytest.fail("the local stack is not running; run `make up`", pytrace=False)
        case = await accepted_case(intake, clerk, COMMUNITY)
        await asyncio.sleep(1.5)  # a clear instant between acceptance and routing, for the time travel
        r = await intake.post(f"/v1/cases/{case}/route", headers=clerk)
        assert r.status_code == 200, r.text

        async def started():
            r = await approval.get("/v1/approvals", params={"case_id": case}, headers=auditor)
            return r.json()["items"] if r.status_code == 200 else None

        aid = (await until(started, "approval to start the routed case"))[0]["id"]

        async def at_community():
            a = (await approval.get(f"/v1/approvals/{aid}", headers=auditor)).json()
            return a if (a.get("task") or {}).get("step") == "community_review" else None

        a = await until(at_community, "the community review task")
        r = await approval.post(f"/v1/approvals/{aid}/actions", headers=reviewer, json={
            "action": "approve", "comment": "社区审核：材料真实，符合条件", "task": a["task"]["key"],
            "expected_version": a["version"]})
        assert r.status_code == 200, r.text
        assert r.json()["moves"][0]["seal"]["signature"]
        history = (await intake.get(f"/v1/cases/{case}/history", headers=auditor)).json()
    assert history["verification"]["valid"] is True, history
    return case, aid, history["events"]


async def altered(page: Page, pattern: str, change) -> None:
    """Every answer matching `pattern` changed by `change(body)` before the page sees it."""
    async def handle(route: Route) -> None:
        response = await route.fetch()
        body = await response.json()
        change(body)
        await route.fulfill(response=response, json=body)

    await page.unroute(pattern)
    await page.route(pattern, handle)


async def marks(page: Page, attribute: str, selector: str = "[data-test=event]") -> list[str]:
    return await page.locator(selector).evaluate_all(f"rows => rows.map(r => r.getAttribute('{attribute}'))")


async def reload(page: Page) -> None:
    await page.reload()
    await expect(page.locator("[data-test=verdict]")).to_be_visible()


def local_input(ms: float) -> str:
    """A datetime-local value for an instant, in the browser's time zone (the test's own)."""
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]


async def test_an_auditor_verifies_a_sealed_case_in_the_browser_and_sees_an_altered_one_fail():
    case, aid, events = await sealed_case()
    versions = [e["version"] for e in events]
    by_type = {e["type"].rsplit(".", 2)[-2]: e for e in events}
    accepted, routed = by_type["accepted"], by_type["routed"]

    async with signed_in_page("auditor.district") as page:
        await page.goto(f"{GATEWAY}/audit")
        await page.fill("[data-test=case-id]", case)
        await page.click("[data-test=verify]")
        await page.wait_for_url(f"{GATEWAY}/audit?case={case}")
        verdict = page.locator("[data-test=verdict]")
        await expect(verdict).to_be_visible()

        # Every event links to its predecessor and hashes, recomputed in the browser, to its hash.
        await expect(page.locator("[data-test=event]")).to_have_count(len(events))
        assert await marks(page, "data-version") == [str(v) for v in versions]
        assert set(await marks(page, "data-link")) == {"ok"}
        assert set(await marks(page, "data-content")) == {"ok"}
        await expect(page.locator("[data-test=hash-inputs-missing]")).to_have_count(0)
        await expect(verdict).to_have_attribute("data-verdict", "valid")
        # and the approval's own events, from approval's history route, are re-hashed here too
        await expect(page.locator("[data-test=approval-chain]")).to_have_attribute("data-valid", "ok")
        # The community's seal verifies in the browser against the published key, and so says the server.
        seals = page.locator("[data-test=seal]")
        await expect(seals).to_have_count(1)
        assert await marks(page, "data-valid", "[data-test=seal]") == ["ok"]
        await expect(seals.first.locator("[data-test=signer]")).to_contain_text("e2e-community")
        await expect(page.locator("[data-test=approval]")).to_contain_text(aid)
        await expect(page.locator("[data-test=agreement]")).to_be_visible()
        await expect(page.locator("[data-test=travel-unsure]")).to_have_count(0)
        await expect(page.locator("[data-test=server-case]")).to_have_attribute("data-valid", "true")
        await expect(page.locator("[data-test=summary-links]")).to_contain_text(f"{len(events)}/{len(events)}")
        await expect(page.locator("[data-test=summary-seals]")).to_contain_text("1/1")

        # Time travel: between acceptance and routing the case stood accepted, not yet in approval.
        mid = (datetime.fromisoformat(accepted["recorded_at"]).timestamp()
               + datetime.fromisoformat(routed["recorded_at"]).timestamp()) / 2 * 1000
        await page.fill("[data-test=at]", local_input(mid))
        applied = page.locator("[data-test=applied]")
        await expect(applied).to_have_attribute("data-events", str(accepted["version"]))
        await expect(page.locator("[data-test=state-status]")).to_have_text("已受理")
        await expect(page.locator("[data-test=state-case_number]")).to_have_text(accepted["data"]["case_number"])
        await expect(page.locator("[data-test=state-approval_step]")).to_have_count(0)
        await page.click("[data-test=latest]")
        await expect(page.locator("[data-test=state-status]")).to_have_text("已转办")
        await expect(page.locator("[data-test=state-approval_step]")).to_have_text("street_review")
        await page.click(f"[data-test=as-of-{accepted['version']}]")
        await expect(page.locator("[data-test=state-status]")).to_have_text("已受理")

        await keep_screenshot(page, "auditor")
        await assert_accessible(page)

        # An event's stored hash altered on its way: the next event's link breaks, there.
        def break_link(body):
            body["events"][accepted["version"] - 1]["hash"] = "0" * 64

        await altered(page, HISTORY, break_link)
        await reload(page)
        links = await marks(page, "data-link")
        assert links[routed["version"] - 1] == "bad" and links.count("bad") == 1, links
        await expect(verdict).to_have_attribute("data-verdict", "broken")
        await expect(page.locator("[data-test=verdict-problems]")).to_contain_text(f"第 {routed['version']} 版")
        await expect(page.locator("[data-test=disagreement]")).to_be_visible()  # the server still says valid

        # An answer without the hash's other inputs (metadata, schema_revision, stream_type) is
        # not checked and says so: "partial", never "valid".
        def without_inputs(body):
            for e in body["events"]:
                for k in ("metadata", "schema_revision", "stream_type"):
                    e.pop(k)

        await altered(page, HISTORY, without_inputs)
        await reload(page)
        assert set(await marks(page, "data-content")) == {"unchecked"}
        await expect(page.locator("[data-test=hash-inputs-missing]")).to_contain_text("schema_revision")
        await expect(verdict).to_have_attribute("data-verdict", "partial")

        # One event's data altered on its way: caught at that event.
        def tampered(body):
            body["events"][accepted["version"] - 1]["data"]["due_date"] = "2099-12-31"

        await altered(page, HISTORY, tampered)
        await reload(page)
        contents = await marks(page, "data-content")
        assert contents[accepted["version"] - 1] == "bad" and contents.count("bad") == 1, contents
        await expect(verdict).to_have_attribute("data-verdict", "broken")
        await expect(page.locator("[data-test=verdict-problems]")).to_contain_text(f"第 {accepted['version']} 版")
        await expect(page.locator("[data-test=disagreement]")).to_be_visible()
        await expect(page.locator("[data-test=travel-unsure]")).to_be_visible()
        await keep_screenshot(page, "auditor-tampered")

        # An approval event's data altered on its way: the approval's chain breaks in the browser.
        await page.unroute(HISTORY)

        def approval_tampered(body):
            body["events"][0]["data"]["case_number"] = "320104001209912310001"

        await altered(page, APPROVAL_HISTORY, approval_tampered)
        await reload(page)
        await expect(page.locator("[data-test=approval-chain]")).to_have_attribute("data-valid", "bad")
        await expect(verdict).to_have_attribute("data-verdict", "broken")
        await expect(page.locator("[data-test=verdict-problems]")).to_contain_text("第 1 版")
        await page.unroute(APPROVAL_HISTORY)

        # A sealed decision altered (approved → refused): its signature no longer verifies.

        def forged(body):
            move = body["approvals"][0]["approval"]["moves"][0]
            move["outcome"] = move["seal"]["decision"]["outcome"] = "refused"

        await altered(page, VIEW, forged)
        await reload(page)
        assert await marks(page, "data-valid", "[data-test=seal]") == ["bad"]
        await expect(verdict).to_have_attribute("data-verdict", "broken")
        await expect(page.locator("[data-test=verdict-problems]")).to_contain_text("Ed25519")
        await expect(page.locator("[data-test=disagreement]")).to_contain_text("签章")
