"""grid's figures on the leaders' dashboard: statistics' GET /v1/kpis/grid for Huaihai Road
street, today (China date), if the statistics service serves it (its OpenAPI document says so);
otherwise the demo says that it does not yet.

statistics rebuilds the figures from grid's events on Kafka (incidents, reports, disputes,
community work); its workers take a moment, so the part waits until two readings agree. The
stack keeps earlier runs, so the part says how much is this run's (as of the run's start).
"""
from __future__ import annotations

import asyncio
import os
from datetime import datetime

from civicgrid_common.calendar import CHINA_TZ
from civicgrid_common.identity.tokens import mint_local_token

STATISTICS = os.environ.get("CIVICGRID_DEMO_STATISTICS_URL", "http://127.0.0.1:8005")
STREET = "320104001"
LEADER = {"Authorization": f"Bearer {mint_local_token('leader', '320104', subject='ld-qinhuai')}"}


def pct(value) -> str:
    return "-" if value is None else f"{value:.0%}"


def minutes(value) -> str:
    return "-" if value is None else f"{value:.1f} min"


async def run(ctx) -> None:
    try:
        r = await ctx.http.get(f"{STATISTICS}/openapi.json")
        paths = r.json().get("paths", {}) if r.status_code == 200 else {}
    except Exception as exc:  # noqa: BLE001 - any failure means: not served
        ctx.say(f"statistics is not reachable on {STATISTICS} ({type(exc).__name__}): no grid figures")
        return
    if "/v1/kpis/grid" not in paths:
        ctx.say("statistics does not serve the grid's figures yet (no GET /v1/kpis/grid in its OpenAPI document)")
        return
    day = ctx.facts.get("grid_day", {}).get("day") or datetime.now(CHINA_TZ).date()
    params = {"jurisdiction": STREET, "from": day.isoformat(), "to": day.isoformat()}

    async def figures(**extra) -> dict:
        r = await ctx.http.get(f"{STATISTICS}/v1/kpis/grid", params={**params, **extra}, headers=LEADER)
        if r.status_code != 200:
            raise RuntimeError(f"GET /v1/kpis/grid: {r.status_code} {r.text}")
        return r.json()["totals"]

    previous = None
    try:
        for tries in range(30):
            now = await figures()
            if previous is not None and now == previous and (now["incidents_reported"] or tries >= 8):
                break
            previous = now
            await asyncio.sleep(3)
    except RuntimeError as exc:  # statistics' grid figures are another engineer's work in progress
        ctx.say(f"statistics lists GET /v1/kpis/grid but answered: {str(exc)[:300]}")
        return
    t = previous
    before = await figures(as_of=ctx.started_at.isoformat())
    ctx.say(f"statistics' grid figures for street {STREET} on {day} (GET /v1/kpis/grid):")
    if before["incidents_reported"] or before["disputes_filed"]:
        ctx.say(f"  (this run: {t['incidents_reported'] - before['incidents_reported']} incident(s), "
                f"{t['disputes_filed'] - before['disputes_filed']} dispute(s); the rest are earlier runs' today)")
    ctx.say(f"  incidents: {t['incidents_reported']} reported, {t['incidents_dispatched']} dispatched, "
            f"{t['incidents_closed']} closed ({t['incidents_closed_on_time']} on time of {t['incidents_due']} due), "
            f"{t['reworks']} rework(s); closure rate {pct(t['closure_rate'])}, on-time closure rate "
            f"{pct(t['on_time_closure_rate'])}, rework rate {pct(t['rework_rate'])}")
    ctx.say(f"  times: to create {minutes(t['minutes_to_create_median'])}, to dispatch "
            f"{minutes(t['minutes_to_dispatch_median'])}, to handle {minutes(t['minutes_to_handle_median'])}, "
            f"to verify {minutes(t['minutes_to_verify_median'])} (medians)")
    ctx.say(f"  daily reports: {t['reports_submitted']} submitted of {t['reports_expected']} expected "
            f"({t['reports_missing']} flagged missing; a grid counts as expected once it reported or the check named "
            f"it), coverage {pct(t['report_coverage'])}")
    ctx.say(f"  disputes: {t['disputes_filed']} filed, {t['disputes_mediated']} mediated, {t['disputes_settled']} "
            f"settled: mediation rate {pct(t['mediation_rate'])}, success rate {pct(t['mediation_success_rate'])}")
    ctx.say(f"  department work: {t['community_work_refused']} refused by the access system, "
            f"{t['community_work_accepted']} accepted")
