"""grid's part of the demo, second scene: a day of Zhang Wei (张伟), grid worker of 户部街北片
(320104001001001), who also helps in the grid next door, 中山东路片 (…002).

- He patrols his grid with the phone's GPS on; one fix is across the road, in the next grid:
  flagged, not refused. The phone's offline queue sends a batch twice: it counts once.
- Where he strayed he finds a broken manhole cover, photographs it (the phone's JPEG carries
  GPS and the phone's make in its EXIF; the stored photo carries none) and reports it
  (信息收集). He reports the day for both grids: all safe (平安) for his own, the incident for
  the other (有事报事，无事报平安).
- The street's grid centre (the street reviewer) creates (立案) and dispatches (派遣) it to urban
  management; the department's system (part 51) takes the task on Kafka and answers with its
  result on its results topic (反馈).
- Zhang checks on site: the cover still rocks: rework (返工). A second result; the check passes
  (核查结案); the centre evaluates it (综合评价).
- A leak between two flats: a dispute filed, mediated to an agreement, settled.
- The civil affairs bureau pushes a survey into the community without access (准入): 403. Market
  regulation's signboards, granted by the district in approval's part (41), are taken.

Every write carries a client id made on the phone, as the app does. grid takes each write's
instant from its own clock: the day reported is today's date in China, or, when today is no
working day there, the most recent working day (the API refuses a report for a rest day).
"""
from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
from datetime import date, datetime, timedelta

from PIL import Image

from civicgrid_common.calendar import CHINA_TZ
from civicgrid_common.identity.tokens import mint_local_token

GRID = os.environ.get("CIVICGRID_DEMO_GRID_URL", "http://127.0.0.1:8003")
STREET, COMMUNITY = "320104001", "320104001001"
G1, G2 = f"{COMMUNITY}001", f"{COMMUNITY}002"  # 户部街北片, 中山东路片
MANHOLE = (32.0366, 118.7851)  # in G2, across the road from G1


def bearer(role: str, jurisdiction, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **claims)}"}


WORKER = bearer("grid_worker", [G1, G2], subject="gw-hbj-01", name="网格员 张伟")
CENTRE = bearer("street_reviewer", STREET, subject="sr-huaihai", name="街道网格中心 李强")
COMMUNITY_STAFF = bearer("community_reviewer", COMMUNITY, subject="cr-huaihai-001", name="社区 王红")
URBAN = bearer("department", "320104", department="urban_management", subject="um-officer-07", name="区城管局 周涛")
CIVIL = bearer("department", "320104", department="civil_affairs", subject="ca-he", name="区民政局 何平")
MARKET = bearer("department", "320104", department="market_regulation", subject="mr-01", name="区市场监管局 孙涛")
WEEKDAYS = "一二三四五六日"


def cid() -> str:
    return str(uuid.uuid4())


async def ok(response, what: str):
    if response.status_code >= 300:
        raise RuntimeError(f"{what}: {response.status_code} {response.text}")
    return response.json() if response.content else None


async def until(fetch, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


def china_time(text: str | None) -> str:
    if not text:
        return "-"
    return datetime.fromisoformat(text).astimezone(CHINA_TZ).strftime("%m-%d %H:%M:%S")


def day_name(d: date) -> str:
    return f"{d.isoformat()} (星期{WEEKDAYS[d.weekday()]})"


# ---------------------------------------------------------------------------- the day reported


async def report_day(ctx) -> date:
    """Today in China if it is a working day (the community's day summary says so), else the
    most recent working day, after showing how the API refuses a report for a rest day."""
    today = datetime.now(CHINA_TZ).date()

    async def working(d: date) -> bool:
        r = await ctx.http.get(f"{GRID}/v1/jurisdictions/{COMMUNITY}/daily-reports/{d}", headers=COMMUNITY_STAFF)
        return (await ok(r, "day summary"))["working_day"]

    if await working(today):
        ctx.say(f"today in China is {day_name(today)}, a working day: the day's reports are due")
        return today
    r = await ctx.http.post(f"{GRID}/v1/grids/{G1}/daily-reports", headers=WORKER,
                            json={"date": today.isoformat(), "all_safe": True, "client_id": cid()})
    problem = r.json()
    ctx.say(f"today in China is {day_name(today)}, no working day: a report for it is refused, {r.status_code} "
            f"{problem.get('code')} at {problem.get('errors', [{}])[0].get('pointer')}: "
            f"{problem.get('errors', [{}])[0].get('detail')}")
    day = today
    for _ in range(30):
        day -= timedelta(days=1)
        if await working(day):
            break
    ctx.say(f"  so the demo reports for the most recent working day, {day_name(day)} (taken, marked late)")
    return day


# ---------------------------------------------------------------------------- the patrol


async def start_patrol(ctx, grid: str, patrol_id: str) -> dict:
    """Start a patrol: the route names the patrol in the body (POST /v1/grids/{grid}/patrols)
    or, in builds before that, in the path (POST /v1/grids/{grid}/patrols/{id})."""
    paths = (await ok(await ctx.http.get(f"{GRID}/openapi.json"), "grid's OpenAPI"))["paths"]
    if "/v1/grids/{grid}/patrols" in paths:
        r = await ctx.http.post(f"{GRID}/v1/grids/{grid}/patrols", headers=WORKER,
                                json={"id": patrol_id, "client_id": cid()})
    else:
        r = await ctx.http.post(f"{GRID}/v1/grids/{grid}/patrols/{patrol_id}", headers=WORKER,
                                json={"client_id": cid()})
    return await ok(r, "start patrol")


async def patrol(ctx) -> str:
    patrol_id = str(uuid.uuid4())
    started = await start_patrol(ctx, G1, patrol_id)
    ctx.say(f"Zhang starts patrol {patrol_id} in {G1} (户部街北片) at {china_time(started['started_at'])}")
    await asyncio.sleep(1.6)  # the fixes below lie between the start and now (the server refuses later ones)
    t0 = datetime.fromisoformat(started["started_at"])
    walk = [(32.0392, 118.7806), (32.0386, 118.7813), (32.0378, 118.7820), (32.0372, 118.7828),
            (32.0372, 118.7840),  # across 户部街, in 中山东路片: where he sees the manhole cover
            (32.0365, 118.7829)]
    fixes = [{"lat": lat, "lon": lon, "at": (t0 + timedelta(seconds=0.25 * (i + 1))).isoformat()}
             for i, (lat, lon) in enumerate(walk)]
    batch = {"client_id": cid(), "points": fixes[:5]}
    first = await ok(await ctx.http.post(f"{GRID}/v1/patrols/{patrol_id}/track", headers=WORKER, json=batch), "track")
    again = await ok(await ctx.http.post(f"{GRID}/v1/patrols/{patrol_id}/track", headers=WORKER, json=batch), "track")
    ctx.say(f"  GPS batch of {len(batch['points'])} fixes: {first['points']} points, {first['points_outside']} outside "
            f"the grid (flagged, not refused); the phone's queue sent it again: recorded={again['recorded']}, "
            f"still {again['points']} points")
    ended = await ok(await ctx.http.post(f"{GRID}/v1/patrols/{patrol_id}/end", headers=WORKER,
                                         json={"client_id": cid(), "points": fixes[5:]}), "end patrol")
    ctx.say(f"  patrol ended at {china_time(ended['ended_at'])}: {ended['points']} points, "
            f"{ended['points_outside']} outside {G1} (the fix at 32.0372N 118.7840E)")
    return patrol_id


# ---------------------------------------------------------------------------- the photo


def phone_jpeg() -> bytes:
    """What the phone's camera writes: a JPEG whose EXIF names the phone and where it was."""
    image = Image.new("RGB", (160, 120), (120, 110, 100))
    for x in range(40, 120):
        for y in range(30, 90):
            if (x - 80) ** 2 / 1600 + (y - 60) ** 2 / 900 <= 1:
                image.putpixel((x, y), (30, 30, 30))  # the hole where the cover sank
    exif = Image.Exif()
    exif[0x010F] = "DemoPhone"  # Make
    exif[0x0110] = "GW-Pro 5"  # Model
    exif[0x0132] = datetime.now(CHINA_TZ).strftime("%Y:%m:%d %H:%M:%S")  # DateTime
    exif[0x8825] = {1: "N", 2: (32.0, 2.0, 11.76), 3: "E", 4: (118.0, 47.0, 6.36)}  # GPSInfo: 32.0366N 118.7851E
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def exif_summary(content: bytes) -> str:
    exif = Image.open(io.BytesIO(content)).getexif()
    if not exif:
        return "no EXIF at all"
    gps = exif.get_ifd(0x8825)
    parts = [f"Make={exif.get(0x010F)}", f"Model={exif.get(0x0110)}"]
    if gps:
        lat = sum(float(v) / 60 ** i for i, v in enumerate(gps[2]))
        lon = sum(float(v) / 60 ** i for i, v in enumerate(gps[4]))
        parts.append(f"GPS {lat:.4f}{gps[1]} {lon:.4f}{gps[3]}")
    return "EXIF " + ", ".join(parts)


async def photo(ctx) -> str:
    original = phone_jpeg()
    r = await ctx.http.post(f"{GRID}/v1/grids/{G2}/photos", content=original,
                            headers={**WORKER, "Content-Type": "image/jpeg"})
    stored = await ok(r, "upload photo")
    back = await ctx.http.get(f"{GRID}/v1/photos/{stored['sha256']}", headers=WORKER)
    back.raise_for_status()
    ctx.say(f"  photo from the phone: {len(original)} bytes, {exif_summary(original)}")
    ctx.say(f"  stored as {stored['sha256'][:16]}… ({stored['media_type']}, {stored['width']}x{stored['height']}, "
            f"{stored['size']} bytes): {exif_summary(back.content)}")
    return stored["sha256"]


# ---------------------------------------------------------------------------- the closed loop


async def incident_state(ctx, incident: str) -> dict:
    return await ok(await ctx.http.get(f"{GRID}/v1/incidents/{incident}", headers=WORKER), "GET incident")


async def closed_loop(ctx, photo_id: str) -> str:
    http = ctx.http
    report = {"client_id": cid(), "source": "patrol", "classification": {"kind": "part", "major": "01", "minor": "01"},
              "location": {"lat": MANHOLE[0], "lon": MANHOLE[1]}, "photos": [photo_id],
              "description": "中山东路片 12 号楼前井盖破损下沉，边缘翘起，行人易绊倒"}
    first = await ok(await http.post(f"{GRID}/v1/incidents", headers=WORKER, json=report), "report incident")
    again = await ok(await http.post(f"{GRID}/v1/incidents", headers=WORKER, json=report), "report incident")
    incident = first["id"]
    ctx.say(f"Zhang reports the broken manhole cover (part 01-01): incident {incident}, filed in grid {first['grid']} "
            f"(where the point lies), {first['state']}; sent again by the queue: same id, recorded={again['recorded']}")

    created = await ok(await http.post(f"{GRID}/v1/incidents/{incident}/create", headers=CENTRE, json={}), "create")
    i = await incident_state(ctx, incident)
    c = i["classification"]
    ctx.say(f"  the street's grid centre creates it (立案): {created['state']}, class {c['name_zh']} "
            f"({c['name_en']}), for {c['department']}, limit {c['limit']}")
    dispatched = await ok(await http.post(f"{GRID}/v1/incidents/{incident}/dispatch", headers=CENTRE, json={
        "handler": {"kind": "department", "code": "urban_management"}, "note": "请尽快更换，注意夜间警示"}),
        "dispatch")
    i = await incident_state(ctx, incident)
    ctx.say(f"  dispatched (派遣) to urban management: {dispatched['state']}, handling due "
            f"{china_time(i['handling_due'])} China time")
    r = await http.get(f"{GRID}/v1/incidents/{incident}", headers=CIVIL)
    ctx.say(f"  the civil affairs bureau asks for it: {r.status_code} (a department sees only what is dispatched to it)")

    async def fed_back():
        s = await incident_state(ctx, incident)
        return s if s["state"] == "fed_back" else None

    await until(fed_back, "the urban management system's result")
    ctx.say("  grid took the system's result from Kafka as the handler's feedback (反馈): fed_back")

    rework = await ok(await http.post(f"{GRID}/v1/incidents/{incident}/verify", headers=WORKER, json={
        "passed": False, "note": "井盖仍松动，踩上去有响声，需加固井座", "client_id": cid()}), "verify")
    i = await incident_state(ctx, incident)
    ctx.say(f"Zhang checks on site (核查): the new cover still rocks: rework (返工) → {rework['state']}, "
            f"rework count {i['rework_count']}; the handling limit keeps running")

    system = ctx.facts.get("urban_management_system", (None, None))[0]
    tasks_before = len(system.tasks) if system else 0
    try:
        await until(fed_back, "a rework task and its result", timeout=20)
        ctx.say(f"  grid issued the rework task on Kafka (rework {system.tasks[-1].get('rework')}, with the check's "
                "note) and the system's second result came back: fed_back"
                if system and len(system.tasks) > tasks_before else "  a second result came back: fed_back")
    except RuntimeError:
        ctx.say("  grid put no rework task on the department's topic (this build issues a task on dispatch only), so "
                "urban management's officer feeds back through the API:")
        await ok(await http.post(f"{GRID}/v1/incidents/{incident}/feedback", headers=URBAN, json={
            "result": "已重新加固井座并更换防沉降井盖 (frame re-set and bolted)", "client_id": cid()}), "feedback")
        ctx.say(f"    POST /v1/incidents/{incident[:8]}…/feedback: {(await incident_state(ctx, incident))['state']}")

    closed = await ok(await http.post(f"{GRID}/v1/incidents/{incident}/verify", headers=WORKER, json={
        "passed": True, "note": "井盖平稳，路面恢复", "client_id": cid()}), "verify")
    evaluated = await ok(await http.post(f"{GRID}/v1/incidents/{incident}/evaluate", headers=CENTRE, json={
        "level": "good", "note": "返工后处置到位"}), "evaluate")
    i = await incident_state(ctx, incident)
    ctx.say(f"  checked again: passed → {closed['state']} (核查结案), closed on time: {i['closed_on_time']}; the centre "
            f"evaluates it: {evaluated['state']} ({i['evaluation']})")
    ctx.say(f"  its loop: reported {china_time(i['reported_at'])}, created {china_time(i['created_at'])}, "
            f"dispatched {china_time(i['dispatched_at'])}, last feedback {china_time(i['fed_back_at'])}, "
            f"closed {china_time(i['closed_at'])}; {i['rework_count']} rework")
    return incident


# ---------------------------------------------------------------------------- daily reports


async def daily_reports(ctx, day: date, patrol_id: str, incident: str) -> None:
    for grid, body, what in (
        (G1, {"all_safe": True, "patrol_id": patrol_id}, "all safe (平安)"),
        (G2, {"all_safe": False, "incidents": [incident]}, "one incident found"),
    ):
        # One report a grid and day: the client id is the day's, so a second run of the demo on
        # the same day sends the phone's same report again, and it is recorded once.
        body = {**body, "date": day.isoformat(), "client_id": f"demo-report-{grid}-{day.isoformat()}"}
        r = await ctx.http.post(f"{GRID}/v1/grids/{grid}/daily-reports", headers=WORKER, json=body)
        report = await ok(r, f"daily report {grid}")
        if report["recorded"]:
            ctx.say(f"  daily report for {grid} on {day}: {what}" + (" (late)" if report["late"] else ""))
        else:
            ctx.say(f"  daily report for {grid} on {day}: already recorded by an earlier run today "
                    f"(all_safe={report['all_safe']}, submitted {china_time(report['submitted_at'])}): recorded once")


# ---------------------------------------------------------------------------- dispute, department work


async def dispute(ctx) -> None:
    http = ctx.http
    filed = await ok(await http.post(f"{GRID}/v1/grids/{G1}/disputes", headers=WORKER, json={
        "client_id": cid(), "nature": "neighbourhood", "urgency": "general", "parties": 2,
        "summary": "7 栋 502 卫生间漏水至 402，两户就维修和赔偿发生争执"}), "file dispute")
    ctx.say(f"a dispute in {G1}: {filed['id']} filed ({filed['state']})")
    mediated = await ok(await http.post(f"{GRID}/v1/disputes/{filed['id']}/mediate", headers=WORKER, json={
        "mediator": "med-hbj-01", "outcome": "agreed", "client_id": cid(),
        "note": "物业出具漏水检测报告，502 承担防水维修和 402 吊顶修复费用，双方签订调解协议"}), "mediate")
    ctx.say(f"  mediated by the community's people's mediator (人民调解员): outcome agreed → {mediated['state']}")
    settled = await ok(await http.post(f"{GRID}/v1/disputes/{filed['id']}/settle", headers=WORKER, json={
        "note": "维修完成，双方确认", "client_id": cid()}), "settle")
    d = await ok(await http.get(f"{GRID}/v1/disputes/{filed['id']}", headers=WORKER), "GET dispute")
    ctx.say(f"  settled (调解成功): {settled['state']}, {len(d['mediations'])} mediation(s)")


async def department_work(ctx) -> None:
    http = ctx.http
    r = await http.post(f"{GRID}/v1/communities/{COMMUNITY}/department-work", headers=CIVIL, json={
        "work_kind": "survey", "title": "辖区出租房屋情况调查表（请社区三日内报送）", "client_id": cid()})
    if r.status_code != 403:
        raise RuntimeError(f"work pushed without access should be refused: {r.status_code} {r.text}")
    ctx.say(f"the civil affairs bureau pushes a survey into {COMMUNITY} without access (准入): {r.status_code} "
            f"{r.json().get('code')}: {r.json().get('detail')}")
    r = await http.post(f"{GRID}/v1/communities/{COMMUNITY}/department-work", headers=MARKET, json={
        "work_kind": "signboard", "title": "食品安全宣传牌进社区", "client_id": cid()})
    if r.status_code == 201:
        ctx.say(f"  market regulation's signboards, under the access the district granted in approval's part: "
                f"accepted, grant {r.json()['grant']}")
    else:
        ctx.say(f"  market regulation's signboards: {r.status_code} {r.json().get('code')} (grid has no grant of "
                "approval's part in force for it: was part 41's access decision consumed?)")


async def run(ctx) -> None:
    day = await report_day(ctx)
    patrol_id = await patrol(ctx)
    photo_id = await photo(ctx)
    incident = await closed_loop(ctx, photo_id)
    ctx.say(f"Zhang sends the day's reports for {day}:")
    await daily_reports(ctx, day, patrol_id, incident)
    await dispute(ctx)
    await department_work(ctx)
    ctx.facts["grid_day"] = {"day": day, "incident": incident, "patrol": patrol_id}
