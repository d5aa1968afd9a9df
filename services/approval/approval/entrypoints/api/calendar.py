"""The working-day calendar approval counts its due dates on (civicgrid_common.calendar's router).

GET /v1/calendar/overrides            every override (any signed-in caller)
PUT /v1/calendar/overrides/{date}     set one (an admin of approval's district)
GET /v1/calendar/due-date             the due date N working days after an instant

approval keeps its own overrides in its own database: an override set at intake does not
reach it, so a district admin sets it here too (one calendar for the district, published as
events every service reads, would spare that double entry; not built yet).
"""
from __future__ import annotations

import asyncpg
from fastapi import APIRouter, Depends, Request

from civicgrid_common.calendar.api import calendar_router as common_calendar_router
from civicgrid_common.identity import Principal, Role
from civicgrid_common.identity.dependencies import FORBIDDEN, require
from civicgrid_common.web.problems import Problem


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


async def _district_admin(request: Request, principal: Principal = Depends(require(Role.ADMIN))) -> str:
    """An admin of approval's district (an override moves every due date and deadline in it)."""
    district = request.app.state.settings.district
    if not principal.may_act_in(district):
        raise Problem(403, "Forbidden", f"changing the working-day calendar needs an admin of district {district}",
                      type=FORBIDDEN)
    return principal.subject


def calendar_router() -> APIRouter:
    router = APIRouter()
    router.include_router(common_calendar_router(_pool, _district_admin), dependencies=[Depends(require())])
    return router
