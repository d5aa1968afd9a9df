"""GET /v1/kpis/notifications: every delivery figure equals a recount in plain Python from the
raw delivery steps (statistics_notification_stream.recount), after a real faust worker turned a
mixed stream (in-app deliveries; webhooks sent at once, after failures, dead-lettered, replayed
after their dead letter and then sent, still pending; another district's; 10% of the records
published twice) into facts. Also the district scope, the channel filter and bad input."""
from __future__ import annotations

from typing import Any

import pytest

from statistics_notification_stream import DISTRICT, OTHER_DISTRICT, NotificationStream, generate_notifications, recount
from statistics_stack import load_facts


@pytest.fixture
async def topics(new_topic) -> dict[str, str]:
    """notifications' deliveries topic, fresh (this module's stats_settings and workers consume it)."""
    return {"deliveries": await new_topic("stats-deliveries", 3)}


@pytest.fixture
async def deliveries_loaded(stats_settings, topics, workers, stats) -> NotificationStream:
    stream = generate_notifications(deliveries=90, seed=7)
    await load_facts(stats_settings, stream, topics, workers)
    return stream


def assert_equal(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    for k, v in want.items():
        if k.startswith("seconds_"):  # rounded to 3 places by the API
            assert (got[k] is None) == (v is None), (where, k)
            assert v is None or got[k] == pytest.approx(v, abs=0.0011), (where, k, got[k], v)
        else:
            assert got[k] == v, (where, k, got[k], v)


async def test_delivery_figures_equal_a_recount(deliveries_loaded, stats, token):
    steps = {e.type.split(".")[3] for e in deliveries_loaded.events}
    assert steps == {"sent", "delivered", "failed", "dead_lettered"}  # as mixed as the figures need
    leader = token("leader", DISTRICT)
    for group_by in ("all", "channel", "department", "day"):
        r = await stats.get("/v1/kpis/notifications", params={"group_by": group_by}, headers=leader)
        assert r.status_code == 200, r.text
        body = r.json()
        want = recount(deliveries_loaded.events, group_by)
        groups = {g["label"]: g for g in body["groups"]}
        assert set(groups) == set(want) - {"total"}, group_by
        for label, figures in want.items():
            assert_equal(body["totals"] if label == "total" else groups[label], figures, f"{group_by} {label}")
    totals = (await stats.get("/v1/kpis/notifications", headers=leader)).json()["totals"]
    assert totals["dead"] > 0 and totals["pending"] > 0 and totals["failed_attempts"] > totals["dead"]
    assert totals["unreachable"] > 0  # applicants without a mobile number: not in the delivery rate
    assert 0 < totals["delivery_rate"] < 1


async def test_delivery_figures_are_a_districts_and_filter_by_channel(deliveries_loaded, stats, token):
    other = (await stats.get("/v1/kpis/notifications", headers=token("leader", OTHER_DISTRICT))).json()
    assert other["totals"]["deliveries"] == recount(deliveries_loaded.events, "all",
                                                    scope=(OTHER_DISTRICT,))["total"]["deliveries"] > 0
    # a street's leader: the deliveries are the district's, not the street's
    street = (await stats.get("/v1/kpis/notifications", headers=token("leader", f"{DISTRICT}001"))).json()
    assert street["totals"]["deliveries"] == 0 and street["groups"] == []
    r = await stats.get("/v1/kpis/notifications", params={"channel": "webhook", "group_by": "department"},
                        headers=token("leader", DISTRICT))
    want = recount(deliveries_loaded.events, "department", channel="webhook")
    assert {g["label"]: g["deliveries"] for g in r.json()["groups"]} == {
        label: f["deliveries"] for label, f in want.items() if label != "total"}
    assert "none" not in {g["label"] for g in r.json()["groups"]}  # in-app deliveries have no department


async def test_delivery_figures_refuse_bad_input(stats, token):
    leader = token("leader", DISTRICT)
    for params in ({"group_by": "grid"}, {"measure": "everything"}, {"from": "2026-03-09", "to": "2026-03-02"}):
        r = await stats.get("/v1/kpis/notifications", params=params, headers=leader)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", (params, r.text)
    assert (await stats.get("/v1/kpis/notifications", headers=token("window_clerk", DISTRICT))).status_code == 403
    assert (await stats.get("/v1/kpis/notifications")).status_code == 401
