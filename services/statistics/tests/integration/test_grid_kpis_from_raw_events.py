"""GET /v1/kpis/grid: every grid figure the API serves equals a recount in plain Python from the
raw grid events (statistics_grid_stream.recount), after a real faust worker turned a mixed
stream (incidents on time, late, deferred, reworked, open; daily reports submitted, late and
missing over two weeks and five grids; disputes settled, mediated without agreement, referred;
community work refused and accepted; 10% of the records published twice) into facts. Also:
as_of, the filters, the jurisdiction scope, CSV, bad input, no free text in the facts, and a
rebuild that equals the live version."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from typing import Any

import asyncpg
import pytest

from civicgrid_statistics.entrypoints.api.kpis import GridKpis
from civicgrid_statistics.entrypoints.rebuild import rebuild_fact_store

from statistics_grid_stream import (
    CHINA, COMMUNITIES, FIGURES, FREE_TEXT, GRIDS, OTHER_STREET_GRID, STREET, TOPICS, GridStream, generate_grid,
    recount,
)
from statistics_stack import load_facts

DISTRICT = STREET[:6]


@pytest.fixture
async def topics(new_topic) -> dict[str, str]:
    """The grid's four topics, fresh (this module's stats_settings and workers consume these)."""
    return {name: await new_topic(f"stats-grid-{name}", 3 if name != "community_work" else 1) for name in TOPICS}


@pytest.fixture
async def grid_loaded(stats_settings, topics, workers, stats) -> GridStream:
    stream = generate_grid(incidents=70, disputes=30, seed=23)
    await load_facts(stats_settings, stream, topics, workers)
    return stream


def assert_figures_equal(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    for k in FIGURES:
        assert got[k] == want[k], (where, k, got[k], want[k])
    for k, v in want.items():
        if k.startswith("minutes_"):  # percentiles rounded to 2 places by the API
            assert (got[k] is None) == (v is None), (where, k)
            assert v is None or got[k] == pytest.approx(round(v, 2), abs=0.011), (where, k, got[k], v)
        elif k not in FIGURES:  # the rates, rounded to 4 places on both sides
            assert got[k] == v, (where, k, got[k], v)


def assert_body_equals(body: dict[str, Any], want: dict[str, dict[str, Any]], where: str) -> None:
    GridKpis.model_validate(body)  # the answer is what the OpenAPI document says
    groups = {g["label"]: g for g in body["groups"]}
    assert set(groups) == set(want) - {"total"}, where
    assert [g["label"] for g in body["groups"]] == sorted(groups), where
    for label, figures in want.items():
        assert_figures_equal(body["totals"] if label == "total" else groups[label], figures, f"{where} {label}")


async def test_grid_kpis_equal_a_recount(grid_loaded, stats, token):
    events = grid_loaded.events
    kinds = {e.type for e in events}
    # The stream is as mixed as the figures need.
    assert {"civicgrid.grid.incident.deferred.v1", "civicgrid.grid.incident.rework_ordered.v1",
            "civicgrid.grid.daily_report.missing.v1", "civicgrid.grid.dispute.settled.v1",
            "civicgrid.grid.dispute.referred.v1", "civicgrid.grid.community_work.refused.v1"} <= kinds
    headers = token("leader", DISTRICT)

    for group_by in ("all", "community", "grid", "day", "week"):
        now = datetime.now(timezone.utc)
        r = await stats.get("/v1/kpis/grid", params={"group_by": group_by}, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        want = recount(events, group_by, now=now)
        assert_body_equals(body, want, group_by)
        assert body["kpi"] == "grid" and body["group_by"] == group_by
        assert body["chart"]["measure"] == "incidents_closed"
        assert body["chart"]["values"] == [want[label]["incidents_closed"] for label in body["chart"]["labels"]]

    total = recount(events, "all", now=datetime.now(timezone.utc))["total"]
    # Every figure has something to count: no rate is 0 ÷ 0, no span is empty, every fate occurred.
    assert all(v is not None for v in total.values()), total
    assert 0 < total["incidents_deferred"] and 0 < total["incidents_reworked"] < total["incidents_closed"]
    assert 0 < total["incidents_closed_on_time"] < total["incidents_due"]
    assert total["incidents_closed"] < total["incidents_dispatched"] < total["incidents_reported"]
    assert 0 < total["reports_missing"] and 0 < total["reports_late"]
    assert 0 < total["disputes_settled"] < total["disputes_mediated"] < total["disputes_filed"]

    # As it stood in the middle of the second week: fewer facts, and handling limits still running.
    as_of = datetime(2026, 3, 10, 12, 0, tzinfo=CHINA)
    r = await stats.get("/v1/kpis/grid", params={"group_by": "street", "as_of": as_of.isoformat()}, headers=headers)
    assert r.status_code == 200, r.text
    want = recount(events, "street", now=datetime.now(timezone.utc), as_of=as_of)
    assert_body_equals(r.json(), want, "street as of")
    assert want["total"]["incidents_reported"] < total["incidents_reported"]
    assert r.json()["as_of"] == as_of.isoformat()

    # One community, one week, by month.
    params = {"group_by": "month", "jurisdiction": COMMUNITIES[1], "from": "2026-03-09", "to": "2026-03-13"}
    r = await stats.get("/v1/kpis/grid", params=params, headers=headers)
    assert r.status_code == 200, r.text
    want = recount(events, "month", now=datetime.now(timezone.utc), jurisdiction=COMMUNITIES[1],
                   date_from=date(2026, 3, 9), date_to=date(2026, 3, 13))
    assert_body_equals(r.json(), want, "month, one community, one week")
    assert r.json()["filters"] == {"jurisdiction": COMMUNITIES[1], "from": "2026-03-09", "to": "2026-03-13",
                                   "scope": [DISTRICT]}


async def test_grid_kpis_scope_csv_and_what_the_facts_keep(grid_loaded, stats_settings, stats, token):
    events = grid_loaded.events
    now = datetime.now(timezone.utc)

    # A street leader sees their street only: the other street's grid is in no group and no total.
    r = await stats.get("/v1/kpis/grid", params={"group_by": "grid"}, headers=token("leader", STREET))
    assert r.status_code == 200, r.text
    assert_body_equals(r.json(), recount(events, "grid", now=now, scope=(STREET,)), "street leader")
    labels = {g["label"] for g in r.json()["groups"]}
    assert OTHER_STREET_GRID not in labels and set(GRIDS) <= labels
    # A grid's leader: community work is its community's, so not in a grid's figures.
    mine = GRIDS[0]
    r = await stats.get("/v1/kpis/grid", headers=token("leader", mine))
    assert r.status_code == 200, r.text
    assert_body_equals(r.json(), recount(events, "all", now=now, scope=(mine,)), "grid leader")
    assert r.json()["totals"]["community_work_refused"] == 0
    for params in ({"jurisdiction": GRIDS[1]}, {"jurisdiction": STREET}):
        other = await stats.get("/v1/kpis/grid", params=params, headers=token("leader", mine))
        assert other.status_code == 403, other.text
        assert other.headers["content-type"].startswith("application/problem+json")

    # CSV: one line per group and the total, the same numbers.
    r = await stats.get("/v1/kpis/grid", params={"group_by": "community"},
                        headers={**token("auditor", DISTRICT), "Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    want = recount(events, "community", now=now)
    assert [row["community"] for row in rows] == [*sorted(set(want) - {"total"}), "total"]
    for row in rows:
        figures = want["total" if row["community"] == "total" else row["community"]]
        assert {k: int(row[k]) for k in FIGURES} == {k: figures[k] for k in FIGURES}

    # No free text, no location, no person's name in any fact.
    conn = await asyncpg.connect(stats_settings.dsn())
    try:
        rows = await conn.fetch("SELECT kind, data::text AS data FROM read_statistics.facts")
    finally:
        await conn.close()
    assert {r["kind"].split(".")[0] for r in rows} == {"grid"}
    assert not any(FREE_TEXT in r["data"] or '"lat"' in r["data"] or "worker-1" in r["data"] for r in rows)
    assert "grid.stability_sweep.recorded" not in {r["kind"] for r in rows}  # counted for nothing
    unique = {e.id for e in events if e.type.endswith(".v1") and "stability_sweep" not in e.type}
    assert len(rows) == len(unique)  # one fact per event, however often published

    # A rebuild replays the grid topics into a version equal to the live one (facts and figures).
    report = await rebuild_fact_store(stats_settings)
    assert report.equal and report.swapped, report.describe()


async def test_grid_kpis_refuse_bad_input(stats, token):
    assert (await stats.get("/v1/kpis/grid")).status_code == 401
    assert (await stats.get("/v1/kpis/grid", headers=token("window_clerk", STREET))).status_code == 403
    r = await stats.get("/v1/kpis/grid", params={"from": "2026-03-10", "to": "2026-03-09"}, headers=token())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "from"
    for params in ({"group_by": "affair"}, {"group_by": "channel"}, {"measure": "description"},
                   {"jurisdiction": "3201"}, {"to": "tomorrow"}, {"as_of": "2026-03-10T12:00"}, {"format": "xml"}):
        r = await stats.get("/v1/kpis/grid", params=params, headers=token())
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    # Nothing recorded yet: zero counts and no rates (0 ÷ 0 is no rate).
    r = await stats.get("/v1/kpis/grid", headers=token())
    assert r.status_code == 200 and r.json()["groups"] == []
    assert r.json()["totals"]["incidents_closed"] == 0 and r.json()["totals"]["closure_rate"] is None
