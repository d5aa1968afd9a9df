"""statistics' part of the demo: the district leader's dashboard after the day's work.

The figures are rebuilt from the events the earlier parts put on Kafka (intake's cases and
complaints, approval's moves). The faust workers take a moment to turn the last events into
facts, so the part waits until the counts stop moving, then shows what a leader's pie and bar
charts are drawn from: the share of each affair, the counts of the window's day, the three
rates of complaint handling and the reviewers' workload. The stack keeps every earlier run's
events, so a second run says how much of what it shows is its own.
"""
from __future__ import annotations

import asyncio
import os

from civicgrid_common.identity.tokens import mint_local_token

STATISTICS = os.environ.get("CIVICGRID_DEMO_STATISTICS_URL", "http://127.0.0.1:8005")
DISTRICT = "320104"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


async def run(ctx) -> None:
    leader = {"Authorization": f"Bearer {mint_local_token('leader', DISTRICT)}"}

    async def kpi(name: str, **params: str) -> dict:
        r = await ctx.http.get(f"{STATISTICS}/v1/kpis/{name}", params={"jurisdiction": DISTRICT, **params},
                               headers=leader)
        r.raise_for_status()
        return r.json()

    # Wait until two readings a few seconds apart agree (the workers have caught up).
    previous = None
    for _ in range(30):
        now = (await kpi("cases"))["totals"], (await kpi("complaints"))["totals"]
        if now == previous:
            break
        previous = now
        await asyncio.sleep(3)
    cases, complaints = previous

    # The stack keeps every earlier run of the demo: this run's figures are the difference.
    before = (await kpi("cases", as_of=ctx.started_at.isoformat()))["totals"]
    before_complaints = (await kpi("complaints", as_of=ctx.started_at.isoformat()))["totals"]
    if before["registered"] or before_complaints["received"]:
        ctx.say(f"this run: {cases['registered'] - before['registered']} cases registered, "
                f"{complaints['received'] - before_complaints['received']} complaints received; the figures below "
                f"also hold the {before['registered']} cases and {before_complaints['received']} complaints of "
                "earlier runs on this stack (make clean starts afresh)")
    ctx.say(f"cases in district {DISTRICT}: {cases['registered']} registered, {cases['accepted']} accepted, "
            f"{cases['refused']} refused, {cases['completed']} completed ({_pct(cases['on_time_rate'])} on time), "
            f"{cases['green_channelled']} on the green channel")
    ctx.say(f"approval moves: {cases['supplement_requested']} supplements asked, {cases['extended']} extended, "
            f"{cases['sent_back']} sent back, {cases['returned']} returned")
    shares = (await kpi("cases", group_by="affair"))["chart"]
    top = sorted(zip(shares["labels"], shares["values"], shares["shares"]), key=lambda x: -x[1])[:5]
    ctx.say("share of each affair (pie): " + ", ".join(f"{label} {value} ({share:.0%})" for label, value, share in top))
    ctx.say(f"complaints: {complaints['received']} received; response rate {_pct(complaints['response_rate'])}, "
            f"resolution rate {_pct(complaints['resolution_rate'])}, "
            f"satisfaction rate {_pct(complaints['satisfaction_rate'])}")
    workload = await kpi("workload")
    ctx.say(f"workload: {len(workload.get('groups', []))} staff members (clerks and reviewers) have acted")
    csv = await ctx.http.get(f"{STATISTICS}/v1/kpis/complaints",
                             params={"jurisdiction": DISTRICT, "group_by": "category", "format": "csv"}, headers=leader)
    csv.raise_for_status()
    ctx.say(f"the same by category as CSV for a spreadsheet: {len(csv.text.splitlines()) - 1} lines")
