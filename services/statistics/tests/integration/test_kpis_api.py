"""The KPI API's contract: jurisdiction scope, filters, as_of, CSV, charts, bad input."""
from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timedelta, timezone

from civicgrid_statistics.domain.facts import fact_of

from event_stream import CHINA, COMMUNITIES, STREET

from test_kpis_from_raw_events import CASE_FIGURES


async def test_as_of_gives_the_figures_as_they_stood(loaded, stats, token):
    instant = datetime(2026, 9, 3, 12, 0, tzinfo=CHINA)
    expected = loaded.as_of(instant).expected(now=instant)["cases"]["all"]
    r = await stats.get("/v1/kpis/cases", params={"as_of": instant.isoformat()}, headers=token())
    assert r.status_code == 200, r.text
    totals = r.json()["totals"]
    assert {k: totals[k] for k in CASE_FIGURES} == {k: expected[k] for k in CASE_FIGURES}
    assert totals["registered"] < loaded.expected()["cases"]["all"]["registered"]


async def test_a_community_leader_sees_only_their_community(loaded, stats, token):
    mine = COMMUNITIES[0]
    r = await stats.get("/v1/kpis/cases", params={"group_by": "community"}, headers=token("leader", mine))
    assert r.status_code == 200, r.text
    assert [g["label"] for g in r.json()["groups"]] == [mine]
    assert r.json()["totals"]["registered"] == loaded.expected()["cases"][mine]["registered"]
    other = await stats.get("/v1/kpis/cases", params={"jurisdiction": COMMUNITIES[1]}, headers=token("leader", mine))
    assert other.status_code == 403
    assert other.headers["content-type"].startswith("application/problem+json")
    street = await stats.get("/v1/kpis/complaints", params={"jurisdiction": STREET}, headers=token("leader", mine))
    assert street.status_code == 403


async def test_no_token_no_figures_and_a_clerk_has_none(stats, token):
    assert (await stats.get("/v1/kpis/cases")).status_code == 401
    assert (await stats.get("/v1/kpis/cases", headers=token("window_clerk", STREET))).status_code == 403


async def test_filters_by_affair_channel_and_dates(loaded, stats, token):
    regs = [e for e in loaded.events if e.type == "civicgrid.intake.case.registered.v1"]
    day = datetime(2026, 9, 2, tzinfo=CHINA).date()
    want = sum(1 for e in regs if e.data["affair_code"] == "dibao" and e.data["channel"] == "window"
               and datetime.fromisoformat(e.data["registered_at"]).date() >= day)
    r = await stats.get("/v1/kpis/cases", headers=token(), params={
        "affair": "dibao", "channel": "window", "from": day.isoformat(), "to": "2026-12-31"})
    assert r.status_code == 200, r.text
    assert r.json()["totals"]["registered"] == want


async def test_per_day_bars(loaded, stats, token):
    regs = [e for e in loaded.events if e.type == "civicgrid.intake.case.registered.v1"]
    per_day = Counter(datetime.fromisoformat(e.data["registered_at"]).date().isoformat() for e in regs)
    r = await stats.get("/v1/kpis/cases", params={"group_by": "day"}, headers=token())
    chart = r.json()["chart"]
    assert dict(zip(chart["labels"], chart["values"])) == dict(per_day)
    assert abs(sum(chart["shares"]) - 1) < 0.001
    month = (await stats.get("/v1/kpis/cases", params={"group_by": "month"}, headers=token())).json()["chart"]
    assert sum(month["values"]) == len(regs) and all(len(label) == 7 for label in month["labels"])


async def test_csv_by_accept_header_and_by_format(loaded, stats, token):
    for kw in ({"headers": {**token(), "Accept": "text/csv"}, "params": {"group_by": "community"}},
               {"headers": token(), "params": {"group_by": "community", "format": "csv"}}):
        r = await stats.get("/v1/kpis/cases", **kw)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["community"] for row in rows] == [*COMMUNITIES, "total"]
        assert int(rows[-1]["registered"]) == loaded.expected()["cases"]["all"]["registered"]


async def test_complaints_per_department_satisfaction_and_workload(loaded, stats, token):
    routed = Counter(e.data["routing"]["department"] for e in loaded.events
                     if e.type == "civicgrid.intake.complaint.routed.v1")
    r = await stats.get("/v1/kpis/complaints", params={"group_by": "department"}, headers=token())
    got = {g["label"]: g["received"] for g in r.json()["groups"]}
    assert {k: v for k, v in got.items() if k != "unrouted"} == dict(routed)

    rated = [e.data for e in loaded.events if e.type == "civicgrid.intake.case.rated.v1"]
    s = (await stats.get("/v1/kpis/satisfaction", headers=token())).json()
    assert dict(zip(s["chart"]["labels"], s["chart"]["values"])) == {
        level: sum(1 for d in rated if d["level"] == level) for level in s["chart"]["labels"]}
    assert s["totals"]["bad_reviews"] == sum(1 for d in rated if d["bad_review"])

    acted = Counter(e.data["actor"] for e in loaded.events if e.type == "civicgrid.approval.approval.acted.v1")
    w = (await stats.get("/v1/kpis/workload", headers=token())).json()
    reviewers = {g["label"]: g for g in w["groups"] if g["role"] == "reviewer"}
    assert {k: g["actions"] for k, g in reviewers.items()} == dict(acted)
    assert all(g["median_hours_to_act"] > 0 for g in reviewers.values())


async def test_bad_parameters_are_field_errors(stats, token):
    r = await stats.get("/v1/kpis/cases", params={"from": "2026-10-02", "to": "2026-10-01"}, headers=token())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "from"
    for params in ({"group_by": "planet"}, {"jurisdiction": "12"}, {"from": "yesterday"}, {"as_of": "2026-10-01T00:00"}):
        r = await stats.get("/v1/kpis/cases", params=params, headers=token())
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


def test_an_event_type_statistics_does_not_know_counts_for_nothing():
    now = datetime.now(timezone.utc)
    assert fact_of("e1", "civicgrid.approval.approval.teleported.v1", "a", now, {"case_id": "c"}) is None
    assert fact_of("e2", "civicgrid.intake.case.accepted.v2", "c", now, {"accepted_at": now.isoformat()}) is None
    assert fact_of("e3", "not a type", "c", now, {}) is None
    known = fact_of("e4", "civicgrid.approval.approval.acted.v1", "approval-1", now - timedelta(days=1),
                    {"case_id": "case-1", "acted_at": now.isoformat(), "actor": "r", "comment": "secret"})
    assert known is not None and known.subject == "case-1" and "comment" not in known.data
