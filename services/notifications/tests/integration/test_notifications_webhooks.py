"""Department webhooks end to end on the real database and a real HTTP receiver: a task event is
one delivery, signed so the department's `standardwebhooks` verifies it; retried on the
schedule under the same webhook-id; a sender killed mid-send sends again after its lease and
the ledger still holds one delivery; the schedule spent is a dead letter an admin replays; a
410 disables the endpoint; private addresses are refused unless allow-listed."""
from __future__ import annotations

import asyncio
import copy
import socket
from datetime import timedelta

import pytest
import uvicorn
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from delivery_steps import published_steps, steps_of
from notification_events import event

from civicgrid_notifications.adapters import ledger
from civicgrid_notifications.adapters.sender import SenderLoop
from civicgrid_notifications.adapters.webhooks import WebhookSender
from civicgrid_notifications.domain.seed import sample_events

TASK = "civicgrid.approval.civil_affairs_task.issued.v1"


class Receiver:
    """Civil affairs' receiving end: verifies each webhook with its secret; answers as told."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.answers: list[int] = []  # the next answers; 200 once they run out
        self.seen: list[dict] = []

    async def receive(self, request: Request) -> JSONResponse:
        body = await request.body()
        payload = Webhook(self.secret).verify(body, dict(request.headers))  # raises on a bad signature
        status = self.answers.pop(0) if self.answers else 200
        self.seen.append({"id": request.headers["webhook-id"], "payload": payload, "status": status,
                          "signatures": request.headers["webhook-signature"].split()})
        return JSONResponse({}, status_code=status, headers={"Retry-After": "1"} if status == 429 else {})


@pytest.fixture
async def receiver():
    hooks = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/hooks", hooks.receive, methods=["POST"])]),
                                           log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.02)
    hooks.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"
    yield hooks
    server.should_exit = True
    await serving


@pytest.fixture
async def endpoint(api, token, receiver):
    r = await api.put("/v1/departments/civil_affairs/webhook", headers=token("admin", "320104"),
                      json={"url": receiver.url, "allow_private": True})
    assert r.status_code == 200, r.text
    receiver.secret = r.json()["secret"]
    assert receiver.secret.startswith("whsec_")
    return r.json()


@pytest.fixture
async def sender(notifications_app, clock):
    webhooks = WebhookSender(timeout=5)
    loop = SenderLoop(notifications_app.state.pool, ledger.DeliveryLedger(notifications_app.state.store, "320104"),
                      notifications_app.state.endpoints, webhooks,
                      schedule=[0, 5, 300], lease_seconds=60, batch=10, concurrency=4, poll_seconds=0.1, clock=clock)
    yield loop
    await webhooks.close()


def task_event():
    return event(TASK, copy.deepcopy(sample_events()[TASK][0]["data"]), subject="approval:x")


async def test_a_task_is_one_signed_webhook_retried_on_the_schedule_under_the_same_id(
        notifications_app, api, token, hand_in, endpoint, receiver, sender, clock):
    e = task_event()
    [did] = (await hand_in(e)).recorded
    assert (await hand_in(e)).recorded == ()  # the event redelivered: still one delivery
    receiver.answers = [503]
    assert await sender.send_due() == 1
    assert await sender.send_due() == 0  # not due again before the schedule's 5 s
    clock.advance(seconds=7)  # 5 s, jittered by at most 20 %
    assert await sender.send_due() == 1
    assert [(s["id"], s["status"]) for s in receiver.seen] == [(did, 503), (did, 200)]
    payload = receiver.seen[-1]["payload"]
    assert payload["id"] == e.id and payload["type"] == TASK and payload["department"] == "civil_affairs"
    assert "case_number" not in payload  # thin: the department fetches the event with its own token
    r = await api.get(f"/v1/deliveries/{did}", headers=token("admin", "320104"))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["status"] == "sent" and d["attempts"] == 2
    assert [(a["outcome"], a["status_code"]) for a in d["history"]] == [("retry", 503), ("sent", 200)]
    # Its steps on its own stream, once each (the event was handed in twice).
    store = notifications_app.state.store
    (failed, first), (sent, second) = await steps_of(store, did)
    assert (failed, sent) == ("failed", "sent")
    assert first["attempt"] == 1 and first["status_code"] == 503 and first["retry_at"] is not None
    assert first["endpoint_disabled"] is False
    assert second["attempts"] == 2 and second["recorded_at"] <= second["at"] and second["district"] == "320104"
    assert {k: second[k] for k in ("delivery_id", "channel", "recipient_kind", "department", "cause_id",
                                   "cause_type")} == {"delivery_id": did, "channel": "webhook",
                                                      "recipient_kind": "department", "department": "civil_affairs",
                                                      "cause_id": e.id, "cause_type": TASK}
    assert receiver.url not in str(first) + str(second) and "error" not in first


async def test_a_sender_killed_mid_send_sends_again_after_its_lease_and_the_ledger_holds_one(
        notifications_app, hand_in, endpoint, receiver, sender, clock):
    [did] = (await hand_in(task_event())).recorded
    pool = notifications_app.state.pool
    async with pool.acquire() as conn, conn.transaction():  # the lease is committed, then the process dies
        [leased] = await ledger.claim_due(conn, now=clock(), lease=timedelta(seconds=60), limit=10)
    assert leased.id == did
    assert await sender.send_due() == 0  # held by the dead sender's lease
    clock.advance(seconds=61)
    assert await sender.send_due() == 1
    assert [s["id"] for s in receiver.seen] == [did]
    # The attempt that died took no step; the one that went, one.
    assert [step for step, _ in await steps_of(notifications_app.state.store, did)] == ["sent"]
    rows = await pool.fetch("SELECT status, attempts, jsonb_typeof(message) AS shape FROM notification_deliveries")
    assert [(r["status"], r["attempts"], r["shape"]) for r in rows] == [("sent", 2, "object")]


async def test_the_schedule_spent_is_a_dead_letter_an_admin_replays(notifications_app, api, token, hand_in, endpoint,
                                                                     receiver, sender, clock):
    [did] = (await hand_in(task_event())).recorded
    receiver.answers = [500, 500, 500]
    for _ in range(3):
        await sender.send_due()
        clock.advance(seconds=400)
    admin = token("admin", "320104")
    dead = (await api.get("/v1/deliveries/dead-letters", headers=admin)).json()
    assert [(d["id"], d["status"], d["attempts"], d["last_status_code"]) for d in dead] == [(did, "dead", 3, 500)]
    assert await sender.send_due() == 0
    r = await api.post(f"/v1/deliveries/{did}/replay", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    assert (await api.post(f"/v1/deliveries/{did}/replay", headers=admin)).status_code == 409
    assert await sender.send_due() == 1
    assert (await api.get(f"/v1/deliveries/{did}", headers=admin)).json()["status"] == "sent"
    assert (await api.get("/v1/deliveries/dead-letters", headers=admin)).json() == []
    taken = await steps_of(notifications_app.state.store, did)
    assert [step for step, _ in taken] == ["failed", "failed", "failed", "dead_lettered", "sent"]
    assert [d["retry_at"] is None for step, d in taken if step == "failed"] == [False, False, True]
    dead_step = taken[3][1]
    assert (dead_step["reason"], dead_step["attempts"], dead_step["last_status_code"]) == ("schedule_spent", 3, 500)
    assert taken[4][1]["attempts"] == 4  # replayed: the fourth attempt went
    assert await published_steps(notifications_app.state.pool) == [step for step, _ in taken]


async def test_a_gone_endpoint_is_disabled(notifications_app, api, token, hand_in, endpoint, receiver, sender):
    [did] = (await hand_in(task_event())).recorded
    receiver.answers = [410]
    await sender.send_due()
    admin = token("admin", "320104")
    assert (await api.get(f"/v1/deliveries/{did}", headers=admin)).json()["status"] == "disabled"
    webhook = (await api.get("/v1/departments/civil_affairs/webhook", headers=admin)).json()
    assert webhook["enabled"] is False and "410" in webhook["disabled_reason"]
    [(step, data)] = await steps_of(notifications_app.state.store, did)
    assert step == "failed" and data["endpoint_disabled"] is True and data["retry_at"] is None
    assert data["status_code"] == 410


async def test_a_rotated_secret_signs_beside_the_old_one_for_the_grace_period(
        api, token, hand_in, endpoint, receiver, sender):
    old = receiver.secret
    r = await api.post("/v1/departments/civil_affairs/webhook/rotate", headers=token("admin", "320104"),
                       json={"grace_hours": 24})
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != old and r.json()["active_secrets"] == 2
    for secret in (new, old):  # a receiver on either secret verifies (it raises otherwise)
        receiver.secret = secret
        await hand_in(task_event())
        assert await sender.send_due() == 1
    assert [(s["status"], len(s["signatures"])) for s in receiver.seen] == [(200, 2), (200, 2)]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hooks", "https://10.0.0.1/hooks", "https://169.254.169.254/",
                                 "https://[::1]/hooks", "https://user:pw@1.2.3.4/hooks", "ftp://1.2.3.4/hooks"])
async def test_a_private_or_odd_webhook_url_is_refused_naming_it(api, token, url):
    r = await api.put("/v1/departments/civil_affairs/webhook", headers=token("admin", "320104"), json={"url": url})
    assert r.status_code == 422, r.text
    assert [e["pointer"] for e in r.json()["errors"]] == ["#/url"]
    assert (await api.get("/v1/departments/civil_affairs/webhook", headers=token("admin", "320104"))).status_code == 404


async def _stored_secrets(pool, department: str) -> list[dict]:
    import json

    raw = await pool.fetchval("SELECT secrets::text FROM webhook_endpoints WHERE department = $1", department)
    return json.loads(raw)


async def test_secrets_are_sealed_at_rest_and_a_copied_one_stops_sending_until_rotated(
        notifications_app, api, token, hand_in, endpoint, receiver, sender, clock):
    pool = notifications_app.state.pool
    admin = token("admin", "320104")
    [stored] = await _stored_secrets(pool, "civil_affairs")
    raw_secret = receiver.secret.removeprefix("whsec_")
    assert set(stored) == {"sealed"} and stored["sealed"].startswith("ws1.")
    assert "whsec_" not in stored["sealed"] and raw_secret not in stored["sealed"]
    # Another department's sealed secret copied into civil affairs' row (by whoever can write
    # the database) does not open there: nothing is signed with it, or with what is left.
    r = await api.put("/v1/departments/public_security/webhook", headers=admin,
                      json={"url": receiver.url, "allow_private": True})
    assert r.status_code == 200, r.text
    await pool.execute("UPDATE webhook_endpoints SET secrets = (SELECT secrets FROM webhook_endpoints "
                       "WHERE department = 'public_security') WHERE department = 'civil_affairs'")
    shown = (await api.get("/v1/departments/civil_affairs/webhook", headers=admin)).json()
    assert (shown["active_secrets"], shown["unreadable_secrets"]) == (0, 1)
    [did] = (await hand_in(task_event())).recorded
    assert await sender.send_due() == 1
    assert receiver.seen == []
    d = (await api.get(f"/v1/deliveries/{did}", headers=admin)).json()
    assert d["status"] == "pending" and "rotate" in d["history"][-1]["error"], d
    # The admin rotates: the unreadable secret is dropped, the new one signs, the delivery goes.
    r = await api.post("/v1/departments/civil_affairs/webhook/rotate", headers=admin, json={"grace_hours": 24})
    assert r.status_code == 200, r.text
    assert (r.json()["active_secrets"], r.json()["unreadable_secrets"]) == (1, 0)
    assert await pool.fetchval("SELECT jsonb_typeof(secrets) FROM webhook_endpoints "
                               "WHERE department = 'civil_affairs'") == "array"
    receiver.secret = r.json()["secret"]
    clock.advance(seconds=7)
    assert await sender.send_due() == 1
    assert [(s["id"], s["status"]) for s in receiver.seen] == [(did, 200)]


@pytest.mark.parametrize("as_text", [False, True], ids=["a list", "a rotated list stored as JSON text"])
async def test_a_secret_an_earlier_version_stored_in_clear_is_sealed_when_the_service_starts(
        notifications_app, clock, as_text):
    import json

    from civicgrid_notifications.adapters.endpoints import new_secret

    pool, endpoints = notifications_app.state.pool, notifications_app.state.endpoints
    clear, older = new_secret(), new_secret()
    expires = (clock() + timedelta(hours=1)).isoformat()
    legacy = [{"secret": clear}, {"secret": older, "expires_at": expires}]
    await pool.execute(
        "INSERT INTO webhook_endpoints (department, url, secrets, updated_by, updated_at) "
        "VALUES ('civil_affairs', 'https://civil.example.gov.cn/hooks', $1::jsonb, 'admin', now())",
        json.dumps(legacy) if as_text else legacy)  # the pool's codec encodes; text is encoded once more
    await endpoints.install()
    assert await pool.fetchval("SELECT jsonb_typeof(secrets) FROM webhook_endpoints") == "array"
    stored = await _stored_secrets(pool, "civil_affairs")
    assert [set(s) for s in stored] == [{"sealed"}, {"sealed", "expires_at"}] and stored[1]["expires_at"] == expires
    assert clear not in json.dumps(stored) and older not in json.dumps(stored)
    assert (await endpoints.get("civil_affairs", now=clock())).secrets == (clear, older)
    await endpoints.install()  # again: nothing left in clear, nothing sealed twice
    assert await _stored_secrets(pool, "civil_affairs") == stored


async def test_an_endpoint_that_hangs_holds_one_slot_and_not_the_deliveries_after_it(
        notifications_app, api, token, hand_in, clock):
    """The loop as the service runs it, one delivery a claim: civil affairs' endpoint hangs, and
    public security's task, claimed after it, is delivered while it still hangs."""
    release, seen = asyncio.Event(), []

    async def hook(request: Request) -> JSONResponse:
        department = request.path_params["department"]
        seen.append(department)
        if department == "civil_affairs":
            await release.wait()
        return JSONResponse({})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/{department}", hook, methods=["POST"])]),
                                           log_config=None, access_log=False, timeout_graceful_shutdown=1))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.02)
    admin = token("admin", "320104")
    for department in ("civil_affairs", "public_security"):
        r = await api.put(f"/v1/departments/{department}/webhook", headers=admin, json={
            "url": f"http://127.0.0.1:{sock.getsockname()[1]}/{department}", "allow_private": True})
        assert r.status_code == 200, r.text
    samples = sample_events()
    [hanging] = (await hand_in(task_event())).recorded
    clock.advance(seconds=1)  # claimed in order of due time: civil affairs' first
    ps_task = "civicgrid.approval.public_security_task.issued.v1"
    [healthy] = (await hand_in(event(ps_task, copy.deepcopy(samples[ps_task][0]["data"]), subject="approval:y"))).recorded
    webhooks = WebhookSender(timeout=30)
    loop = SenderLoop(notifications_app.state.pool, ledger.DeliveryLedger(notifications_app.state.store, "320104"),
                      notifications_app.state.endpoints, webhooks, schedule=[0, 5], lease_seconds=60, batch=1,
                      concurrency=4, poll_seconds=0.05, clock=clock)
    running = asyncio.create_task(loop.run())
    try:
        pool = notifications_app.state.pool
        for _ in range(100):
            if await pool.fetchval("SELECT status FROM notification_deliveries WHERE id = $1", healthy) == "sent":
                break
            await asyncio.sleep(0.05)
        assert seen == ["civil_affairs", "public_security"]
        statuses = dict(await pool.fetch("SELECT id, status FROM notification_deliveries"))
        assert (statuses[hanging], statuses[healthy]) == ("sending", "sent")  # civil affairs' still hangs
    finally:
        release.set()
        loop.stop()
        await running
        await webhooks.close()
        server.should_exit = True
        await serving
    assert await pool.fetchval("SELECT status FROM notification_deliveries WHERE id = $1", hanging) == "sent"
