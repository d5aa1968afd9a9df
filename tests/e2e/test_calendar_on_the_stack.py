"""One working-day calendar for the whole system, as `make up` runs it: an override set at
intake (:8001), which owns the district's calendar, reaches approval (:8002) and statistics
(:8005) over Kafka, and the three answer the same due date."""
from __future__ import annotations

import asyncio
import time
from datetime import date

import httpx
import pytest

from civicgrid_common.calendar.working_days import WorkingCalendar
from civicgrid_common.identity.tokens import mint_local_token

pytestmark = pytest.mark.integration

SERVICES = {"intake": "http://127.0.0.1:8001", "approval": "http://127.0.0.1:8002",
            "statistics": "http://127.0.0.1:8005"}
# Far from any date the demo or a resident counts on; the test sets the day back when done.
FROM = "2198-06-02T09:00:00+08:00"
NEXT_WORKING_DAY = WorkingCalendar().nth_working_day_after(date(2198, 6, 2), 1)
PATIENCE_SECONDS = 60.0


def bearer(role: str, jurisdiction: str, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **claims)}"}


async def due_dates(client: httpx.AsyncClient) -> dict[str, str]:
    reader = bearer("auditor", "320104")
    answers = {}
    for name, base in SERVICES.items():
        r = await client.get(f"{base}/v1/calendar/due-date", params={"from": FROM, "days": 1}, headers=reader)
        assert r.status_code == 200, f"{name}: {r.status_code} {r.text}"
        answers[name] = r.json()["due_date"]
    return answers


async def until_all_say(client: httpx.AsyncClient, expected: str) -> dict[str, str]:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        answers = await due_dates(client)
        if set(answers.values()) == {expected} or time.monotonic() > deadline:
            return answers
        await asyncio.sleep(0.5)


async def test_an_override_set_at_intake_moves_every_services_due_date():
    admin = bearer("admin", "320104", subject="e2e-calendar-admin")
    day = NEXT_WORKING_DAY.isoformat()
    async with httpx.AsyncClient(timeout=10) as client:
        assert await until_all_say(client, day) == {name: day for name in SERVICES}
        refused = await client.put(f"{SERVICES['approval']}/v1/calendar/overrides/{day}", headers=admin,
                                   json={"is_working_day": False, "reason": "e2e"})
        assert refused.status_code in (404, 405), "only intake takes calendar changes"
        r = await client.put(f"{SERVICES['intake']}/v1/calendar/overrides/{day}", headers=admin,
                             json={"is_working_day": False, "reason": "e2e: offices closed"})
        assert r.status_code == 200, r.text
        try:
            moved = WorkingCalendar({NEXT_WORKING_DAY: False}).nth_working_day_after(date(2198, 6, 2), 1)
            assert moved > NEXT_WORKING_DAY
            assert await until_all_say(client, moved.isoformat()) == {name: moved.isoformat() for name in SERVICES}
        finally:  # the day as the official calendar has it again, everywhere
            r = await client.put(f"{SERVICES['intake']}/v1/calendar/overrides/{day}", headers=admin,
                                 json={"is_working_day": True, "reason": "e2e: set back"})
            assert r.status_code == 200, r.text
        assert await until_all_say(client, day) == {name: day for name in SERVICES}
