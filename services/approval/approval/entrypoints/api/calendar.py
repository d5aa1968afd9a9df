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
from civicgrid_common.identity.dependencies import admin_of, require


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


# An override moves every due date in the district: only an admin of the service's district.
_district_admin = admin_of(lambda request: request.app.state.settings.district,
                           "changing the working-day calendar")


def calendar_router() -> APIRouter:
    router = APIRouter()
    router.include_router(common_calendar_router(_pool, _district_admin), dependencies=[Depends(require())])
    return router
