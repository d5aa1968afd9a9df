"""grid's part of the demo, third scene: the community's day of reports (GET
/v1/jurisdictions/{code}/daily-reports/{date}): which grids reported, which are missing, the
coverage; then the street's.

The grids still missing are flagged by grid itself: at CIVICGRID_REPORT_CHECK_HOUR (17:00
China time unless the grid process was started with another hour) of each working day its
durable timer raises `civicgrid.grid.daily_report.missing.v1` on civicgrid.grid.reports, once
per grid and day; a report sent after it is still taken, marked late. The demo does not wait
for it: it says when it comes. After the hour it shows the flags the summary carries and the
events on the topic; on a fresh stack the day's check ran before part 50 drew the grids (a
first start after the hour), so the district's admin runs today's check again first, as after
drawing grids late.
"""
from __future__ import annotations

import asyncio
import os
from datetime import date, datetime, time

from aiokafka import AIOKafkaConsumer, TopicPartition

from civicgrid_common.calendar import CHINA_TZ
from civicgrid_common.cloudevents import from_kafka_message
from civicgrid_common.identity.tokens import mint_local_token

GRID = os.environ.get("CIVICGRID_DEMO_GRID_URL", "http://127.0.0.1:8003")
STREET, COMMUNITY = "320104001", "320104001001"
REPORTS_TOPIC = "civicgrid.grid.reports"
MISSING = "civicgrid.grid.daily_report.missing.v1"
CHECK_HOUR = int(os.environ.get("CIVICGRID_REPORT_CHECK_HOUR", "17"))  # what `make up` hands the grid process
STAFF = {"Authorization": f"Bearer {mint_local_token('community_reviewer', COMMUNITY, subject='cr-huaihai-001')}"}
LEADER = {"Authorization": f"Bearer {mint_local_token('leader', STREET, subject='ld-huaihai')}"}
ADMIN = {"Authorization": f"Bearer {mint_local_token('admin', '320104', subject='admin-qinhuai')}"}
CENTRE = {"Authorization": f"Bearer {mint_local_token('street_reviewer', STREET, subject='sr-huaihai')}"}


def china_time(text: str | None) -> str:
    return datetime.fromisoformat(text).astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if text else "-"


async def summary(ctx, code: str, day: date, headers: dict) -> dict:
    r = await ctx.http.get(f"{GRID}/v1/jurisdictions/{code}/daily-reports/{day}", headers=headers)
    if r.status_code != 200:
        raise RuntimeError(f"day summary {code}/{day}: {r.status_code} {r.text}")
    return r.json()


async def missing_events(ctx, day: date, prefix: str) -> list[dict]:
    """The daily_report.missing events of `day` for grids under `prefix`, read off the topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: list[dict] = []
    try:
        parts = [TopicPartition(REPORTS_TOPIC, p) for p in sorted(consumer.partitions_for_topic(REPORTS_TOPIC)
                                                                  or await _partitions(consumer))]
        if not parts:
            return []
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        await consumer.seek_to_beginning(*parts)
        while [p for p in parts if await consumer.position(p) < ends[p]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    event = from_kafka_message(r.headers, r.key, r.value)
                    d = event.data or {}
                    if event.type == MISSING and d.get("date") == day.isoformat() and d.get("grid", "").startswith(prefix):
                        found.append(d)
            if not batch:
                break
    finally:
        await consumer.stop()
    return found


async def _partitions(consumer: AIOKafkaConsumer) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call for it
    return consumer.partitions_for_topic(REPORTS_TOPIC) or set()


async def run(ctx) -> None:
    day = ctx.facts.get("grid_day", {}).get("day") or datetime.now(CHINA_TZ).date()
    s = await summary(ctx, COMMUNITY, day, STAFF)
    coverage = "-" if s["coverage"] is None else f"{s['coverage']:.0%}"
    ctx.say(f"community {COMMUNITY} on {day}: {s['reported']} of {s['grids']} grids reported (coverage {coverage})")
    for g in s["by_grid"]:
        if g["reported"]:
            state = "reported, " + ("all safe" if g["all_safe"] else "incidents found") + (" (late)" if g["late"] else "")
        elif g["missing_at"]:
            state = f"MISSING, flagged at {china_time(g['missing_at'])}"
        else:
            state = "not yet reported"
        ctx.say(f"    {g['grid']}  {state}")
    ctx.say(f"  missing: {', '.join(s['missing']) or 'none'}")

    street = await summary(ctx, STREET, day, LEADER)
    ctx.say(f"street {STREET} on {day}: {street['reported']} of {street['grids']} grids reported, "
            f"{len(street['missing'])} missing")

    r = await ctx.http.get(f"{GRID}/v1/incidents", params={"state": "reported", "limit": 200}, headers=CENTRE)
    waiting = r.json()["items"] if r.status_code == 200 else []
    if waiting:
        sources = sorted({i["source"] for i in waiting})
        ctx.say(f"  waiting for the street's grid centre to create them (立案): {len(waiting)} incident(s) in the street's "
                f"grids ({', '.join(sources)}; a resident's complaint to intake with a location in a grid becomes one), "
                "e.g. " + ", ".join(f"{i['classification']} in {i['grid']}" for i in waiting[:3]))

    flagged = [g for g in street["by_grid"] if g["missing_at"]]
    now = datetime.now(CHINA_TZ)
    check = datetime.combine(day, time(CHECK_HOUR), tzinfo=CHINA_TZ)
    if not flagged and street["missing"] and now >= check and day == now.date():
        # On a fresh stack the day's check ran when the grid process started (after its hour),
        # before part 50 drew the street's grids: it saw none. The district's admin runs it again,
        # as after drawing grids late or importing a registry on go-live day.
        r = await ctx.http.post(f"{GRID}/v1/jurisdictions/{STREET}/daily-reports/{day}/check", headers=ADMIN)
        if r.status_code != 200:
            raise RuntimeError(f"today's check run again: {r.status_code} {r.text}")
        ran = r.json()
        ctx.say(f"  today's {CHECK_HOUR:02d}:00 check ran before the street's grids were drawn; the district's admin "
                f"runs it again (POST /v1/jurisdictions/{STREET}/daily-reports/{day}/check): "
                f"{len(ran['flagged'])} grid(s) flagged at {china_time(ran['checked_at'])}")
        street = await summary(ctx, STREET, day, LEADER)
        flagged = [g for g in street["by_grid"] if g["missing_at"]]
    if flagged:
        events = await missing_events(ctx, day, STREET)
        for _ in range(20):  # the relay publishes within a moment of the commit
            if len(events) >= len(flagged):
                break
            await asyncio.sleep(0.5)
            events = await missing_events(ctx, day, STREET)
        ctx.say(f"  the check has run for {day}: {len(flagged)} grid(s) of the street flagged; "
                f"{len(events)} {MISSING} event(s) on {REPORTS_TOPIC}, e.g. "
                + ", ".join(f"{e['grid']} at {china_time(e['at'])}" for e in events[:3]))
        # Its worker's phone was offline: the report comes after the flag, and is taken, marked late.
        grid = flagged[-1]["grid"]
        worker = {"Authorization": f"Bearer {mint_local_token('grid_worker', grid, subject='gw-late-01')}"}
        r = await ctx.http.post(f"{GRID}/v1/grids/{grid}/daily-reports", headers=worker,
                                json={"date": day.isoformat(), "all_safe": True, "client_id": f"late-{grid}-{day}"})
        if r.status_code != 201:
            raise RuntimeError(f"late report for {grid}: {r.status_code} {r.text}")
        ctx.say(f"  {grid}'s worker reports after the flag: taken, late={r.json()['late']}")
    elif s["missing"] and now < check:
        ctx.say(f"  at {check:%Y-%m-%d %H:%M} China time (CIVICGRID_REPORT_CHECK_HOUR={CHECK_HOUR}, in "
                f"{(check - now).seconds // 3600} h {(check - now).seconds % 3600 // 60} min) grid's durable timer "
                f"raises {MISSING} for each grid still missing, once per grid and day; a report sent after it is "
                "taken, marked late")
