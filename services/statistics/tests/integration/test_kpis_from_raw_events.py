"""Every KPI the API serves equals a count computed independently from the raw events, after a
faust worker turned a generated stream (with duplicates, as an at-least-once relay publishes)
into facts."""
from __future__ import annotations

from event_stream import COMMUNITIES

CASE_FIGURES = ("registered", "accepted", "refused", "withdrawn", "completed", "completed_on_time", "overdue_now",
                "green_channelled", "supplemented", "extended", "sent_back", "returned")
COMPLAINT_FIGURES = ("received", "responded", "resolved", "rated", "satisfied")


async def test_case_figures_per_community_equal_the_raw_count(loaded, stats, token):
    expected = loaded.expected()["cases"]
    r = await stats.get("/v1/kpis/cases", params={"group_by": "community"}, headers=token())
    assert r.status_code == 200, r.text
    body = r.json()
    got = {g["label"]: g for g in body["groups"]}
    assert set(got) == set(COMMUNITIES)
    for community in COMMUNITIES:
        assert {k: got[community][k] for k in CASE_FIGURES} == {k: expected[community][k] for k in CASE_FIGURES}
    assert {k: body["totals"][k] for k in CASE_FIGURES} == {k: expected["all"][k] for k in CASE_FIGURES}
    assert body["chart"]["labels"] == sorted(COMMUNITIES)
    assert sum(body["chart"]["values"]) == expected["all"]["registered"]


async def test_cases_of_one_jurisdiction(loaded, stats, token):
    community = COMMUNITIES[1]
    expected = loaded.expected()["cases"][community]
    r = await stats.get("/v1/kpis/cases", params={"jurisdiction": community}, headers=token())
    assert r.status_code == 200, r.text
    totals = r.json()["totals"]
    for k in ("registered", "accepted", "refused", "completed"):
        assert totals[k] == expected[k], k
    assert totals["on_time_rate"] == round(expected["completed_on_time"] / expected["completed"], 4)


async def test_share_of_each_affair(loaded, stats, token):
    expected = loaded.expected()["cases_by_affair"]
    r = await stats.get("/v1/kpis/cases", params={"group_by": "affair"}, headers=token())
    chart = r.json()["chart"]
    total = sum(v["registered"] for v in expected.values())
    assert chart["labels"] == sorted(expected)
    assert chart["values"] == [expected[a]["registered"] for a in sorted(expected)]
    assert chart["shares"] == [round(expected[a]["registered"] / total, 4) for a in sorted(expected)]


async def test_complaint_rates_equal_the_raw_count(loaded, stats, token):
    expected = loaded.expected()["complaints"]
    r = await stats.get("/v1/kpis/complaints", params={"group_by": "community"}, headers=token())
    assert r.status_code == 200, r.text
    got = {g["label"]: g for g in r.json()["groups"]}
    for community in COMMUNITIES:
        assert {k: got[community][k] for k in COMPLAINT_FIGURES} == {k: expected[community][k] for k in COMPLAINT_FIGURES}
    totals = r.json()["totals"]
    e = expected["all"]
    assert totals["response_rate"] == round(e["responded"] / e["received"], 4)
    assert totals["resolution_rate"] == round(e["resolved"] / e["received"], 4)
    assert totals["satisfaction_rate"] == round(e["satisfied"] / e["rated"], 4)
