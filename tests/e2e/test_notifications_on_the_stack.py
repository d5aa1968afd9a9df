"""notifications as `make up` runs it (port 8004, its database, its consumer): a complaint surge
statistics raised, on civicgrid.statistics.alerts, reaches the community's leaders' inbox over
Kafka once, though the record is delivered twice."""
from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from civicgrid_common.cloudevents import dataschema_for
from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.settings import PlatformSettings

pytestmark = pytest.mark.integration

NOTIFICATIONS = "http://127.0.0.1:8004"
ALERTS = "civicgrid.statistics.alerts"
ALERT = "civicgrid.statistics.alert.raised.v1"


def alert_record(community: str, event_id: str, settings: PlatformSettings) -> tuple[bytes, bytes, list]:
    now = datetime.now(timezone.utc)
    data = {"alert_kind": "complaint_surge", "community": community, "category": "public_order", "count": 11,
            "threshold": 10, "window_minutes": 60, "window_start": (now - timedelta(hours=1)).isoformat(),
            "window_end": now.isoformat(), "triggering_event": str(uuid.uuid4())}
    headers = [("ce_specversion", b"1.0"), ("ce_id", event_id.encode()), ("ce_source", b"/civicgrid/statistics"),
               ("ce_type", ALERT.encode()), ("ce_subject", community.encode()),
               ("ce_time", now.isoformat().replace("+00:00", "Z").encode()),
               ("ce_dataschema", dataschema_for(ALERT, settings.schema_base_url).encode()),
               ("content-type", b"application/json")]
    return community.encode(), json.dumps(data).encode(), headers


async def test_a_surge_reaches_the_communitys_leaders_once_though_delivered_twice():
    settings = PlatformSettings(service_name="e2e")
    # A community of its own (a code no demo uses), so earlier runs' items do not count.
    community = f"320104{random.randint(900, 999)}{random.randint(100, 999)}"
    leader = {"Authorization": f"Bearer {mint_local_token('leader', community, subject='e2e-leader')}"}
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            await http.get(f"{NOTIFICATIONS}/healthz")
        except httpx.ConnectError:
            pytest.fail(f"the local stack has nothing on {NOTIFICATIONS}; run `make up`", pytrace=False)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            key, value, headers = alert_record(community, str(uuid.uuid4()), settings)
            for _ in range(2):  # at-least-once: the same record twice
                await producer.send_and_wait(ALERTS, value, key=key, headers=headers)
        finally:
            await producer.stop()
        items: list = []
        for _ in range(120):
            items = (await http.get(f"{NOTIFICATIONS}/v1/inbox", headers=leader)).json()["items"]
            if items:
                break
            await asyncio.sleep(0.5)
        assert items, "the alert did not reach the leaders' inbox within 60 s"
        await asyncio.sleep(3)  # time for the second copy to be handled
        items = (await http.get(f"{NOTIFICATIONS}/v1/inbox", headers=leader)).json()["items"]
        assert len(items) == 1, items
        assert community in items[0]["title"] and "诉求激增" in items[0]["title"]
