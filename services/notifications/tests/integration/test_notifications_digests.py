"""Preferences and digests on the real database, on a controlled clock: a reviewer who takes
an hourly digest finds a waiting case in the inbox at once but is not pushed it; at the hour one
digest item gathers what they have not read, once, whatever the timer does; urgent and other
rules' items are pushed as before; a bad choice changes nothing."""
from __future__ import annotations

import asyncio
import copy
import json
from datetime import datetime, timezone


import httpx
import pytest

from notification_events import event

from civicgrid_common.calendar.working_days import CHINA_TZ

from civicgrid_notifications.domain.preferences import DIGEST_COMPILED
from civicgrid_notifications.domain.seed import sample_events

STARTED = "civicgrid.approval.approval.started.v1"
WARNED = "civicgrid.approval.approval.deadline_warned.v1"
COMMUNITY = "320104001001"


def china(h: int, m: int = 0) -> datetime:
    return datetime(2026, 3, 4, h, m, tzinfo=CHINA_TZ).astimezone(timezone.utc)


def started(n: int) -> object:
    data = {**copy.deepcopy(sample_events()[STARTED][0]["data"]), "case_number": f"QH-20260304-{n:04d}",
            "case_id": f"5b0e2a57-3c39-4c43-9d53-0a4c1d1e{n:04d}"}
    return event(STARTED, data, subject=f"approval:{data['case_id']}")


@pytest.fixture
def reviewer(token):
    return token("community_reviewer", COMMUNITY, subject="reviewer-wang")


async def digests_of(api, headers) -> list[dict]:
    items = (await api.get("/v1/inbox", headers=headers)).json()["items"]
    return [i for i in items if i["event_type"] == DIGEST_COMPILED]


async def test_an_hourly_digest_gathers_the_unread_items_of_its_period_once(api, token, reviewer, hand_in, clock,
                                                                            notifications_app):
    clock.now = china(10, 15)
    r = await api.put("/v1/me/preferences", headers=reviewer, json={"in_app": {"delivery": "digest"}})
    assert r.status_code == 200, r.text
    assert r.json()["changed"] is True and r.json()["next_digest_at"] == "2026-03-04T03:00:00Z"  # 11:00 China
    assert r.json()["roles"] == ["community_reviewer"] and r.json()["jurisdictions"] == [COMMUNITY]

    for n, minute in ((1, 20), (2, 30), (3, 40)):
        clock.now = china(10, minute)
        await hand_in(started(n))
    inbox = (await api.get("/v1/inbox", headers=reviewer)).json()["items"]
    assert len(inbox) == 3  # in the inbox at once
    await api.post(f"/v1/inbox/{inbox[0]['id']}/read", headers=reviewer)  # read one (the newest) before the hour

    clock.now = china(11)
    assert await notifications_app.state.digests.fire_due() == 1
    [digest] = await digests_of(api, reviewer)
    assert digest["title"] == "消息摘要：10:15–11:00 有 2 条新消息"
    assert "QH-20260304-0001" in digest["body"] and "QH-20260304-0002" in digest["body"]
    assert "QH-20260304-0003" not in digest["body"]  # read already
    assert digest["link"] == "/inbox"
    # another reviewer of the community, who takes items as they come, gets no digest
    assert await digests_of(api, token("community_reviewer", COMMUNITY, subject="reviewer-li")) == []

    assert await notifications_app.state.digests.fire_due() == 0  # fired once
    store = notifications_app.state.store
    events = await store.read_stream("preferences:reviewer-wang")
    assert [e.type for e in events][-1] == DIGEST_COMPILED and events[-1].data["total"] == 2

    # the next hour: nothing new, no digest; the one after gathers only what came since 11:00
    clock.now = china(12)
    assert await notifications_app.state.digests.fire_due() == 1
    assert len(await digests_of(api, reviewer)) == 1
    clock.now = china(12, 30)
    await hand_in(started(4))
    clock.now = china(13)
    await notifications_app.state.digests.fire_due()
    newest = (await digests_of(api, reviewer))[0]
    assert newest["title"] == "消息摘要：11:00–13:00 有 1 条新消息" and "QH-20260304-0004" in newest["body"]


async def test_giving_digests_up_stops_them_and_a_bad_choice_changes_nothing(api, reviewer, hand_in, clock,
                                                                             notifications_app):
    clock.now = china(10, 15)
    refused = await api.put("/v1/me/preferences", headers=reviewer,
                            json={"in_app": {"delivery": "hourly", "every_minutes": 45}, "sms": {}})
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
    assert {e["pointer"] for e in refused.json()["errors"]} == {"#/in_app/delivery", "#/in_app/every_minutes", "#/sms"}
    mine = (await api.get("/v1/me/preferences", headers=reviewer)).json()
    assert mine["version"] == 0 and mine["in_app"] == {"delivery": "immediate", "every_minutes": 60}

    await api.put("/v1/me/preferences", headers=reviewer, json={"in_app": {"delivery": "digest", "every_minutes": 30}})
    same = await api.put("/v1/me/preferences", headers=reviewer,
                         json={"in_app": {"delivery": "digest", "every_minutes": 30}})
    assert same.json()["changed"] is False and same.json()["version"] == 1
    clock.now = china(10, 20)
    await hand_in(started(1))
    await api.put("/v1/me/preferences", headers=reviewer, json={"in_app": {"delivery": "immediate"}})
    clock.now = china(10, 30)
    assert await notifications_app.state.digests.fire_due() == 1  # the timer armed before fires ...
    assert await digests_of(api, reviewer) == []  # ... and tells nothing
    clock.now = china(11)
    assert await notifications_app.state.digests.fire_due() == 0  # and armed no other


async def _first_items(base: str, headers: dict, count: int) -> list[dict]:
    """The items a stream opened with Last-Event-ID 0 pushes (all it holds back is not pushed)."""
    got: list[dict] = []
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", f"{base}/v1/inbox/stream",
                                 headers={**headers, "Last-Event-ID": "0"}) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data:") and "title" in line:
                    got.append(json.loads(line[5:]))
                    if len(got) == count:
                        break
    return got


async def test_a_digest_taker_is_pushed_other_rules_items_but_not_the_digested_ones(served, api, token, reviewer,
                                                                                     hand_in, clock):
    clock.now = china(10, 15)
    await api.put("/v1/me/preferences", headers=reviewer, json={"in_app": {"delivery": "digest"}})
    await hand_in(started(1))  # a digest rule's item
    await hand_in(started(2))
    # not a digest rule's: a step's deadline near (its reviewers found from the case's start)
    await hand_in(event(WARNED, {**sample_events()[WARNED][0]["data"], "case_id": "5b0e2a57-3c39-4c43-9d53-0a4c1d1e0002"},
                        subject="approval:y"))
    assert len((await api.get("/v1/inbox", headers=reviewer)).json()["items"]) == 3
    pushed = await asyncio.wait_for(_first_items(served, reviewer, 1), 10)
    assert [i["event_type"] for i in pushed] == [WARNED]
    everyone = await asyncio.wait_for(_first_items(served, token("community_reviewer", COMMUNITY), 3), 10)
    assert sorted(i["event_type"] for i in everyone) == sorted([STARTED, STARTED, WARNED])
