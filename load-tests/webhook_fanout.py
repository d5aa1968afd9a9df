"""1,000 department webhook endpoints, 10% of them failing or hanging: how long the healthy ones
wait for their first attempt. `make load` runs it after the evening peak; results in
load-tests/results/webhook_fanout.json.

1. A receiver on loopback (Starlette under uvicorn) with one path per endpoint: 900 answer 200
   at once, 50 answer 503, 50 hang until the sender's 15 s timeout gives up on them.
2. notifications' own adapters on a database of its own (the bootstrap's endpoints, with their
   sealed secrets, and its delivery ledger): 1,000 endpoints, one per made-up department system
   (dept_0000 … dept_0999), set through `Endpoints.put` (the admin's route would check the
   name against contracts/departments.yaml), each allow-listed for loopback.
3. One pending webhook delivery per endpoint, recorded through the ledger as the consumer
   records a department's task, in a shuffled order.
4. The sender loop exactly as the service runs it (`SenderLoop.run`, the service's default
   concurrency, batch and lease), until every delivery has had its first attempt.
5. Measured: for the healthy endpoints, the first attempt's delay after the deliveries were
   recorded (p50, p90, p99, max) and its own latency; how many got 200, 503 and timeouts; the
   run's wall time. Exit 1 if a healthy endpoint's delivery did not end `sent`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from civicgrid_common.db import create_pool, install_schema
from civicgrid_common.eventstore import EventStore

from civicgrid_notifications.adapters.endpoints import Endpoints, SecretBox
from civicgrid_notifications.adapters.ledger import LEDGER_DDL, DeliveryLedger
from civicgrid_notifications.adapters.sender import SenderLoop
from civicgrid_notifications.adapters.webhooks import WebhookSender
from civicgrid_notifications.config import NotificationsSettings

from harness import fresh_database

RESULTS = Path(__file__).parent / "results" / "webhook_fanout.json"


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def scenario(endpoints: int, failing: int, hanging: int) -> dict:
    kinds = ["ok"] * (endpoints - failing - hanging) + ["503"] * failing + ["hang"] * hanging
    random.Random(7).shuffle(kinds)
    stop = asyncio.Event()

    async def hook(request: Request) -> JSONResponse:
        kind = kinds[int(request.path_params["n"])]
        await request.body()
        if kind == "hang":
            try:
                await asyncio.wait_for(stop.wait(), 60)
            except TimeoutError:
                pass
        return JSONResponse({}, status_code=503 if kind == "503" else 200)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/hooks/{n:int}", hook, methods=["POST"])]),
                                           log_config=None, access_log=False, limit_concurrency=None,
                                           timeout_graceful_shutdown=1))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"

    async with fresh_database() as db:
        settings = NotificationsSettings(pg_database=db.pg_database)
        pool = await create_pool(settings)
        store = EventStore.for_service(pool, settings)
        await store.install()
        await install_schema(pool, [LEDGER_DDL])
        box = SecretBox(bytes(range(32)))
        ends = Endpoints(pool, box)
        await ends.install()
        now = datetime.now(timezone.utc)
        for n in range(endpoints):
            await ends.put(f"dept_{n:04d}", f"{base}/{n}", allow_private=True, by="load", now=now)
        deliveries = DeliveryLedger(store, settings.district)
        order = list(range(endpoints))
        random.Random(11).shuffle(order)
        async with pool.acquire() as conn, conn.transaction():
            for n in order:
                await deliveries.record(conn, event_id=f"load-task-{n}", event_type="civicgrid.approval.civil_affairs_task.issued.v1", rule_id="load",
                                        channel="webhook", recipient=f"department:dept_{n:04d}", urgent=False,
                                        message={"id": f"load-task-{n}"}, status="pending", at=now)
        webhooks = WebhookSender(timeout=settings.webhook_timeout_seconds)
        loop = SenderLoop(pool, deliveries, ends, webhooks, schedule=settings.retry_schedule,
                          lease_seconds=settings.send_lease_seconds, batch=settings.send_batch,
                          concurrency=settings.send_concurrency, poll_seconds=0.05)
        started = time.monotonic()
        running = asyncio.create_task(loop.run())
        while await pool.fetchval("SELECT count(*) FROM notification_attempts WHERE attempt = 1") < endpoints:
            await asyncio.sleep(0.2)
        wall = time.monotonic() - started
        loop.stop()
        await running
        rows = await pool.fetch(
            "SELECT d.recipient, d.status, d.created_at, a.started_at, a.outcome, a.status_code, a.latency_ms "
            "FROM notification_deliveries d JOIN notification_attempts a ON a.delivery_id = d.id AND a.attempt = 1")
        await webhooks.close()
        await pool.close()
    stop.set()
    server.should_exit = True
    await serving

    healthy = [r for r in rows if kinds[int(r["recipient"].rsplit("_", 1)[1])] == "ok"]
    waits = [(r["started_at"] - r["created_at"]).total_seconds() for r in healthy]
    outcomes: dict[str, int] = {}
    for r in rows:
        key = f"{r['outcome']} {r['status_code'] or ''}".strip()
        outcomes[key] = outcomes.get(key, 0) + 1
    return {
        "endpoints": endpoints, "failing_503": failing, "hanging": hanging,
        "sender": {"concurrency": settings.send_concurrency, "batch": settings.send_batch,
                   "timeout_seconds": settings.webhook_timeout_seconds},
        "wall_seconds": round(wall, 2),
        "healthy_first_attempt_wait_seconds": {k: (None if v is None else round(v, 3)) for k, v in (
            ("p50", percentile(waits, 50)), ("p90", percentile(waits, 90)), ("p99", percentile(waits, 99)),
            ("max", max(waits) if waits else None))},
        "healthy_first_attempt_latency_ms_p99": percentile([r["latency_ms"] for r in healthy], 99),
        "first_attempt_outcomes": outcomes,
        "healthy_not_sent": sum(1 for r in healthy if r["status"] != "sent"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--failing", type=int, default=50)
    parser.add_argument("--hanging", type=int, default=50)
    a = parser.parse_args()
    result = asyncio.run(scenario(a.endpoints, a.failing, a.hanging))
    result["measured_at"] = datetime.now(timezone.utc).isoformat()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 1 if result["healthy_not_sent"] else 0


if __name__ == "__main__":
    sys.exit(main())
