"""Before the day's cases start, two listeners of notifications, as their users would hold them:

- civil affairs' system takes webhooks at an endpoint of its own (here a small server on
  127.0.0.1, allow-listed by the district's admin: a loopback address is refused otherwise). It
  checks each webhook's signature with the `standardwebhooks` package and the secret it was
  given, and, to show the retries, answers the first one 503;
- a community reviewer's console holds the inbox's live stream open (server-sent events).

Part 60 shows what both received; it stops them.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
from datetime import datetime, timezone

import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from civicgrid_common.identity.tokens import mint_local_token

NOTIFICATIONS = os.environ.get("CIVICGRID_DEMO_NOTIFICATIONS_URL", "http://127.0.0.1:8004")
DISTRICT = "320104"
DEPARTMENT = "civil_affairs"


class CivilAffairsWebhooks:
    """The department's receiving end: verifies every webhook, fails the first on purpose."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.received: list[dict] = []
        self._failed_once = False

    async def receive(self, request: Request) -> JSONResponse:
        body = await request.body()
        entry = {"id": request.headers.get("webhook-id"), "at": datetime.now(timezone.utc), "verified": False}
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
            entry.update(verified=True, type=payload["type"], link=payload["link"])
        except (WebhookVerificationError, TypeError, ValueError) as exc:
            entry["error"] = str(exc)
            self.received.append(entry)
            return JSONResponse({"error": "bad signature"}, status_code=400)
        if not self._failed_once:
            self._failed_once = True
            entry["answered"] = 503
            self.received.append(entry)
            return JSONResponse({"error": "busy, try later"}, status_code=503)
        entry["answered"] = 200
        self.received.append(entry)
        return JSONResponse({"ok": True})


async def run(ctx) -> None:
    admin = {"Authorization": f"Bearer {mint_local_token('admin', DISTRICT)}"}
    hooks = CivilAffairsWebhooks()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/hooks", hooks.receive, methods=["POST"])]),
                                           log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.05)
    r = await ctx.http.put(f"{NOTIFICATIONS}/v1/departments/{DEPARTMENT}/webhook", headers=admin,
                           json={"url": f"http://127.0.0.1:{port}/hooks", "allow_private": True})
    r.raise_for_status()
    endpoint = r.json()
    if endpoint["secret"] is None:  # set by an earlier run: a new secret, the old one valid for a day
        r = await ctx.http.post(f"{NOTIFICATIONS}/v1/departments/{DEPARTMENT}/webhook/rotate", headers=admin,
                                json={"grace_hours": 24})
        r.raise_for_status()
        endpoint = r.json()
    hooks.secret = endpoint["secret"]
    ctx.say(f"civil affairs' webhook endpoint: {endpoint['url']} (allow-listed loopback), "
            f"{endpoint['active_secrets']} active secret(s)")

    reviewer = {"Authorization": f"Bearer {mint_local_token('community_reviewer', DISTRICT, subject='demo-reviewer')}",
                "Accept": "text/event-stream"}
    live: list[tuple[datetime, dict]] = []
    connected = asyncio.Event()

    async def hold_stream() -> None:
        async with ctx.http.stream("GET", f"{NOTIFICATIONS}/v1/inbox/stream", headers=reviewer,
                                   timeout=None) as stream:
            stream.raise_for_status()
            connected.set()
            async for line in stream.aiter_lines():
                if line.startswith("data:") and line[5:].strip().startswith("{"):
                    item = json.loads(line[5:])
                    if "title" in item:
                        live.append((datetime.now(timezone.utc), item))

    streaming = asyncio.create_task(hold_stream())
    await asyncio.wait_for(connected.wait(), 10)
    await asyncio.sleep(0.5)  # the stream subscribes just after its headers are sent
    ctx.say("a community reviewer's console holds GET /v1/inbox/stream open")
    ctx.facts["notification_listeners"] = (hooks, server, serving, streaming, live)
