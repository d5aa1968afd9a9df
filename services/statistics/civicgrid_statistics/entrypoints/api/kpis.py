"""GET /v1/kpis/{cases,complaints,satisfaction,workload}: figures for leaders' charts.

Every route needs a token of a role that reads figures and answers only inside the caller's
jurisdiction: `?jurisdiction=CODE` must lie inside it (else 403), and without it the figures
cover exactly the caller's jurisdictions. JSON by default; CSV with `Accept: text/csv` or
`?format=csv` (one line per group, then a line for the total).
"""
from __future__ import annotations

import csv
import io
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from civicgrid_common.identity.dependencies import require
from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.problems import VALIDATION_ERROR, Problem, parameter_error
from civicgrid_common.web.models import Day, Instant

from civicgrid_statistics.application.kpis import KpiService
from civicgrid_statistics.domain.figures import Filters

READERS = (Role.LEADER, Role.ADMIN, Role.AUDITOR, Role.STREET_REVIEWER, Role.COMMUNITY_REVIEWER,
           Role.BUREAU_APPROVER)
CODE = r"^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"

CaseGroup = Literal["all", "affair", "channel", "district", "street", "community", "grid", "day", "week", "month"]
ComplaintGroup = Literal["all", "category", "channel", "department", "urgency", "district", "street", "community",
                         "grid", "day", "week", "month"]
CaseMeasure = Literal["registered", "accepted", "refused", "withdrawn", "completed", "approved", "completed_on_time",
                      "overdue_now", "green_channelled", "supplemented", "supplement_requested", "returned",
                      "extended", "sent_back"]
ComplaintMeasure = Literal["received", "responded", "responded_on_time", "resolved", "rated", "satisfied", "reopened"]
Format = Literal["json", "csv"]


class Common:
    """The filters every KPI takes."""

    def __init__(
        self,
        request: Request,
        jurisdiction: str | None = Query(None, pattern=CODE, description="district, street, community or grid code (prefix)"),
        channel: str | None = Query(None, pattern=NAME),
        date_from: Day | None = Query(None, alias="from", description="first day (China date), inclusive"),
        date_to: Day | None = Query(None, alias="to", description="last day (China date), inclusive"),
        as_of: Instant | None = Query(None, description="the figures as they stood at this instant (with offset)"),
        format: Format | None = Query(None, description="json (default) or csv; or send Accept: text/csv"),
        who: Principal = Depends(require(*READERS, jurisdiction_param="jurisdiction")),
    ) -> None:
        if date_from and date_to and date_from > date_to:
            raise Problem(VALIDATION_ERROR, "Some parameters are not valid.",
                          errors=[parameter_error("from", "query", "must not be after `to`")])
        self.jurisdiction, self.channel, self.date_from, self.date_to = jurisdiction, channel, date_from, date_to
        self.as_of, self.who = as_of, who
        accept = request.headers.get("accept", "")
        self.csv = format == "csv" or (format is None and "text/csv" in accept)

    def filters(self, affair: str | None = None, category: str | None = None) -> Filters:
        return Filters(jurisdiction=self.jurisdiction, affair=affair, category=category, channel=self.channel,
                       date_from=self.date_from, date_to=self.date_to, scopes=tuple(self.who.jurisdictions))

    def answer(self, body: dict[str, Any]) -> Response:
        body["filters"] = {"jurisdiction": self.jurisdiction, "channel": self.channel,
                           "from": self.date_from and self.date_from.isoformat(),
                           "to": self.date_to and self.date_to.isoformat(),
                           "scope": list(self.who.jurisdictions)}
        body["as_of"] = self.as_of.isoformat() if self.as_of else None
        if not self.csv:
            return JSONResponse(body)
        return Response(to_csv(body), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{body["kpi"]}.csv"'})


def to_csv(body: dict[str, Any]) -> str:
    rows = [*body["groups"], {"label": "total", **body["totals"]}]
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[body["group_by"] if c == "label" else c for c in columns],
                            lineterminator="\r\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({(body["group_by"] if k == "label" else k): ("" if v is None else v) for k, v in r.items()})
    return out.getvalue()


def kpis_router() -> APIRouter:
    router = APIRouter(prefix="/v1/kpis", tags=["kpis"])

    def service(request: Request) -> KpiService:
        return request.app.state.kpis

    @router.get("/cases", summary="Cases: registered, accepted, refused, completed, on time, handling time, overdue...")
    async def cases(common: Common = Depends(), affair: str | None = Query(None, pattern=NAME),
                    group_by: CaseGroup = "all", measure: CaseMeasure = "registered",
                    kpis: KpiService = Depends(service)) -> Response:
        return common.answer(await kpis.cases(common.filters(affair=affair), group_by, measure, common.as_of))

    @router.get("/complaints", summary="Complaints: the response, resolution and satisfaction rates")
    async def complaints(common: Common = Depends(), category: str | None = Query(None, pattern=NAME),
                         group_by: ComplaintGroup = "all", measure: ComplaintMeasure = "received",
                         kpis: KpiService = Depends(service)) -> Response:
        return common.answer(await kpis.complaints(common.filters(category=category), group_by, measure, common.as_of))

    @router.get("/satisfaction", summary="Cases' reviews on the five levels, bad reviews and their follow-ups")
    async def satisfaction(common: Common = Depends(), affair: str | None = Query(None, pattern=NAME),
                           kpis: KpiService = Depends(service)) -> Response:
        return common.answer(await kpis.satisfaction(common.filters(affair=affair), common.as_of))

    @router.get("/workload", summary="Actions per clerk and per reviewer, reviewers' median time to act")
    async def workload(common: Common = Depends(), affair: str | None = Query(None, pattern=NAME),
                       kpis: KpiService = Depends(service)) -> Response:
        return common.answer(await kpis.workload(common.filters(affair=affair), common.as_of))

    return router
