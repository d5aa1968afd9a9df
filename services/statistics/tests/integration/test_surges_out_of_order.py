"""Exactly one alert per surge whatever order the facts arrive in: the alert service over the real
PostgreSQL (no worker, no broker: the facts are handed to the fact service in a chosen order).

The first release kept only the last surge's span per key, so a late event of an earlier surge,
arriving after a later surge had been raised, raised its surge a second time: one surge split
into two alerts. That is what a worker killed mid-stream, or partitions read at different
speeds, produced in test_window_alerts."""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

import pytest

from civicgrid_statistics.bootstrap import open_statistics
from civicgrid_statistics.domain.facts import Fact

from event_stream import CHINA

T0 = datetime(2026, 10, 12, 9, 0, tzinfo=CHINA)
RAISED = "civicgrid.statistics.alert.raised.v1"


def complaint(community: str, at: datetime, category: str = "public_order") -> Fact:
    cid = f"cp-{uuid.uuid4().hex[:12]}"
    return Fact(event_id=str(uuid.uuid4()), kind="intake.complaint.received", subject=cid, recorded_at=at,
                occurred_at=at, data={"jurisdiction": community, "category": category})


def two_surges(community: str) -> tuple[list[Fact], list[Fact]]:
    """Surge A: 7 complaints 6 minutes apart; surge B: 6 complaints two days later."""
    a = [complaint(community, T0 + timedelta(minutes=6 * i)) for i in range(7)]
    b = [complaint(community, T0 + timedelta(days=2, minutes=5 * i)) for i in range(6)]
    return a, b


@pytest.fixture
async def statistics(stats_settings):
    stats_settings.alert_complaint_threshold, stats_settings.alert_complaint_window_minutes = 5, 60
    opened = await open_statistics(stats_settings)
    yield opened
    await opened.pool.close()


async def alerts_of(statistics, community: str) -> list[dict]:
    rows = await statistics.pool.fetch("SELECT data FROM events WHERE type = $1 AND stream_id = $2 ORDER BY version",
                                       RAISED, f"alert:complaint_surge:{community}:public_order")
    return [r["data"] for r in rows]


async def keep_one_by_one(statistics, facts: list[Fact]) -> None:
    for fact in facts:
        await statistics.facts.keep([fact], {})


async def test_late_events_of_an_earlier_surge_do_not_raise_it_again(statistics):
    community = "320104001001"
    a, b = two_surges(community)
    # A's first five (its alert), all of B (the second alert), then A's last two, late.
    await keep_one_by_one(statistics, a[:5] + b + a[5:])
    alerts = await alerts_of(statistics, community)
    assert [x["window_end"][:10] for x in alerts] == ["2026-10-12", "2026-10-14"]
    assert [x["count"] for x in alerts] == [5, 5]
    # A redelivery of everything, in another order, adds nothing.
    await keep_one_by_one(statistics, list(reversed(a + b)))
    assert len(await alerts_of(statistics, community)) == 2


@pytest.mark.parametrize("seed", range(12))
async def test_two_surges_raise_two_alerts_in_any_order(statistics, seed):
    community = f"3201040010{seed:02d}"
    a, b = two_surges(community)
    order = a + b
    random.Random(seed).shuffle(order)
    await keep_one_by_one(statistics, order)
    alerts = await alerts_of(statistics, community)
    assert sorted(x["window_end"][:10] for x in alerts) == ["2026-10-12", "2026-10-14"]


async def test_several_facts_of_one_surge_in_one_transaction_raise_it_once(statistics):
    community = "320104001099"
    a, b = two_surges(community)
    await statistics.facts.keep(b[::-1] + a[::-1], {})
    assert len(await alerts_of(statistics, community)) == 2


async def test_late_events_that_bridge_two_raised_surges_merge_them_and_raise_nothing_more(statistics):
    """The limit, stated: two surges an hour and a half apart are raised; late complaints in
    between show that they were one. Both alerts have gone out (an alert is not taken back);
    their spans merge, and what comes later in the merged span raises nothing."""
    community = "320104001098"
    early = [complaint(community, T0 + timedelta(minutes=5 * i)) for i in range(5)]  # 9:00-9:20
    late = [complaint(community, T0 + timedelta(minutes=150 + 5 * i)) for i in range(5)]  # 11:30-11:50
    await keep_one_by_one(statistics, early + late)
    assert len(await alerts_of(statistics, community)) == 2
    bridge = [complaint(community, T0 + timedelta(minutes=70 + 5 * i)) for i in range(5)]  # 10:10-10:30
    await keep_one_by_one(statistics, bridge)
    assert len(await alerts_of(statistics, community)) == 2
    spans = await statistics.pool.fetch("SELECT alert FROM statistics_alert_spans WHERE stream_id = $1",
                                        f"alert:complaint_surge:{community}:public_order")
    assert [r["alert"] for r in spans] == [1]
    more = [complaint(community, T0 + timedelta(minutes=40 + 7 * i)) for i in range(8)]
    await keep_one_by_one(statistics, more)
    assert len(await alerts_of(statistics, community)) == 2
