"""The leader's dashboard (领导驾驶舱) in a real browser on the running stack: the district's
leader reads the cases accepted in the district; a clerk accepts a new case at the window
(through the API, with a script token); statistics takes it from intake's events and, on
refresh, the figure shown has moved up. Clicking the street's bar drills down to its
communities: the breadcrumb, the address and the units shown change, and the breadcrumb leads
back to the district."""
from __future__ import annotations

import re

import httpx
import pytest
from console_screens import figure_moved_up, shown_figure
from console_browser import GATEWAY, assert_accessible, keep_screenshot, signed_in_page
from intake_cases import accepted_case
from playwright.async_api import expect

from civicgrid_common.identity.tokens import mint_local_token

pytestmark = pytest.mark.integration

DISTRICT, STREET, COMMUNITY = "320104", "320104001", "320104001001"


def bearer(role: str, jurisdiction: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction)}"}


async def test_the_district_figure_moves_up_with_a_new_case_and_drills_down_to_a_street():
    async with signed_in_page("leader.district", next_path="/dashboard") as page:
        await expect(page.locator("[data-test=kpi-accepted] .value")).to_have_text(re.compile(r"^[0-9,]+$"),
                                                                                  timeout=30_000)
        await expect(page.locator(f"[data-test=crumb-{DISTRICT}]")).to_have_attribute("aria-current", "page")
        accepted_before = await shown_figure(page, "accepted")
        registered_before = await shown_figure(page, "registered")

        async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/intake", timeout=30) as intake:
            await accepted_case(intake, bearer("window_clerk", STREET), COMMUNITY)

        # statistics consumes intake's events: the figure moves up within a bound, on refresh
        await figure_moved_up(page, "accepted", accepted_before)
        assert await shown_figure(page, "registered") > registered_before

        # the street is one of the bars (and rows) of the district's on-time chart
        on_time = page.locator("[data-test=table-on-time]")
        await on_time.locator("summary").click()
        rows = on_time.locator("tbody th")
        names = [n.strip() for n in await rows.all_inner_texts()]
        assert any(STREET in n for n in names), names
        assert not any(COMMUNITY in n for n in names), names
        await keep_screenshot(page, "leader-dashboard")
        await assert_accessible(page)

        # a click on the street's bar: its band in the chart (bars left to right as the rows)
        index = next(i for i, n in enumerate(names) if STREET in n)
        chart = page.locator("[data-test=chart-on-time] .chart")
        box = await chart.bounding_box()
        assert box is not None
        plot_left, plot_right = box["x"] + 48, box["x"] + box["width"] - 8
        x = plot_left + (plot_right - plot_left) * (index + 0.5) / len(names)
        await page.mouse.click(x, box["y"] + box["height"] * 0.6)

        await expect(page).to_have_url(re.compile(rf"/dashboard\?j={STREET}$"))
        await expect(page.locator(f"[data-test=crumb-{STREET}]")).to_have_attribute("aria-current", "page")
        await expect(page.locator(f"[data-test=crumb-{DISTRICT}]")).to_have_attribute("href", "#")
        await expect(page.locator("[data-test=dashboard]")).to_have_attribute("aria-busy", "false", timeout=30_000)
        await expect(page.locator("#kpi-h")).to_contain_text(STREET)
        on_time = page.locator("[data-test=table-on-time]")
        await on_time.locator("summary").click()
        await expect(on_time.locator("tbody th").filter(has_text=COMMUNITY)).to_have_count(1)
        await expect(on_time.locator("tbody th").filter(has_text=re.compile(rf"{STREET}$"))).to_have_count(0)
        # (other tests add cases meanwhile: the street's figure is not compared with the district's)
        assert await shown_figure(page, "accepted") > 0
        await assert_accessible(page)

        # back up by the breadcrumb
        await page.click(f"[data-test=crumb-{DISTRICT}]")
        await expect(page).to_have_url(f"{GATEWAY}/dashboard")
        await expect(page.locator(f"[data-test=crumb-{DISTRICT}]")).to_have_attribute("aria-current", "page")
        await expect(page.locator(f"[data-test=crumb-{STREET}]")).to_have_count(0)
