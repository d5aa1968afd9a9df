"""The KPI service: asks the fact store's reader for raw figures and shapes them for leaders
(rates, working-day handling times, pie/bar charts). Knows no SQL and no HTTP."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Awaitable, Callable, Protocol, Sequence

from civicgrid_common.calendar import WorkingCalendar

from civicgrid_statistics.domain.figures import SATISFACTION_LEVELS, Filters, chart, handling_days, percentile, rate

COUNTS_CASES = ("registered", "accepted", "refused", "withdrawn", "completed", "approved", "completed_on_time",
                "overdue_now", "green_channelled", "supplemented", "supplement_requested", "returned", "extended",
                "sent_back")
COUNTS_COMPLAINTS = ("received", "responded", "responded_on_time", "resolved", "rated", "satisfied", "reopened")
# The grid's counts by family (the reader's rows of each family carry these and a label).
COUNTS_GRID: dict[str, tuple[str, ...]] = {
    "incidents": ("incidents_reported", "incidents_created", "incidents_dispatched", "incidents_deferred",
                  "incidents_closed", "incidents_due", "incidents_closed_on_time", "incidents_overdue", "reworks",
                  "incidents_reworked"),
    "reports": ("reports_expected", "reports_submitted", "reports_missing", "reports_late"),
    "disputes": ("disputes_filed", "disputes_mediated", "disputes_settled", "disputes_referred"),
    "community_work": ("community_work_refused", "community_work_accepted"),
}
GRID_COUNTS = tuple(k for family in COUNTS_GRID.values() for k in family)
# The closed loop's spans, in minutes: reported→created, reported→dispatched, dispatched→the
# feedback that passed the check, that feedback→closed.
GRID_SPANS = ("create", "dispatch", "handle", "verify")


# Notifications' deliveries: the counts of each group, and the seconds from recorded to
# succeeded (sent or delivered) of each delivery that succeeded.
# unreachable: dead-lettered because the recipient has no contact on the channel (an applicant
# without a mobile number); neither a success nor a failure of the channel, so not in the rate.
COUNTS_NOTIFICATIONS = ("deliveries", "succeeded", "dead", "unreachable", "failed_attempts")


class KpiReader(Protocol):
    async def cases(self, filters: Filters, group_by: str, as_of: datetime | None) -> list[dict[str, Any]]: ...
    async def complaints(self, filters: Filters, group_by: str, as_of: datetime | None) -> list[dict[str, Any]]: ...
    async def satisfaction(self, filters: Filters, as_of: datetime | None) -> dict[str, Any]: ...
    async def workload(self, filters: Filters, as_of: datetime | None) -> dict[str, list[dict[str, Any]]]: ...
    async def grid(self, filters: Filters, group_by: str, as_of: datetime | None) -> dict[str, list[dict[str, Any]]]: ...
    async def notifications(self, filters: Filters, group_by: str, as_of: datetime | None) -> list[dict[str, Any]]: ...


def _spans(raw: Sequence[str]) -> list[tuple[date, date]]:
    out = []
    for s in raw:
        a, c = s.split("/")
        out.append((date.fromisoformat(a), date.fromisoformat(c)))
    return out


class KpiService:
    def __init__(self, reader: KpiReader, calendar: Callable[[], Awaitable[WorkingCalendar]] | None = None) -> None:
        """`calendar`: the district's calendar with its overrides (applied from intake's events),
        loaded for each request; None: the official calendar alone."""
        self.reader = reader
        self.calendar = calendar

    async def _working_calendar(self) -> WorkingCalendar:
        return await self.calendar() if self.calendar is not None else WorkingCalendar()

    @staticmethod
    def _case_row(label: str, counts: dict[str, int], spans: list[tuple[date, date]],
                  calendar: WorkingCalendar) -> dict[str, Any]:
        days = handling_days(spans, calendar)
        return {"label": label, **counts,
                "on_time_rate": rate(counts["completed_on_time"], counts["completed"]),
                "handling_working_days_median": percentile(days, 0.5),
                "handling_working_days_p90": percentile(days, 0.9)}

    async def cases(self, filters: Filters, group_by: str, measure: str, as_of: datetime | None) -> dict[str, Any]:
        raw = await self.reader.cases(filters, group_by, as_of)
        calendar = await self._working_calendar()
        groups, all_spans = [], []
        totals = {k: 0 for k in COUNTS_CASES}
        for r in raw:
            spans = _spans(r["spans"])
            all_spans += spans
            counts = {k: int(r[k]) for k in COUNTS_CASES}
            for k in COUNTS_CASES:
                totals[k] += counts[k]
            groups.append(self._case_row(r["label"], counts, spans, calendar))
        total = self._case_row("all", totals, all_spans, calendar)
        total.pop("label")
        return {"kpi": "cases", "group_by": group_by, "totals": total, "groups": groups, "chart": chart(groups, measure)}

    async def complaints(self, filters: Filters, group_by: str, measure: str, as_of: datetime | None) -> dict[str, Any]:
        raw = await self.reader.complaints(filters, group_by, as_of)

        def shaped(label: str, c: dict[str, int]) -> dict[str, Any]:
            # The three rates (响应率, 解决率, 满意率).
            return {"label": label, **c, "response_rate": rate(c["responded"], c["received"]),
                    "resolution_rate": rate(c["resolved"], c["received"]),
                    "satisfaction_rate": rate(c["satisfied"], c["rated"])}

        groups = [shaped(r["label"], {k: int(r[k]) for k in COUNTS_COMPLAINTS}) for r in raw]
        totals = shaped("all", {k: sum(g[k] for g in groups) for k in COUNTS_COMPLAINTS})
        totals.pop("label")
        return {"kpi": "complaints", "group_by": group_by, "totals": totals, "groups": groups,
                "chart": chart(groups, measure)}

    async def satisfaction(self, filters: Filters, as_of: datetime | None) -> dict[str, Any]:
        raw = await self.reader.satisfaction(filters, as_of)
        groups = [{"label": level, "reviews": int(raw["levels"].get(level, 0))} for level in SATISFACTION_LEVELS]
        totals = {k: int(raw[k]) for k in ("rated", "bad_reviews", "follow_ups", "called_back_on_time", "fixed_on_time")}
        totals["bad_review_rate"] = rate(totals["bad_reviews"], totals["rated"])
        totals["fixed_on_time_rate"] = rate(totals["fixed_on_time"], totals["follow_ups"])
        return {"kpi": "satisfaction", "group_by": "level", "totals": totals, "groups": groups,
                "chart": chart(groups, "reviews")}

    async def workload(self, filters: Filters, as_of: datetime | None) -> dict[str, Any]:
        raw = await self.reader.workload(filters, as_of)
        clerks = [{"label": r["label"], "role": "clerk", "actions": int(r["actions"]), "median_hours_to_act": None}
                  for r in raw["clerks"]]
        reviewers = [{"label": r["label"], "role": "reviewer", "actions": int(r["actions"]),
                      "median_hours_to_act": None if r["median_hours_to_act"] is None
                      else round(float(r["median_hours_to_act"]), 2)} for r in raw["reviewers"]]
        groups = clerks + reviewers
        totals = {"clerk_actions": sum(g["actions"] for g in clerks),
                  "reviewer_actions": sum(g["actions"] for g in reviewers)}
        return {"kpi": "workload", "group_by": "person", "totals": totals, "groups": groups,
                "chart": chart(groups, "actions")}

    @staticmethod
    def _grid_row(label: str, c: dict[str, int], minutes: dict[str, list[float]]) -> dict[str, Any]:
        row: dict[str, Any] = {"label": label, **c,
                               "closure_rate": rate(c["incidents_closed"], c["incidents_dispatched"]),
                               "on_time_closure_rate": rate(c["incidents_closed_on_time"], c["incidents_due"]),
                               "rework_rate": rate(c["incidents_reworked"], c["incidents_closed"]),
                               "report_coverage": rate(c["reports_submitted"], c["reports_expected"]),
                               "mediation_rate": rate(c["disputes_mediated"], c["disputes_filed"]),
                               "mediation_success_rate": rate(c["disputes_settled"], c["disputes_mediated"])}
        for span in GRID_SPANS:
            for name, q in (("median", 0.5), ("p90", 0.9)):
                value = percentile(minutes[span], q)
                row[f"minutes_to_{span}_{name}"] = None if value is None else round(value, 2)
        return row

    async def grid(self, filters: Filters, group_by: str, measure: str, as_of: datetime | None) -> dict[str, Any]:
        """The grid service's figures: each family's rows merged by label (a label one family
        lacks counts zero there), the totals summed and their percentiles over every span."""
        raw = await self.reader.grid(filters, group_by, as_of)
        rows = {family: {r["label"]: r for r in raw.get(family, [])} for family in COUNTS_GRID}
        labels = sorted({label for by_label in rows.values() for label in by_label})
        groups = []
        totals = {k: 0 for k in GRID_COUNTS}
        all_minutes: dict[str, list[float]] = {span: [] for span in GRID_SPANS}
        for label in labels:
            counts: dict[str, int] = {}
            for family, names in COUNTS_GRID.items():
                r = rows[family].get(label)
                counts.update({k: int(r[k]) if r is not None else 0 for k in names})
            incidents = rows["incidents"].get(label)
            minutes = {span: [float(m) for m in incidents[f"minutes_to_{span}"]] if incidents else []
                       for span in GRID_SPANS}
            for k in GRID_COUNTS:
                totals[k] += counts[k]
            for span in GRID_SPANS:
                all_minutes[span] += minutes[span]
            groups.append(self._grid_row(label, counts, minutes))
        total = self._grid_row("all", totals, all_minutes)
        total.pop("label")
        return {"kpi": "grid", "group_by": group_by, "totals": total, "groups": groups, "chart": chart(groups, measure)}

    @staticmethod
    def _notification_row(label: str, c: dict[str, int], seconds: list[float]) -> dict[str, Any]:
        row: dict[str, Any] = {"label": label, **c,
                               "pending": c["deliveries"] - c["succeeded"] - c["dead"] - c["unreachable"],
                               # of the deliveries that came to an end: sent or delivered, or given up
                               "delivery_rate": rate(c["succeeded"], c["succeeded"] + c["dead"])}
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            value = percentile(seconds, q)
            row[f"seconds_to_deliver_{name}"] = None if value is None else round(value, 3)
        return row

    async def notifications(self, filters: Filters, group_by: str, measure: str, as_of: datetime | None) -> dict[str, Any]:
        """Notifications' deliveries per channel, department or period: the delivery rate, the
        time from recorded to sent or delivered (p50, p99), the failed attempts and dead letters."""
        groups, totals, every = [], {k: 0 for k in COUNTS_NOTIFICATIONS}, []
        for r in await self.reader.notifications(filters, group_by, as_of):
            counts = {k: int(r[k]) for k in COUNTS_NOTIFICATIONS}
            seconds = [float(x) for x in r["seconds_to_deliver"]]
            for k in COUNTS_NOTIFICATIONS:
                totals[k] += counts[k]
            every += seconds
            groups.append(self._notification_row(str(r["label"]), counts, seconds))
        total = self._notification_row("all", totals, every)
        total.pop("label")
        return {"kpi": "notifications", "group_by": group_by, "totals": total, "groups": groups,
                "chart": chart(groups, measure)}
