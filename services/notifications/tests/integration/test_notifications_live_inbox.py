"""The live inbox over a real HTTP server: an item arrives on the stream of whoever may see it
(and only theirs) once its transaction commits; a client reconnecting with Last-Event-ID
first gets what it missed."""
from __future__ import annotations

import asyncio
import copy
import json

import httpx

from notification_events import event

from civicgrid_notifications.domain.seed import sample_events

MISSING = "civicgrid.grid.daily_report.missing.v1"


def missing(day: str) -> object:
    return event(MISSING, {**copy.deepcopy(sample_events()[MISSING][0]["data"]), "date": day})


async def _items(base: str, headers: dict, into: list, *, last_event_id: str | None = None) -> None:
    if last_event_id:
        headers = {**headers, "Last-Event-ID": last_event_id}
    async with httpx.AsyncClient(timeout=None) as client:
        async with client.stream("GET", f"{base}/v1/inbox/stream", headers=headers) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("data:") and "title" in line:
                    into.append(json.loads(line[5:]))


async def _until(condition, what: str) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_an_item_arrives_live_on_its_readers_stream_only(served, token, hand_in, notifications_app):
    worker, neighbour = [], []
    streams = [asyncio.create_task(_items(served, token("grid_worker", "320104001001003"), worker)),
               asyncio.create_task(_items(served, token("grid_worker", "320104001001004"), neighbour))]
    broadcaster = notifications_app.state.broadcaster
    await _until(lambda: len(broadcaster._streams) == 2, "both streams to subscribe")
    await hand_in(missing("2026-03-04"))
    await _until(lambda: worker, "the item on the worker's stream")
    assert "320104001001003" in worker[0]["title"] and worker[0]["read_at"] is None
    await asyncio.sleep(0.3)
    assert neighbour == []
    for s in streams:
        s.cancel()
    await asyncio.gather(*streams, return_exceptions=True)


async def test_a_reconnecting_client_first_gets_what_it_missed(served, token, hand_in):
    for day in ("2026-03-02", "2026-03-03", "2026-03-04"):  # told while the client was away
        await hand_in(missing(day))
    headers = token("grid_worker", "320104001001003")
    async with httpx.AsyncClient() as client:
        listing = (await client.get(f"{served}/v1/inbox", headers=headers)).json()["items"]
    seen_last = listing[-1]["id"]  # the oldest: the last one the client saw before it went away
    got: list = []
    stream = asyncio.create_task(_items(served, headers, got, last_event_id=str(seen_last)))
    await _until(lambda: len(got) == 2, "the two missed items")
    assert [i["id"] for i in got] == sorted(i["id"] for i in listing[:2])  # oldest first
    stream.cancel()
    await asyncio.gather(stream, return_exceptions=True)
