"""A service's world for the class tests: its real app on a fresh database of the local stack
(no relay, no consumer: nothing reaches the shared topics), seeded with one object of every kind
its routes name, inside HOME (street 320104001, community 320104001001), routed to civil affairs
where routing applies; the principals the tests act as; and a valid request for every operation
that takes a body, so that what a test varies is the only thing wrong with a request."""
from __future__ import annotations

import contextlib
import functools
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable

import asyncpg
import httpx
from fastapi import FastAPI

from civicgrid_common.cloudevents import CloudEvent
from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.settings import PlatformSettings

DISTRICT, STREET, COMMUNITY = "320104", "320104001", "320104001001"
OTHER_DISTRICT, OTHER_STREET, OTHER_COMMUNITY = "320105", "320104002", "320104002001"
ROUTED_TO = "civil_affairs"  # every routed object of the world goes to civil affairs
DIBAO = "civil.minimum_living_allowance"
DIBAO_MATERIALS = ["id_card", "household_register", "application_form", "verification_authorisation",
                   "income_statement"]


def resident_number() -> str:
    """A GB 11643 number of a resident of Qinhuai born 1950-1989, with its check character."""
    from civicgrid_intake.domain.identity_numbers import resident_id_check_character

    pick = random.Random()
    body = f"320104{pick.randint(1950, 1989)}{pick.randint(1, 12):02d}{pick.randint(1, 28):02d}{pick.randint(0, 999):03d}"
    return body + resident_id_check_character(body)


# Where each role works inside HOME, and where the same role works elsewhere.
_HOME = {"window_clerk": STREET, "community_reviewer": COMMUNITY, "street_reviewer": STREET,
         "bureau_approver": DISTRICT, "leader": DISTRICT, "grid_worker": COMMUNITY, "department": DISTRICT,
         "auditor": DISTRICT, "admin": DISTRICT, "notifier": DISTRICT}
_ELSEWHERE = {"window_clerk": OTHER_STREET, "community_reviewer": OTHER_COMMUNITY, "street_reviewer": OTHER_STREET,
              "bureau_approver": OTHER_DISTRICT, "leader": OTHER_DISTRICT, "grid_worker": OTHER_COMMUNITY,
              "department": OTHER_DISTRICT, "auditor": OTHER_DISTRICT, "admin": OTHER_DISTRICT,
              "notifier": OTHER_DISTRICT}
ROLES = tuple(_HOME)
# Who acts, of the roles an operation admits, for the world's valid requests to be valid: the
# clerk at the window, the reviewer of the approval's first task, ...
ACTING_ORDER = ("window_clerk", "community_reviewer", "street_reviewer", "leader", "bureau_approver", "department",
                "auditor", "admin", "grid_worker", "notifier")


def actor(roles: list[str] | None) -> dict[str, str]:
    """Someone an operation admits (None: it needs no token; []: any signed-in caller)."""
    if roles is None:
        return {}
    return insider(next(r for r in ACTING_ORDER if not roles or r in roles))


def bearer(role: str, jurisdiction: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(role, jurisdiction, tuple(sorted(claims.items())))}"}


@functools.cache
def _token(role: str, jurisdiction: str, claims: tuple[tuple[str, Any], ...]) -> str:
    # Minted once per principal: signing loads the RSA key, tens of milliseconds of the test's
    # own CPU that would otherwise count as the services' event-loop lag.
    return mint_local_token(role, jurisdiction, **dict(claims))


def insider(role: str) -> dict[str, str]:
    """The role where the world's objects are (a department system: the one they are routed to)."""
    extra = {"department": ROUTED_TO} if role in ("department", "bureau_approver", "leader") else {}
    return bearer(role, _HOME[role], subject=f"home-{role}", **extra)


def outsiders(role: str) -> dict[str, dict[str, str]]:
    """Principals of `role` who must not see the world's objects: another jurisdiction's, and for
    a department system also one of this district that the objects are not routed to."""
    extra = {"department": ROUTED_TO} if role in ("department", "bureau_approver", "leader") else {}
    found = {f"{role}@{_ELSEWHERE[role]}": bearer(role, _ELSEWHERE[role], subject=f"away-{role}", **extra)}
    if role == "department":
        found[f"department:tax@{DISTRICT}"] = bearer("department", DISTRICT, department="tax", subject="tax-system")
    return found


@dataclass
class World:
    service: str
    app: FastAPI
    client: httpx.AsyncClient
    pool: asyncpg.Pool
    ids: dict[str, str]  # path parameter -> the seeded object (or value) it names
    bodies: dict[tuple[str, str], Any]  # (METHOD, templated path) -> a valid JSON body, or None
    schema: dict[str, Any] = field(default_factory=dict)

    async def state(self) -> tuple[int, ...]:
        """What a refused request must not change: the event store, the outbox, the read tables."""
        counts = [await self.pool.fetchval("SELECT count(*) FROM events"),
                  await self.pool.fetchval("SELECT count(*) FROM outbox")]
        for table in ("applicants", "applicant_contacts", "calendar_overrides", "calendar_schedules", "case_view",
                      "complaint_view", "approval_view",
                      "access_grants", "inbox_items", "inbox_reads", "notification_deliveries", "webhook_endpoints"):
            if await self.pool.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
                counts.append(await self.pool.fetchval(f"SELECT count(*) FROM {table}"))
        return tuple(counts)

    def url(self, path: str, **overrides: str) -> str:
        """The templated path with the world's values (or the overrides) in its parameters."""
        values = {**self.ids, **overrides}
        for name in _parameters(path):
            path = path.replace("{" + name + "}", values[name])
        return path


def _parameters(path: str) -> list[str]:
    import re

    return re.findall(r"{([^}]+)}", path)


async def _pool(settings: PlatformSettings) -> asyncpg.Pool:
    from civicgrid_common.db import create_pool

    return await create_pool(settings)


def _mint_every_principal() -> None:
    for role in ROLES:
        insider(role)
        outsiders(role)


@contextlib.asynccontextmanager
async def _running(app: FastAPI, base: str) -> AsyncIterator[httpx.AsyncClient]:
    _mint_every_principal()  # before the service's loop-lag monitor starts
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base, timeout=60) as client:
            yield client


def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201), f"seeding failed: {r.request.method} {r.request.url}: {r.text}"
    return r.json()


# ------------------------------------------------------------------------------------ intake


@contextlib.asynccontextmanager
async def intake_world(database: str) -> AsyncIterator[World]:
    from civicgrid_intake.config import IntakeSettings
    from civicgrid_intake.entrypoints.main import build_app

    settings = IntakeSettings(pg_database=database, outbox_relay=False, approval_consumer=False)
    app = build_app(settings)
    schema = app.openapi()  # before the lifespan: the test's own work, not counted as the service's lag
    async with _running(app, "http://intake") as client:
        clerk = insider("window_clerk")
        number = resident_number()
        applicant = _ok(await client.post("/v1/applicants", headers=clerk, json={
            "kind": "resident", "identity_number": number, "name": "周桂兰", "phone": "13912345678",
            "household_registration_code": STREET, "residence_community_code": COMMUNITY}))["applicant_id"]
        case = _ok(await client.post("/v1/cases", headers=clerk, json={
            "applicant_id": applicant, "affair_code": DIBAO, "jurisdiction": COMMUNITY,
            "materials_handed_in": DIBAO_MATERIALS}))["id"]
        _ok(await client.post(f"/v1/cases/{case}/accept", headers=clerk))
        _ok(await client.post(f"/v1/cases/{case}/route", headers=clerk))
        # Approval asks for a supplement (as its event would): the window's supplement is then due.
        await app.state.transactions(app.state.cases.record_supplement_request(
            case, approval_reference="approval-1", step="community_review",
            materials=["income_statement"], comment="请补交收入证明", requested_by="cr-wang",
            requested_at=datetime.now(timezone.utc)))
        complaint = _ok(await client.post("/v1/complaints", headers=clerk, json={
            "category": "public_order", "channel": "phone", "jurisdiction": COMMUNITY, "anonymous": False,
            "applicant_id": applicant, "location": {"address": "淮海路 30 号", "lat": 32.0312, "long": 118.7895},
            "description": "夜间施工扰民"}))["id"]
        _ok(await client.post(f"/v1/complaints/{complaint}/route", headers=clerk,
                              json={"kind": "department", "department": ROUTED_TO}))
        pool = app.state.pool
        ids = {"applicant_id": applicant, "case_id": case, "complaint_id": complaint, "code": DIBAO,
               "day": "2026-12-24", "year": "2027", "slug": "not-found", "ext": "json", "service_code": "public_order",
               "service_request_id": complaint, "token": "no-such-token"}
        bodies: dict[tuple[str, str], Any] = {
            ("POST", "/v1/affairs"): _affair_entry(),
            ("PUT", "/v1/affairs/{code}"): {"reason": "材料清单调整", "affair": _affair_entry(DIBAO)},
            ("POST", "/v1/applicants"): {"kind": "resident", "identity_number": number, "name": "周桂兰",
                                         "household_registration_code": STREET,
                                         "residence_community_code": COMMUNITY},
            ("POST", "/v1/applicants/lookup"): {"kind": "resident", "identity_number": number},
            ("POST", "/v1/applicants/relocations"): {"kind": "resident", "identity_number": number,
                                                     "residence_community_code": "320104001002",
                                                     "evidence": "household_register"},
            ("PUT", "/v1/applicants/{applicant_id}/contact-channels"): {
                "channels": ["email", "wechat"], "email": "zhou.guilan@example.org",
                "wechat_openid": "oAbCdEfGhIjKlMnOpQrStUvWxYz0"},
            ("POST", "/v1/cases"): {"applicant_id": applicant, "affair_code": DIBAO, "jurisdiction": COMMUNITY,
                                    "channel": "window", "materials_handed_in": DIBAO_MATERIALS,
                                    "declared_facts": {"registered_unemployed": False}},
            ("POST", "/v1/cases/{case_id}/accept"): None,
            ("POST", "/v1/cases/{case_id}/refuse"): {"reason": "不符合条件"},
            ("POST", "/v1/cases/{case_id}/supplements"): {"materials": ["income_statement"]},
            ("POST", "/v1/cases/{case_id}/route"): None,
            ("POST", "/v1/cases/{case_id}/green-channel"): {"reason": "独居老人，急需救助"},
            ("POST", "/v1/cases/{case_id}/withdraw"): {"applicant_id": applicant, "reason": "不再需要"},
            ("POST", "/v1/cases/{case_id}/certificate"): {"certificate_number": "QH-DB-2026-000001"},
            ("POST", "/v1/cases/{case_id}/archive"): None,
            ("POST", "/v1/cases/{case_id}/applicant-identity"): {"purpose": "居民家庭经济状况核对"},
            ("POST", "/v1/cases/{case_id}/applicant-contact"): {"channel": "sms", "purpose": "notification 7f3a"},
            ("POST", "/v1/cases/{case_id}/rating"): {"applicant_id": applicant, "level": "satisfied"},
            ("POST", "/v1/cases/{case_id}/follow-up/call-back"): None,
            ("POST", "/v1/cases/{case_id}/follow-up/close"): None,
            ("PUT", "/v1/calendar/overrides/{day}"): {"is_working_day": False, "reason": "台风停工"},
            ("PUT", "/v1/calendar/schedules/{year}"): {"source": "国务院办公厅关于2027年部分节假日安排的通知"},
            ("POST", "/v1/complaints"): {"category": "public_order", "channel": "phone", "urgency": "general",
                                         "jurisdiction": COMMUNITY, "anonymous": False, "applicant_id": applicant,
                                         "location": {"address": "淮海路 30 号", "lat": 32.0312, "long": 118.7895},
                                         "description": "夜间施工扰民", "media_url": "https://example.org/p.jpg"},
            ("POST", "/v1/complaints/{complaint_id}/route"): {"kind": "lead", "lead": ROUTED_TO,
                                                              "co_departments": ["public_security"]},
            ("POST", "/v1/complaints/{complaint_id}/response"): {"by": ROUTED_TO},
            ("POST", "/v1/complaints/{complaint_id}/answer"): {"by": ROUTED_TO, "answer": "已协调停工", "resolved": True},
            ("POST", "/v1/complaints/{complaint_id}/close"): None,
            ("POST", "/v1/complaints/{complaint_id}/rating"): {"rating": "satisfied"},
        }
        yield World("intake", app, client, pool, ids, bodies, schema)


def _affair_entry(code: str = "civil.test_affair") -> dict[str, Any]:
    """A catalogue entry in the seed file's form (a new one, or a revision of `code`)."""
    from importlib import resources

    seed = json.loads(resources.files("civicgrid_intake.domain.seed").joinpath("affairs.json").read_text(encoding="utf-8"))
    entry = dict(next(a for a in seed["affairs"] if a["code"] == DIBAO))
    entry["code"] = code
    if code != DIBAO:
        entry["approval_workflow"] = None
        entry["open311"] = {**entry["open311"], "service_code": code}
    entry["time_limit_working_days"] = 25
    return entry


# ------------------------------------------------------------------------------------ approval


def _event(type_: str, subject: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(id=str(uuid.uuid4()), source="/civicgrid/intake", type=type_, subject=subject,
                      time=datetime.now(timezone.utc), dataschema=None, data=data)


@contextlib.asynccontextmanager
async def approval_world(database: str) -> AsyncIterator[World]:
    from civicgrid_approval.config import ApprovalSettings
    from civicgrid_approval.domain.approval import approval_id_for
    from civicgrid_approval.entrypoints.consumers import intake_cases_handler
    from civicgrid_approval.entrypoints.main import build_app

    settings = ApprovalSettings(pg_database=database, outbox_relay=False, consume=False, timers=False)
    app = build_app(settings)
    schema = app.openapi()
    async with _running(app, "http://approval") as client:
        case_id = str(uuid.uuid4())
        routing = {"kind": "department", "department": ROUTED_TO}
        handle = intake_cases_handler(app.state.approvals)
        for e in (_event("civicgrid.intake.case.registered.v1", case_id, {
                      "affair_code": DIBAO, "affair_version": 1, "time_limit_working_days": 30, "level": "district",
                      "routing": routing, "jurisdiction": COMMUNITY, "actor": "clerk-1",
                      "materials_required": DIBAO_MATERIALS}),
                  _event("civicgrid.intake.case.accepted.v1", case_id, {
                      "case_number": "320104001202612010001", "due_date": "2027-01-14", "actor": "clerk-1"}),
                  _event("civicgrid.intake.case.routed.v1", case_id, {"routing": routing, "level": "district",
                                                                      "actor": "clerk-1"})):
            async with app.state.pool.acquire() as conn, conn.transaction():
                await handle(conn, e)
        approval = approval_id_for(case_id)
        task = (await app.state.approvals.load(approval)).task.key
        workflow = _ok(await client.get(f"/v1/workflows/{DIBAO}", headers=insider("auditor")))["definition"]
        workflow.pop("affair_code", None)
        ids = {"approval_id": approval, "affair_code": DIBAO, "day": "2026-12-24", "slug": "not-found"}
        bodies: dict[tuple[str, str], Any] = {
            ("PUT", "/v1/workflows/{affair_code}"): workflow,
            ("POST", "/v1/approvals/{approval_id}/actions"): {
                "action": "request_supplement", "comment": "请补交户口簿", "task": task, "expected_version": 1,
                "materials": ["household_register"]},
            ("POST", "/v1/access-applications"): {
                "department": ROUTED_TO, "title": "低保政策入户宣传", "purpose": "宣传", "work_kind": "survey",
                "documents": [{"name": "申请函", "sha256": "a" * 64}], "communities": [COMMUNITY],
                "cost_bearer": "区市场监管局", "valid_from": "2026-05-01", "valid_until": "2026-06-30"},
        }
        yield World("approval", app, client, app.state.pool, ids, bodies, schema)


# ------------------------------------------------------------------------------------ statistics


@contextlib.asynccontextmanager
async def statistics_world(database: str) -> AsyncIterator[World]:
    from civicgrid_statistics.config import StatisticsSettings
    from civicgrid_statistics.entrypoints.main import build_app

    settings = StatisticsSettings(pg_database=database, run_worker=False, outbox_relay=False)
    app = build_app(settings)
    schema = app.openapi()
    async with _running(app, "http://statistics") as client:
        yield World("statistics", app, client, app.state.pool, {"slug": "not-found"}, {}, schema)


# ------------------------------------------------------------------------------------ grid


def _box(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                [west, south]]]}


def _grid_body(code: str, polygon: dict[str, Any]) -> dict[str, Any]:
    return {"code": code, "kind": "residential", "name": f"网格 {code[-3:]}", "polygon": polygon, "households": 300,
            "residents": 800, "responsible_party": "home-grid_worker"}


def _report_day() -> str:
    """The latest working day up to today, China time: a daily report's valid date."""
    from datetime import timedelta

    from civicgrid_common.calendar.working_days import WorkingCalendar, local_date

    day, calendar = local_date(datetime.now(timezone.utc)), WorkingCalendar()
    while not calendar.is_working_day(day):
        day -= timedelta(days=1)
    return day.isoformat()


def _jpeg() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(out, "JPEG")
    return out.getvalue()


@contextlib.asynccontextmanager
async def grid_world(database: str) -> AsyncIterator[World]:
    """HOME's community cut into two grids (001 west, 002 east); in grid 001 a registered
    manhole cover, a photo, an incident reported by HOME's grid worker and dispatched to civil
    affairs (ROUTED_TO), a dispute and a patrol."""
    from civicgrid_grid.config import GridSettings
    from civicgrid_grid.entrypoints.main import build_app

    settings = GridSettings(pg_database=database, outbox_relay=False, consume=False, timers=False)
    app = build_app(settings)
    schema = app.openapi()
    g1, g2, g3 = (f"{COMMUNITY}{n:03d}" for n in (1, 2, 3))
    west, south, mid, east, north = 118.78, 32.02, 118.79, 118.80, 32.04
    component = "320104" "01" "01" "000001"
    async with _running(app, "http://grid") as client:
        admin, worker, centre = insider("admin"), insider("grid_worker"), insider("street_reviewer")
        r = await client.put(f"/v1/communities/{COMMUNITY}/boundary", headers=admin,
                             json={"polygon": _box(west, south, east, north)})
        assert r.status_code == 204, r.text
        for code, polygon in ((g1, _box(west, south, mid, north)), (g2, _box(mid, south, east, 32.03))):
            _ok(await client.post(f"/v1/communities/{COMMUNITY}/grids", headers=admin, json=_grid_body(code, polygon)))
        _ok(await client.post(f"/v1/communities/{COMMUNITY}/components", headers=admin,
                              json={"id": component, "location": {"lat": 32.03, "lon": 118.785}}))
        photo = _ok(await client.post(f"/v1/grids/{g1}/photos", content=_jpeg(),
                                      headers={**worker, "Content-Type": "image/jpeg"}))["sha256"]
        incident = _ok(await client.post("/v1/incidents", headers=worker, json={
            "client_id": "seed-incident", "classification": {"kind": "part", "major": "01", "minor": "01"},
            "location": {"lat": 32.03, "lon": 118.785}, "description": "井盖破损", "photos": [photo],
            "component_id": component}))["id"]
        _ok(await client.post(f"/v1/incidents/{incident}/create", headers=centre, json={}))
        _ok(await client.post(f"/v1/incidents/{incident}/dispatch", headers=centre,
                              json={"handler": {"kind": "department", "code": ROUTED_TO}}))
        dispute = _ok(await client.post(f"/v1/grids/{g1}/disputes", headers=worker, json={
            "client_id": "seed-dispute", "nature": "neighbourhood", "urgency": "general", "summary": "漏水",
            "parties": 2}))["id"]
        patrol = str(uuid.uuid4())
        _ok(await client.post(f"/v1/grids/{g1}/patrols", headers=worker, json={"id": patrol, "client_id": "seed-p"}))
        now = datetime.now(timezone.utc).isoformat()
        day = _report_day()
        ids = {"community": COMMUNITY, "grid": g1, "jurisdiction": COMMUNITY, "patrol_id": patrol, "day": day,
               "sha256": photo, "incident_id": incident, "dispute_id": dispute, "month": day[:7], "kind": "part",
               "major": "01", "minor": "01", "slug": "not-found"}
        point = {"lat": 32.03, "lon": 118.785, "at": now}
        limit = {"working_days": 3}
        bodies: dict[tuple[str, str], Any] = {
            ("PUT", "/v1/communities/{community}/boundary"): {"polygon": _box(west, south, east, north)},
            ("POST", "/v1/communities/{community}/grids"): _grid_body(g3, _box(mid, 32.03, east, north)),
            ("PATCH", "/v1/grids/{grid}"): {"name": "网格一", "reason": "更名"},
            ("POST", "/v1/grids/{grid}/redraw"): {"polygon": _box(west, south, mid, 32.039), "reason": "调整"},
            ("POST", "/v1/grids/{grid}/split"): {"parts": [
                _grid_body(g3, _box(west, south, mid, 32.03)),
                _grid_body(f"{COMMUNITY}004", _box(west, 32.03, mid, north))], "reason": "拆分"},
            ("POST", "/v1/communities/{community}/merges"): {
                "codes": [g1, g2], "into": _grid_body(g3, {"type": "Polygon", "coordinates": [[
                    [west, south], [east, south], [east, 32.03], [mid, 32.03], [mid, north], [west, north],
                    [west, south]]]}), "reason": "合并"},
            ("POST", "/v1/grids/{grid}/retire"): {"reason": "撤销"},
            ("PUT", "/v1/grids/{grid}/workers"): {"workers": ["home-grid_worker", "gw-2"], "lead": "home-grid_worker"},
            ("POST", "/v1/grids/{grid}/buildings"): {"code": "00001", "name": "1 栋",
                                                     "place": {"type": "Point", "coordinates": [118.785, 32.031]}},
            ("POST", "/v1/communities/{community}/components"): {"id": "320104" "01" "01" "000002",
                                                                 "location": {"lat": 32.031, "lon": 118.785}},
            ("POST", "/v1/grids/{grid}/patrols"): {"id": str(uuid.uuid4()), "client_id": "p-2"},
            ("POST", "/v1/patrols/{patrol_id}/track"): {"client_id": "t-1", "points": [point]},
            ("POST", "/v1/patrols/{patrol_id}/end"): {"client_id": "t-2", "points": [point]},
            ("POST", "/v1/grids/{grid}/daily-reports"): {"date": day, "all_safe": False, "incidents": [incident],
                                                         "patrol_id": patrol, "client_id": "r-1"},
            ("POST", "/v1/incidents"): {
                "client_id": "i-2", "classification": {"kind": "part", "major": "01", "minor": "01"},
                "location": {"lat": 32.03, "lon": 118.785}, "description": "井盖缺失", "photos": [photo],
                "component_id": component},
            ("POST", "/v1/incidents/{incident_id}/create"): {
                "classification": {"kind": "part", "major": "01", "minor": "01"}, "urgent": False, "client_id": "c-1"},
            ("POST", "/v1/incidents/{incident_id}/dispatch"): {"handler": {"kind": "department", "code": ROUTED_TO},
                                                               "note": "请处理", "client_id": "d-1"},
            ("POST", "/v1/incidents/{incident_id}/defer"): {"reason": "等待配件", "client_id": "f-1"},
            ("POST", "/v1/incidents/{incident_id}/feedback"): {"result": "已修复", "photos": [photo], "client_id": "b-1"},
            ("POST", "/v1/incidents/{incident_id}/verify"): {"passed": True, "photos": [photo], "client_id": "v-1"},
            ("POST", "/v1/incidents/{incident_id}/evaluate"): {"level": "good", "client_id": "e-1"},
            ("POST", "/v1/grids/{grid}/disputes"): {"client_id": "d-2", "nature": "family", "urgency": "general",
                                                    "summary": "家庭纠纷", "parties": 2},
            ("POST", "/v1/disputes/{dispute_id}/mediate"): {"mediator": "home-grid_worker", "outcome": "agreed"},
            ("POST", "/v1/disputes/{dispute_id}/follow-up"): {"note": "回访", "holding": True},
            ("POST", "/v1/disputes/{dispute_id}/settle"): {"note": "已调解"},
            ("POST", "/v1/disputes/{dispute_id}/refer"): {"to": "judicial_office", "reason": "需司法调解"},
            ("PUT", "/v1/communities/{community}/stability-sweeps/{month}"): {
                "factors": [{"category": "labour", "level": "low", "grid": g1, "summary": "工资拖欠苗头"}],
                "client_id": "s-1"},
            ("POST", "/v1/communities/{community}/department-work"): {"work_kind": "survey", "title": "入户调查",
                                                                     "client_id": "w-1"},
            ("POST", "/v1/classification/classes"): {"kind": "event", "major": "06", "minor": "98", "name_zh": "其他",
                                                     "name_en": "other", "department": "urban_management",
                                                     "limit": limit},
            ("PUT", "/v1/classification/classes/{kind}/{major}/{minor}"): {
                "kind": "part", "major": "01", "minor": "01", "name_zh": "井盖", "name_en": "manhole cover",
                "department": "urban_management", "limit": {"working_hours": 8}, "reason": "放宽时限"},
        }
        yield World("grid", app, client, app.state.pool, ids, bodies, schema)


# ------------------------------------------------------------------------------------ notifications


@contextlib.asynccontextmanager
async def notifications_world(database: str) -> AsyncIterator[World]:
    """HOME's community leaders told of a complaint surge (one inbox item, which no one
    elsewhere sees); civil affairs' webhook endpoint set, and a task delivery to it recorded."""
    from civicgrid_notifications.config import NotificationsSettings
    from civicgrid_notifications.domain.seed import sample_events
    from civicgrid_notifications.entrypoints.main import build_app

    settings = NotificationsSettings(pg_database=database, outbox_relay=False, consume=False, send=False)
    app = build_app(settings)
    schema = app.openapi()
    samples = sample_events()
    async with _running(app, "http://notifications") as client:
        service, pool = app.state.notifications, app.state.pool
        alert = samples["civicgrid.statistics.alert.raised.v1"][0]
        task = samples["civicgrid.approval.civil_affairs_task.issued.v1"][0]
        async with pool.acquire() as conn, conn.transaction():
            for sample in (alert, task):
                await service.on_event(conn, _event(sample["type"], sample["subject"],
                                                    {**sample["data"], "community": COMMUNITY}
                                                    if sample is alert else sample["data"]))
        item = await pool.fetchval("SELECT id FROM inbox_items")
        delivery = await pool.fetchval("SELECT id FROM notification_deliveries WHERE channel = 'webhook'")
        assert item and delivery, "seeding failed: no inbox item or webhook delivery"
        _ok(await client.put(f"/v1/departments/{ROUTED_TO}/webhook", headers=insider("admin"),
                             json={"url": "https://1.2.3.4/hooks/civicgrid"}))
        ids = {"item_id": str(item), "rule_id": "community-alert", "name": "community-alert",
               "department": ROUTED_TO, "delivery_id": delivery, "slug": "not-found"}
        bodies: dict[tuple[str, str], Any] = {
            ("PUT", "/v1/rules/{rule_id}"): {
                "event_type": "civicgrid.statistics.alert.raised.v1", "template": "community-alert",
                "recipients": [{"kind": "role", "role": "leader", "jurisdiction_field": "community"}],
                "channels": ["in_app"], "conditions": [{"field": "alert_kind", "op": "equals",
                                                        "value": "complaint_surge"}]},
            ("PUT", "/v1/templates/{name}"): {
                "event_types": ["civicgrid.statistics.alert.raised.v1"],
                "variants": {"zh-CN": {"in_app": {"title": "预警：{{ community }}", "body": "{{ count }} 件"}}}},
            ("PUT", "/v1/departments/{department}/webhook"): {"url": "https://1.2.3.4/hooks/v2"},
            ("POST", "/v1/departments/{department}/webhook/rotate"): {"grace_hours": 24},
            ("PUT", "/v1/me/preferences"): {"in_app": {"delivery": "digest", "every_minutes": 60}},
        }
        yield World("notifications", app, client, pool, ids, bodies, schema)


WORLDS: dict[str, Callable[[str], Any]] = {"intake": intake_world, "approval": approval_world,
                                          "statistics": statistics_world, "grid": grid_world,
                                          "notifications": notifications_world}
