"""Helpers of approval's API tests: intake's events of a case through approval's handler, acting."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from civicgrid_common.cloudevents import CloudEvent

from civicgrid_approval.domain.approval import approval_id_for
from civicgrid_approval.entrypoints.consumers import intake_cases_handler

from approval_builders import COMMUNITY

DIBAO = "civil.minimum_living_allowance"


def ce(type_: str, subject: str, data: dict, source: str = "/civicgrid/intake") -> CloudEvent:
    return CloudEvent(id=str(uuid.uuid4()), source=source, type=type_, subject=subject,
                      time=datetime.now(timezone.utc), dataschema=None, data=data)


async def route_case(app, *, affair: str = DIBAO, jurisdiction: str = COMMUNITY, green: bool = False,
                     routing: dict | None = None, materials: list[str] | None = None) -> str:
    """intake's events of one case, through approval's handler as the consumer would call it;
    `materials`: the checklist intake registered the case with (else none is known)."""
    case_id = str(uuid.uuid4())
    handle = intake_cases_handler(app.state.approvals)
    routing = routing or {"kind": "department", "department": "civil_affairs"}
    events = [
        ce("civicgrid.intake.case.registered.v1", case_id, {
            "affair_code": affair, "affair_version": 1, "time_limit_working_days": 30, "level": "district",
            "routing": routing, "jurisdiction": jurisdiction, "actor": "clerk-1",
            **({"materials_required": materials} if materials is not None else {})}),
        ce("civicgrid.intake.case.accepted.v1", case_id, {"case_number": f"QH-{case_id[:8]}", "due_date": "2026-04-14",
                                                          "actor": "clerk-1"}),
    ]
    if green:
        events.append(ce("civicgrid.intake.case.green_channelled.v1", case_id, {"reason": "急难", "actor": "s"}))
    events.append(ce("civicgrid.intake.case.routed.v1", case_id, {"routing": routing, "level": "district",
                                                                  "actor": "clerk-1"}))
    for e in events:
        async with app.state.pool.acquire() as conn, conn.transaction():
            await handle(conn, e)
    return approval_id_for(case_id)


async def event_count(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM events")


async def act(api, who, approval_id, action="approve", **body):
    body.setdefault("comment", "同意")
    return await api.post(f"/v1/approvals/{approval_id}/actions", json={"action": action, **body}, headers=who)
