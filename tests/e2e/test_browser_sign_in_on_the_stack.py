"""A real browser (Debian's Chromium, driven by Playwright) signs in at the console through the
gateway as `make up` runs it: Keycloak's own login page filled in and submitted, back through
/auth/callback to the page sign-in began at; the session cookie is HttpOnly (no script on the
page can read it) and SameSite=Lax; a script of the console's origin works with it and the CSRF
token, and signs out. What the httpx tests (test_console_sign_in_on_the_stack.py) cannot show: a
browser's own cookie rules (Secure on http://127.0.0.1, SameSite on the return from Keycloak,
the sign-in cookie's path) let the flow through."""
from __future__ import annotations

import json

import pytest
from console_browser import chromium
from keycloak_login import DEMO_PASSWORD, KEYCLOAK, one_login_at_a_time

pytestmark = pytest.mark.integration

GATEWAY = "http://127.0.0.1:8000"


@pytest.fixture
async def page():
    async with chromium() as browser:
        context = await browser.new_context(locale="zh-CN")
        yield await context.new_page()


async def test_a_leader_signs_in_with_a_real_browser_and_signs_out(page):
    await page.goto(f"{GATEWAY}/auth/login?next=/auth/session")
    assert page.url.startswith(f"{KEYCLOAK}/realms/civicgrid/protocol/openid-connect/auth?")
    await page.fill("#username", "leader.district")
    await page.fill("#password", DEMO_PASSWORD)
    async with one_login_at_a_time("leader.district"):
        await page.click("#kc-login")
        await page.wait_for_url(f"{GATEWAY}/auth/session")
    me = json.loads(await page.inner_text("body"))
    assert me["roles"] == ["leader"] and me["jurisdictions"] == ["320104"]

    [session] = [c for c in await page.context.cookies(GATEWAY) if c["name"] == "civicgrid_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Lax" and session["secure"] is True
    assert "civicgrid_session" not in await page.evaluate("document.cookie")
    assert not [c for c in await page.context.cookies(GATEWAY) if c["name"] == "civicgrid_sign_in"]

    # a script of the console's origin: reads with the cookie, changes only with the CSRF token
    statuses = await page.evaluate("""async (csrf) => {
        const read = await fetch('/api/statistics/v1/kpis/cases');
        const bare = await fetch('/auth/logout', {method: 'POST'});
        const out = await fetch('/auth/logout', {method: 'POST', headers: {'X-CSRF-Token': csrf}});
        const after = await fetch('/auth/session');
        return [read.status, bare.status, out.status, after.status];
    }""", me["csrf_token"])
    assert statuses == [200, 403, 204, 401], statuses
    assert not [c for c in await page.context.cookies(GATEWAY) if c["name"] == "civicgrid_session"]


async def test_a_wrong_password_keeps_the_browser_on_keycloaks_page_without_a_session_until_the_right_one(page):
    await page.goto(f"{GATEWAY}/auth/login")
    # A user no other test signs in as: Keycloak's brute-force protection locks a user out for a
    # minute when a failure and another login of theirs come close together (tests in parallel).
    await page.fill("#username", "gridworker.001")
    await page.fill("#password", "not-the-password")
    async with one_login_at_a_time("gridworker.001"):
        await page.click("#kc-login")
        await page.wait_for_load_state()
    assert page.url.startswith(f"{KEYCLOAK}/realms/civicgrid/")
    # Keycloak's own message beside the field, the field marked invalid for assistive technology
    assert await page.locator("#input-error-username").count() == 1
    assert await page.get_attribute("#username", "aria-invalid") == "true"
    assert not [c for c in await page.context.cookies(GATEWAY) if c["name"] == "civicgrid_session"]
    # the right password on the same page then signs in (and clears Keycloak's count of failures,
    # so that repeated runs never reach its brute-force lockout)
    await page.fill("#password", DEMO_PASSWORD)
    async with one_login_at_a_time("gridworker.001"):
        await page.click("#kc-login")
        await page.wait_for_url(f"{GATEWAY}/")
