"""GET /v1/kpis/{cases,complaints,satisfaction,workload,grid,notifications}: figures for leaders' charts.

Every route needs a token of a role that reads figures and answers only inside the caller's
jurisdiction: `?jurisdiction=CODE` must lie inside it (else 403), and without it the figures
cover exactly the caller's jurisdictions. JSON by default; CSV with `Accept: text/csv` or
`?format=csv` (one line per group, then a line for the total).
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

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
GridGroup = Literal["all", "district", "street", "community", "grid", "day", "week", "month"]
GridMeasure = Literal["incidents_reported", "incidents_created", "incidents_dispatched", "incidents_deferred",
                      "incidents_closed", "incidents_due", "incidents_closed_on_time", "incidents_overdue", "reworks",
                      "incidents_reworked", "reports_expected", "reports_submitted", "reports_missing", "reports_late",
                      "disputes_filed", "disputes_mediated", "disputes_settled", "disputes_referred",
                      "community_work_refused", "community_work_accepted"]
NotificationGroup = Literal["all", "channel", "department", "day", "week", "month"]
NotificationMeasure = Literal["deliveries", "succeeded", "dead", "unreachable", "failed_attempts", "pending"]
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

    def echo(self) -> dict[str, Any]:
        """The filters as the answer repeats them."""
        return {"jurisdiction": self.jurisdiction, "channel": self.channel,
                "from": self.date_from and self.date_from.isoformat(), "to": self.date_to and self.date_to.isoformat(),
                "scope": list(self.who.jurisdictions)}

    def answer(self, body: dict[str, Any]) -> Response:
        body["filters"] = self.echo()
        body["as_of"] = self.as_of.isoformat() if self.as_of else None
        if not self.csv:
            return JSONResponse(body)
        return Response(to_csv(body), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{body["kpi"]}.csv"'})


class GridCommon(Common):
    """The filters of the grid's figures: every KPI's but the channel, which grid figures do not have."""

    def __init__(
        self,
        request: Request,
        jurisdiction: str | None = Query(None, pattern=CODE, description="district, street, community or grid code (prefix)"),
        date_from: Day | None = Query(None, alias="from", description="first day (China date), inclusive"),
        date_to: Day | None = Query(None, alias="to", description="last day (China date), inclusive"),
        as_of: Instant | None = Query(None, description="the figures as they stood at this instant (with offset)"),
        format: Format | None = Query(None, description="json (default) or csv; or send Accept: text/csv"),
        who: Principal = Depends(require(*READERS, jurisdiction_param="jurisdiction")),
    ) -> None:
        super().__init__(request, jurisdiction, None, date_from, date_to, as_of, format, who)

    def echo(self) -> dict[str, Any]:
        echoed = super().echo()
        echoed.pop("channel")
        return echoed


# ------------------------------------------------------------------------ the grid's answer, typed

_RATE = "a share in [0, 1] rounded to 4 places; null when its denominator is 0"
_MINUTES = "minutes, rounded to 2 places; null when no incident has the span"


class GridFigures(BaseModel):
    """The grid service's figures over the selected incidents (by the day they were reported, in
    the grid they were filed in), grid-days of daily reports, disputes (by the day filed) and
    community work pushed by departments (by the day and community)."""

    model_config = ConfigDict(extra="forbid")

    incidents_reported: int = Field(ge=0, description="incidents reported (信息收集)")
    incidents_created: int = Field(ge=0, description="of them, created (立案)")
    incidents_dispatched: int = Field(ge=0, description="of them, dispatched (派遣)")
    incidents_deferred: int = Field(ge=0, description="of them, deferred (缓办): out of the on-time figures")
    incidents_closed: int = Field(ge=0, description="of them, closed after the on-site check (核查结案)")
    incidents_due: int = Field(ge=0, description="not deferred, and closed or past their handling limit as of the "
                                                 "query: the on-time closure rate's denominator")
    incidents_closed_on_time: int = Field(ge=0, description="not deferred, closed on time (feedback within the "
                                                            "handling limit and the check within its hour)")
    incidents_overdue: int = Field(ge=0, description="incidents with at least one overdue limit")
    reworks: int = Field(ge=0, description="reworks ordered (返工)")
    incidents_reworked: int = Field(ge=0, description="closed incidents that were reworked at least once")
    reports_expected: int = Field(ge=0, description="grid-days a daily report was expected: reported, or named "
                                                    "by a missing-report check")
    reports_submitted: int = Field(ge=0, description="grid-days with a daily report")
    reports_missing: int = Field(ge=0, description="grid-days named missing and still without a report")
    reports_late: int = Field(ge=0, description="grid-days reported after the day")
    disputes_filed: int = Field(ge=0, description="disputes filed (矛盾纠纷)")
    disputes_mediated: int = Field(ge=0, description="of them, mediated at least once")
    disputes_settled: int = Field(ge=0, description="of them, settled by an agreement (调解成功)")
    disputes_referred: int = Field(ge=0, description="of them, referred to the judicial office or the police")
    community_work_refused: int = Field(ge=0, description="work pushed into communities refused by the access "
                                                          "system (准入)")
    community_work_accepted: int = Field(ge=0, description="work pushed into communities accepted by it")
    closure_rate: float | None = Field(description=f"closed ÷ dispatched: {_RATE}")
    on_time_closure_rate: float | None = Field(description=f"closed on time ÷ due: {_RATE}")
    rework_rate: float | None = Field(description=f"reworked ÷ closed: {_RATE}")
    report_coverage: float | None = Field(description=f"reports submitted ÷ expected: {_RATE}")
    mediation_rate: float | None = Field(description=f"mediated ÷ filed (调解率): {_RATE}")
    mediation_success_rate: float | None = Field(description=f"settled ÷ mediated (调解成功率): {_RATE}")
    minutes_to_create_median: float | None = Field(description=f"reported → created, median: {_MINUTES}")
    minutes_to_create_p90: float | None = Field(description=f"reported → created, 90th percentile: {_MINUTES}")
    minutes_to_dispatch_median: float | None = Field(description=f"reported → dispatched, median: {_MINUTES}")
    minutes_to_dispatch_p90: float | None = Field(description=f"reported → dispatched, 90th percentile: {_MINUTES}")
    minutes_to_handle_median: float | None = Field(description="dispatched → the last feedback before closure, "
                                                               f"median: {_MINUTES}")
    minutes_to_handle_p90: float | None = Field(description="dispatched → the last feedback before closure, "
                                                            f"90th percentile: {_MINUTES}")
    minutes_to_verify_median: float | None = Field(description=f"that feedback → closed, median: {_MINUTES}")
    minutes_to_verify_p90: float | None = Field(description=f"that feedback → closed, 90th percentile: {_MINUTES}")


class GridGroupFigures(GridFigures):
    label: str = Field(description="the group: a code, a day (YYYY-MM-DD), a week (YYYY-Www), a month (YYYY-MM) or "
                                   "'all'; community work grouped by grid falls in its community's code")


class ChartOut(BaseModel):
    measure: str
    labels: list[str]
    values: list[int]
    shares: list[float]


class GridFiltersOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    jurisdiction: str | None
    from_: date | None = Field(alias="from")
    to: date | None
    scope: list[str] = Field(description="the caller's jurisdictions the figures are limited to")


class GridKpis(BaseModel):
    kpi: Literal["grid"]
    group_by: GridGroup
    totals: GridFigures
    groups: list[GridGroupFigures]
    chart: ChartOut
    filters: GridFiltersOut
    as_of: datetime | None


_CSV = {"text/csv": {"schema": {"type": "string"}, "example": "grid,incidents_reported,...\r\n"}}


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
    # Every figure answers CSV when asked (format=csv or Accept: text/csv): documented on each
    # route, so that a client generated from the document expects it (the fuzzer found it missing).
    router = APIRouter(prefix="/v1/kpis", tags=["kpis"],
                       responses={200: {"content": _CSV, "description": "the figures (JSON, or CSV when asked)"}})

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

    @router.get("/grid", summary="Grids: incidents closed (on time), rework, times through the closed loop, "
                "daily report coverage, mediation, refused community work",
                response_model=GridKpis, response_model_by_alias=True)
    async def grid(common: GridCommon = Depends(), group_by: GridGroup = "all",
                   measure: GridMeasure = "incidents_closed", kpis: KpiService = Depends(service)) -> Response:
        return common.answer(await kpis.grid(common.filters(), group_by, measure, common.as_of))

    @router.get("/notifications", summary="Notifications: delivery rate, time to deliver (p50, p99), failed attempts "
                "and dead letters, per channel, department or period (a district's figures)")
    async def notifications(common: Common = Depends(), group_by: NotificationGroup = "all",
                            measure: NotificationMeasure = "deliveries",
                            kpis: KpiService = Depends(service)) -> Response:
        return common.answer(await kpis.notifications(common.filters(), group_by, measure, common.as_of))

    return router
