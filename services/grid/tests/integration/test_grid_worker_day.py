"""A grid worker's day over HTTP on a fresh database: the registry drawn, a patrol with a track
that strays, an all-safe report, an incident reported with a photo, created, dispatched to urban
management (its task on the department's topic), reworked once, fed back by the department's
system, verified and closed; a dispute mediated; the daily check flags the grid that forgot to
report, once; department work refused without access and taken with it. Replayed phone writes
record nothing twice; bad input is problem+json naming the field and changes nothing."""
from __future__ import annotations

import io
import json
import uuid

import pytest
from PIL import Image

from civicgrid_common.cloudevents import CloudEvent, dataschema_for
from civicgrid_common.settings import PlatformSettings

from civicgrid_grid.entrypoints.consumers import RejectedResult, access_handler, department_results_handler

from grid_builders import COMMUNITY, EAST, NORTH, SOUTH, WEST, box, china, grid_data

G1, G2, G3 = (f"{COMMUNITY}{n:03d}" for n in (1, 2, 3))
MID = (WEST + EAST) / 2
RESULT = "civicgrid.department.urban_management.incident_handled.v1"
ACCESS = "civicgrid.approval.access.decided.v1"
BASE = PlatformSettings().schema_base_url


@pytest.fixture
def people(token):
    return {
        "admin": token("admin", "320104", subject="admin-1"),
        "worker": token("grid_worker", [G1, G2], subject="gw-zhang", name="张网格"),
        "worker3": token("grid_worker", G3, subject="gw-liu"),
        "centre": token("street_reviewer", "320104001", subject="sr-li"),
        "urban": token("department", "320104", department="urban_management", subject="um-wu"),
        "civil": token("department", "320104", department="civil_affairs", subject="ca-he"),
        "leader": token("leader", "320104", subject="ld-chen"),
    }


async def draw(api, people) -> None:
    r = await api.put(f"/v1/communities/{COMMUNITY}/boundary", headers=people["admin"],
                      json={"polygon": box(WEST, SOUTH, EAST, NORTH)})
    assert r.status_code == 204, r.text
    for n, (w, e), households in ((1, (WEST, MID), 300), (2, (MID, EAST), 620)):
        r = await api.post(f"/v1/communities/{COMMUNITY}/grids", headers=people["admin"],
                           json=grid_data(n, box(w, SOUTH, e, (SOUTH + NORTH) / 2), households=households))
        assert r.status_code == 201, r.text
    r = await api.post(f"/v1/communities/{COMMUNITY}/grids", headers=people["admin"],
                       json=grid_data(3, box(WEST, (SOUTH + NORTH) / 2, EAST, NORTH)))
    assert r.status_code == 201, r.text
    r = await api.put(f"/v1/grids/{G1}/workers", headers=people["admin"],
                      json={"workers": ["gw-zhang", "gw-wang"], "lead": "gw-zhang"})
    assert r.status_code == 204, r.text


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (32.0, 1.0, 48.0)}  # GPSInfo
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def events(pool, type_suffix: str) -> list[dict]:
    rows = await pool.fetch("SELECT data FROM events WHERE type LIKE '%' || $1 ORDER BY position", type_suffix)
    return [r["data"] if isinstance(r["data"], dict) else json.loads(r["data"]) for r in rows]


async def test_a_grid_workers_day_through_the_closed_loop(api, grid_app, people, pool, clock):
    await draw(api, people)
    g2 = (await api.get(f"/v1/grids/{G2}", headers=people["admin"])).json()
    assert g2["households"] == 620 and g2["active"]
    warned = await events(pool, "registry.grid_defined.v1")
    assert [w["code"] for w in warned[1]["warnings"]] == ["households_outside_norm"] and warned[0]["warnings"] == []
    assert (await api.get(f"/v1/grids/{G1}", headers=people["admin"])).json()["workers"] == ["gw-zhang", "gw-wang"]

    # Locate: inside a grid, outside every grid.
    r = await api.get("/v1/grids/locate", params={"lat": 32.025, "lon": 118.785}, headers=people["worker"])
    assert r.status_code == 200 and r.json() == {"grid": G1, "community": str(COMMUNITY)}
    r = await api.get("/v1/grids/locate", params={"lat": 32.1, "lon": 118.9}, headers=people["worker"])
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")

    # A patrol: one point across the street, flagged not refused; the batch sent twice counts once.
    patrol = str(uuid.uuid4())
    r = await api.post(f"/v1/grids/{G1}/patrols", headers=people["worker"],
                       json={"id": patrol, "client_id": "p-start"})
    assert r.status_code == 201, r.text
    track = {"client_id": "p-batch-1", "points": [
        {"lat": 32.025, "lon": 118.785, "at": clock.now.isoformat()},
        {"lat": 32.025, "lon": 118.795, "at": clock.now.isoformat()}]}
    clock.advance(minutes=20)
    for _ in range(2):
        r = await api.post(f"/v1/patrols/{patrol}/track", headers=people["worker"], json=track)
        assert r.status_code == 200, r.text
    assert r.json()["points"] == 2 and r.json()["points_outside"] == 1 and r.json()["recorded"] is False
    clock.advance(minutes=20)
    r = await api.post(f"/v1/patrols/{patrol}/end", headers=people["worker"], json={"client_id": "p-end"})
    assert r.status_code == 200 and r.json()["ended_at"] is not None

    # The day's report for G1: all safe, sent twice (an offline queue replayed), recorded once.
    day = "2026-03-02"
    for recorded in (True, False):
        r = await api.post(f"/v1/grids/{G1}/daily-reports", headers=people["worker"],
                           json={"date": day, "all_safe": True, "client_id": "r-g1-0302", "patrol_id": patrol})
        assert r.status_code == 201 and r.json()["recorded"] is recorded, r.text
    assert len(await events(pool, "daily_report.submitted.v1")) == 1

    # A photo with GPS in its EXIF: stored stripped, named by the hash of what is stored.
    r = await api.post(f"/v1/grids/{G2}/photos", headers={**people["worker"], "Content-Type": "image/jpeg"},
                       content=jpeg_with_gps())
    assert r.status_code == 201, r.text
    photo = r.json()["sha256"]
    stored = await api.get(f"/v1/photos/{photo}", headers=people["worker"])
    assert stored.status_code == 200 and not Image.open(io.BytesIO(stored.content)).getexif()
    assert (await api.get(f"/v1/photos/{photo}", headers=people["worker3"])).status_code == 404
    # The same bytes uploaded for G3 are stored once, and G3's worker may see them from then on.
    r = await api.post(f"/v1/grids/{G3}/photos", headers={**people["worker3"], "Content-Type": "image/jpeg"},
                       content=jpeg_with_gps())
    assert r.status_code == 201 and r.json()["sha256"] == photo
    assert (await api.get(f"/v1/photos/{photo}", headers=people["worker3"])).status_code == 200
    assert await pool.fetchval("SELECT count(*) FROM grid_photos") == 1

    # An incident in G2 (a broken manhole cover), reported twice from the phone's queue.
    report = {"client_id": "i-1", "classification": {"kind": "part", "major": "01", "minor": "01"},
              "location": {"lat": 32.022, "lon": 118.795}, "description": "井盖破损", "photos": [photo]}
    first = await api.post("/v1/incidents", headers=people["worker"], json=report)
    again = await api.post("/v1/incidents", headers=people["worker"], json=report)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json()["id"] == again.json()["id"] and first.json()["grid"] == G2
    assert (first.json()["recorded"], again.json()["recorded"]) == (True, False)
    incident = first.json()["id"]
    assert len(await events(pool, "incident.reported.v1")) == 1

    clock.advance(minutes=5)
    r = await api.post(f"/v1/incidents/{incident}/create", headers=people["centre"], json={})
    assert r.status_code == 200 and r.json()["state"] == "created", r.text
    r = await api.post(f"/v1/incidents/{incident}/dispatch", headers=people["centre"],
                       json={"handler": {"kind": "department", "code": "urban_management"}})
    assert r.status_code == 200 and r.json()["state"] == "dispatched", r.text
    task = await pool.fetchrow("SELECT topic, value FROM outbox WHERE topic = $1",
                               "civicgrid.departments.urban_management.tasks")
    assert task is not None
    assert b"gw-zhang" not in bytes(task["value"])  # the task says what to do, not who reported it
    # The civil affairs bureau sees no incident of urban management's.
    assert (await api.get(f"/v1/incidents/{incident}", headers=people["civil"])).status_code == 404
    assert (await api.get(f"/v1/incidents/{incident}", headers=people["urban"])).status_code == 200

    # The department's system answers on its results topic (the consumer's handler).
    handle = department_results_handler(grid_app.state.incidents, grid_app.state.store.contracts)
    task_at = (await events(pool, "urban_management_task.issued.v1"))[0]["at"]  # the task it answers
    clock.advance(hours=2)
    result = CloudEvent(id=str(uuid.uuid4()), source="/civicgrid/departments/urban_management",
                        type=RESULT, subject=incident, time=clock.now, dataschema=dataschema_for(RESULT, BASE),
                        data={"incident_id": incident, "task_at": task_at, "result": "已更换井盖",
                              "handled_by": "um-team-3", "handled_at": clock.now.isoformat(), "photos": []})
    async with pool.acquire() as conn, conn.transaction():
        await handle(conn, result)
    assert (await api.get(f"/v1/incidents/{incident}", headers=people["worker"])).json()["state"] == "fed_back"

    # On site: not done properly, rework; the department feeds back again through the API; closed.
    clock.advance(minutes=30)
    r = await api.post(f"/v1/incidents/{incident}/verify", headers=people["worker"],
                       json={"passed": False, "note": "井盖仍松动", "client_id": "v-1"})
    assert r.status_code == 200 and r.json()["state"] == "dispatched", r.text
    tasks = await pool.fetch("SELECT value FROM outbox WHERE topic = $1 ORDER BY position",
                             "civicgrid.departments.urban_management.tasks")
    assert len(tasks) == 2 and "井盖仍松动".encode() in bytes(tasks[1]["value"])  # the rework goes back to it
    # A late answer to the first task (sent again, under a new event id) is not feedback on the
    # rework: it is refused as stale, and the consumer dead-letters it with the reason.
    late = CloudEvent(**{**result.__dict__, "id": str(uuid.uuid4())})
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(RejectedResult, match="stale_task"):
            await handle(conn, late)
    assert len(await events(pool, "incident.fed_back.v1")) == 1
    assert (await api.get(f"/v1/incidents/{incident}", headers=people["worker"])).json()["state"] == "dispatched"
    clock.advance(minutes=30)
    r = await api.post(f"/v1/incidents/{incident}/feedback", headers=people["urban"],
                       json={"result": "已加固", "client_id": "f-2"})
    assert r.status_code == 200 and r.json()["state"] == "fed_back", r.text
    clock.advance(minutes=20)
    r = await api.post(f"/v1/incidents/{incident}/verify", headers=people["worker"],
                       json={"passed": True, "client_id": "v-2"})
    assert r.status_code == 200 and r.json()["state"] == "closed", r.text
    r = await api.post(f"/v1/incidents/{incident}/evaluate", headers=people["leader"], json={"level": "good"})
    assert r.status_code == 200 and r.json()["state"] == "evaluated", r.text
    full = (await api.get(f"/v1/incidents/{incident}", headers=people["worker"])).json()
    assert full["rework_count"] == 1 and full["closed_on_time"] is True and full["grid"] == G2
    closed = await events(pool, "incident.closed.v1")
    assert len(closed) == 1 and closed[0]["rework_count"] == 1

    # A dispute in G1, mediated to an agreement and settled.
    r = await api.post(f"/v1/grids/{G1}/disputes", headers=people["worker"],
                       json={"client_id": "d-1", "nature": "neighbourhood", "urgency": "general",
                             "summary": "楼上漏水", "parties": 2})
    assert r.status_code == 201, r.text
    dispute = r.json()["id"]
    r = await api.post(f"/v1/disputes/{dispute}/mediate", headers=people["worker"],
                       json={"mediator": "gw-zhang", "outcome": "agreed"})
    assert r.status_code == 200, r.text
    r = await api.post(f"/v1/disputes/{dispute}/settle", headers=people["worker"], json={})
    assert r.status_code == 200 and r.json()["state"] == "settled", r.text

    # 17:00 China time: the daily check flags G2 and G3 (G1 reported), once, and arms tomorrow's.
    clock.now = china(2026, 3, 2, 17, 0)
    assert await grid_app.state.timers.fire_due() == 2  # the district's check, then its community's
    keys = {r["key"] for r in await pool.fetch("SELECT key FROM civicgrid_timers WHERE status = 'fired'")}
    assert {f"missing-check/{day}", f"missing-check/{day}/{COMMUNITY}"} <= keys
    missing = await events(pool, "daily_report.missing.v1")
    assert sorted(m["grid"] for m in missing) == [G2, G3] and {m["date"] for m in missing} == {day}
    assert await grid_app.state.timers.fire_due() == 0
    assert len(await events(pool, "daily_report.missing.v1")) == 2
    nxt = await pool.fetchval("SELECT due_at FROM civicgrid_timers WHERE owner = 'grid' AND key = $1",
                              "missing-check/2026-03-03")
    assert nxt == china(2026, 3, 3, 17, 0)
    summary = (await api.get(f"/v1/jurisdictions/{COMMUNITY}/daily-reports/{day}", headers=people["leader"])).json()
    assert (summary["grids"], summary["reported"], summary["missing"]) == (3, 1, [G2, G3])


async def test_department_work_needs_access_and_refusals_are_counted(api, grid_app, people, pool, clock):
    await draw(api, people)
    work = {"work_kind": "survey", "title": "出租房屋调查", "client_id": "w-1"}
    r = await api.post(f"/v1/communities/{COMMUNITY}/department-work", headers=people["civil"], json=work)
    assert r.status_code == 403, r.text
    assert "准入" in r.json()["detail"]
    assert len(await events(pool, "community_work.refused.v1")) == 1
    grant = CloudEvent(id=str(uuid.uuid4()), source="/civicgrid/approval", type=ACCESS,
                       subject=str(uuid.uuid4()), time=clock.now, dataschema=dataschema_for(ACCESS, BASE), data={
                           "application_id": str(uuid.uuid4()), "outcome": "approved", "reason": None,
                           "application": {"department": "civil_affairs", "title": "调查", "purpose": "摸底",
                                           "work_kind": "survey", "documents": [{"name": "a", "sha256": "0" * 64}],
                                           "communities": [str(COMMUNITY)], "cost_bearer": "民政局",
                                           "valid_from": "2026-01-01", "valid_until": "2026-12-31"}})
    async with pool.acquire() as conn, conn.transaction():
        await access_handler(grid_app.state.grants)(conn, grant)
    work["client_id"] = "w-2"
    r = await api.post(f"/v1/communities/{COMMUNITY}/department-work", headers=people["civil"], json=work)
    assert r.status_code == 201 and r.json()["accepted"] is True, r.text
    r = await api.post(f"/v1/communities/{COMMUNITY}/department-work", headers=people["civil"],
                       json={**work, "client_id": "w-3", "work_kind": "inspection"})
    assert r.status_code == 403
    assert len(await events(pool, "community_work.refused.v1")) == 2
    assert len(await events(pool, "community_work.accepted.v1")) == 1


@pytest.mark.parametrize("case", ["bow_tie", "foreign_code", "overlap", "outside_community"])
async def test_a_bad_grid_is_refused_naming_the_field_and_changes_nothing(api, people, pool, case):
    await draw(api, people)
    before = await pool.fetchval("SELECT count(*) FROM events")
    body = grid_data(4, box(WEST, NORTH - 0.001, WEST + 0.001, NORTH))
    field = "polygon"
    if case == "bow_tie":
        body["polygon"] = {"type": "Polygon", "coordinates": [[[WEST, SOUTH], [MID, NORTH], [MID, SOUTH],
                                                               [WEST, NORTH], [WEST, SOUTH]]]}
    elif case == "foreign_code":
        body["code"], field = "320104001002004", "code"
    elif case == "overlap":
        body["polygon"] = box(WEST, SOUTH, WEST + 0.001, SOUTH + 0.001)
    else:
        body["polygon"] = box(WEST - 0.01, SOUTH, WEST + 0.001, SOUTH + 0.001)
    r = await api.post(f"/v1/communities/{COMMUNITY}/grids", headers=people["admin"], json=body)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
    assert any(e["pointer"].startswith(f"#/{field}") for e in r.json()["errors"]), r.json()
    assert await pool.fetchval("SELECT count(*) FROM events") == before


async def test_field_work_refusals(api, people, pool, clock):
    await draw(api, people)
    before = await pool.fetchval("SELECT count(*) FROM events")
    # A Saturday is no working day: no report is due.
    r = await api.post(f"/v1/grids/{G1}/daily-reports", headers=people["worker"],
                       json={"date": "2026-03-07", "all_safe": True, "client_id": "r-sat"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "#/date", r.text
    # A grid outside the worker's jurisdiction.
    r = await api.post(f"/v1/grids/{G3}/daily-reports", headers=people["worker"],
                       json={"date": "2026-03-02", "all_safe": True, "client_id": "r-g3"})
    assert r.status_code == 403, r.text
    # A point outside every grid.
    r = await api.post("/v1/incidents", headers=people["worker"], json={
        "client_id": "i-x", "classification": {"kind": "part", "major": "01", "minor": "01"},
        "location": {"lat": 32.2, "lon": 118.9}, "description": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "#/location", r.text
    # An oversized photo.
    r = await api.post(f"/v1/grids/{G1}/photos", headers={**people["worker"], "Content-Type": "image/jpeg"},
                       content=b"\xff\xd8" + b"0" * (8 * 1024 * 1024 + 1))
    assert r.status_code == 413, r.text
    # A photo that was never uploaded.
    r = await api.post("/v1/incidents", headers=people["worker"], json={
        "client_id": "i-y", "classification": {"kind": "part", "major": "01", "minor": "01"},
        "location": {"lat": 32.025, "lon": 118.785}, "description": "x", "photos": ["a" * 64]})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "#/photos/0", r.text
    assert await pool.fetchval("SELECT count(*) FROM events") == before


async def test_the_read_tables_rebuilt_from_the_log_are_what_the_commands_wrote(api, grid_app, people, pool, clock):
    from civicgrid_grid.adapters.views import VIEW_TABLES, rebuild_views

    await draw(api, people)
    r = await api.post("/v1/incidents", headers=people["worker"], json={
        "client_id": "i-r", "classification": {"kind": "event", "major": "01", "minor": "01"},
        "location": {"lat": 32.025, "lon": 118.785}, "description": "垃圾"})
    assert r.status_code == 201, r.text
    await api.post(f"/v1/grids/{G1}/daily-reports", headers=people["worker"],
                   json={"date": "2026-03-02", "all_safe": True, "client_id": "r-r"})
    await api.post(f"/v1/grids/{G1}/disputes", headers=people["worker"], json={
        "client_id": "d-r", "nature": "family", "urgency": "general", "summary": "s", "parties": 3})

    async def tables() -> dict[str, list]:
        return {t: sorted(tuple(r) for r in await pool.fetch(f"SELECT * FROM {t}")) for t in VIEW_TABLES}

    before = await tables()
    assert all(before[t] for t in ("grid_view", "incident_view", "daily_report_view", "dispute_view"))
    seen = await rebuild_views(pool, grid_app.state.store)
    assert seen == {"grid_registry": 1, "incident": 1, "daily_report": 1, "dispute": 1}
    assert await tables() == before


async def test_the_daily_check_runs_each_community_in_a_transaction_of_its_own(api, grid_app, people, pool, clock):
    await draw(api, people)
    other = "320104001002"
    r = await api.put(f"/v1/communities/{other}/boundary", headers=people["admin"],
                      json={"polygon": box(EAST, SOUTH, EAST + 0.02, NORTH)})
    assert r.status_code == 204, r.text
    r = await api.post(f"/v1/communities/{other}/grids", headers=people["admin"],
                       json={**grid_data(1, box(EAST, SOUTH, EAST + 0.02, NORTH)), "code": f"{other}001"})
    assert r.status_code == 201, r.text
    clock.now = china(2026, 3, 2, 17, 0)
    assert await grid_app.state.timers.fire_due() == 3  # the district's, then one per community
    flagged = {m["grid"] for m in await events(pool, "daily_report.missing.v1")}
    assert flagged == {G1, G2, G3, f"{other}001"}
    # Each community's flags were appended by its own timer's transaction.
    txs = await pool.fetch("SELECT DISTINCT e.tx FROM events e WHERE type LIKE '%daily_report.missing.v1'")
    assert len(txs) == 2


async def test_todays_check_run_again_flags_the_grids_registered_after_it_ran(api, grid_app, people, pool, clock):
    # 18:00 China time: the day's check has run, before any grid was drawn (a first start after
    # its hour, a registry imported on go-live day): it flagged nothing.
    clock.now = china(2026, 3, 2, 18, 0)
    assert await grid_app.state.timers.fire_due() == 1  # the district's check: no community to check yet
    await draw(api, people)
    r = await api.post(f"/v1/grids/{G1}/daily-reports", headers=people["worker"],
                       json={"date": "2026-03-02", "all_safe": True, "client_id": "r-g1"})
    assert r.status_code == 201 and r.json()["late"] is False, r.text
    before = await pool.fetchval("SELECT count(*) FROM events")

    check = f"/v1/jurisdictions/{COMMUNITY}/daily-reports/2026-03-02/check"
    for who, path, status in (("worker", check, 403), ("centre", check, 403),  # the district's admin runs it
                              ("admin", f"/v1/jurisdictions/{G1}/daily-reports/2026-03-02/check", 422),
                              ("admin", f"/v1/jurisdictions/{COMMUNITY}/daily-reports/2026-02-27/check", 422),
                              ("admin", "/v1/jurisdictions/320105001001/daily-reports/2026-03-02/check", 403)):
        r = await api.post(path, headers=people[who])
        assert r.status_code == status, (who, path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await api.post(f"/v1/jurisdictions/{COMMUNITY}/daily-reports/2026-02-27/check", headers=people["admin"])
    assert (r.json()["code"], r.json()["errors"][0]["field"], r.json()["errors"][0]["in"]) == ("not_today", "day", "path")
    assert await pool.fetchval("SELECT count(*) FROM events") == before

    clock.now = china(2026, 3, 2, 18, 5)
    r = await api.post(check, headers=people["admin"])
    assert r.status_code == 200, r.text
    assert r.json() == {"jurisdiction": str(COMMUNITY), "date": "2026-03-02", "flagged": [G2, G3],
                        "checked_at": "2026-03-02T10:05:00Z"}
    missing = await events(pool, "daily_report.missing.v1")
    assert [(m["grid"], m["check_at"]) for m in missing] == [(G2, "2026-03-02T10:05:00+00:00"),
                                                             (G3, "2026-03-02T10:05:00+00:00")]
    # Run again, over the whole street: nothing is flagged twice.
    r = await api.post("/v1/jurisdictions/320104001/daily-reports/2026-03-02/check", headers=people["admin"])
    assert (r.status_code, r.json()["flagged"]) == (200, []), r.text
    assert len(await events(pool, "daily_report.missing.v1")) == 2
    # A report after the flag is taken, marked late; the day's summary names the rest.
    r = await api.post(f"/v1/grids/{G2}/daily-reports", headers=people["worker"],
                       json={"date": "2026-03-02", "all_safe": True, "client_id": "r-g2"})
    assert r.status_code == 201 and r.json()["late"] is True, r.text
    summary = (await api.get(f"/v1/jurisdictions/{COMMUNITY}/daily-reports/2026-03-02",
                             headers=people["leader"])).json()
    assert (summary["reported"], summary["missing"]) == (2, [G3])

    # The next morning: the new day's check is not due; running it early is refused.
    clock.now = china(2026, 3, 3, 10, 0)
    counted = await pool.fetchval("SELECT count(*) FROM events")
    r = await api.post(f"/v1/jurisdictions/{COMMUNITY}/daily-reports/2026-03-03/check", headers=people["admin"])
    assert r.status_code == 409 and r.json()["code"] == "check_not_due", r.text
    assert await pool.fetchval("SELECT count(*) FROM events") == counted
