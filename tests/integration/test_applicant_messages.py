"""A case accepted at the window tells its applicant on the channels they chose, once each, end
to end over real HTTP (SMS when they never chose; WeChat and email below):
intake's event (the very record its outbox holds) handed to notifications' consumer handler; the
rule book's `applicant-case-accepted` rule records one pending SMS; the sender asks intake's
contact API for the number (intake records the disclosure on the case) and sends it to Aliyun's
SendSms (a local server of its documented shape). The number is in no table, event or log line of
notifications. An applicant who chose WeChat and email is told there and not by SMS: the email goes
over SMTP into a real SMTP server (aiosmtpd, the local stack's mailbox), the WeChat message to a
local server of WeChat's subscribe-message API."""
from __future__ import annotations

import email
import email.policy
import json
import logging
import uuid
from datetime import datetime, timezone

import asyncpg
import httpx
import pytest

from standins.aliyun_sms import ACCESS_KEY_ID, ACCESS_KEY_SECRET, aliyun_serving
from standins.wechat import APP_ID, APP_SECRET, wechat_serving
from standins.serving import serving
from settable_clock import Clock
import intake_cases

from civicgrid_common.cloudevents import CloudEvent, from_kafka_message
from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.outbox.records import headers_from_json
from civicgrid_common.settings import PlatformSettings

from civicgrid_intake.config import IntakeSettings
from civicgrid_intake.entrypoints.main import build_app as build_intake
from civicgrid_notifications.adapters import ledger
from civicgrid_notifications.adapters.contacts import IntakeContacts, LocalNotifierToken
from civicgrid_notifications.adapters.email import SmtpSender, message_id_for
from civicgrid_notifications.adapters.mailbox import LocalMailbox
from civicgrid_notifications.adapters.sender import SenderLoop
from civicgrid_notifications.adapters.sms import AliyunSmsSender
from civicgrid_notifications.adapters.webhooks import WebhookSender
from civicgrid_notifications.adapters.wechat import WechatSubscribeSender
from civicgrid_notifications.config import NotificationsSettings
from civicgrid_notifications.domain.seed import sample_events
from civicgrid_notifications.entrypoints.main import build_app as build_notifications

pytestmark = pytest.mark.integration

DISTRICT, STREET, COMMUNITY = "320104", "320104001", "320104001001"
MOBILE = "13912345678"
ACCEPTED = "civicgrid.intake.case.accepted.v1"
T0 = datetime(2026, 3, 4, 2, 15, tzinfo=timezone.utc)  # Wednesday 10:15 China time
EMAIL = "zhang.wei@example.com"
OPENID = "oB_hN41zbT1OvATDONK5LccFIwwA"


def bearer(role: str, jurisdiction: str, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **claims)}"}


@pytest.fixture
async def intake():
    """intake on a database of its own, served over HTTP on loopback (no relay, no consumer)."""
    name = f"t_intake_{uuid.uuid4().hex[:12]}"
    settings = IntakeSettings(pg_database=name, outbox_relay=False, approval_consumer=False)
    async with serving(build_intake(settings), lifespan="on") as url:
        pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=2)
        try:
            yield url, pool
        finally:
            await pool.close()
    admin = await asyncpg.connect(PlatformSettings().dsn("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def aliyun():
    async with aliyun_serving() as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def notifications(fresh_db, intake, clock):
    settings = NotificationsSettings(pg_database=fresh_db.pg_database, outbox_relay=False, consume=False, send=False)
    app = build_notifications(settings, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def mailbox(tmp_path):
    box = await LocalMailbox(tmp_path / "mail").start()
    yield box
    await box.stop()


@pytest.fixture
async def wx():
    async with wechat_serving() as fake:
        yield fake


@pytest.fixture
async def sender(notifications, intake, aliyun, mailbox, wx, clock):
    url, _ = intake
    sms = AliyunSmsSender(ACCESS_KEY_ID, ACCESS_KEY_SECRET, endpoint=aliyun.url, timeout=5)
    mail = SmtpSender("127.0.0.1", mailbox.port, sender_address="noreply@civicgrid.test", start_tls=False, timeout=5)
    wechat = WechatSubscribeSender(APP_ID, APP_SECRET, base_url=wx.url, timeout=5, clock=clock)
    contacts = IntakeContacts(url, LocalNotifierToken(DISTRICT))
    webhooks = WebhookSender(timeout=5)
    state = notifications.state
    loop = SenderLoop(state.pool, ledger.DeliveryLedger(state.store, DISTRICT), state.endpoints, webhooks,
                      schedule=[0, 5, 300], lease_seconds=60, batch=10, concurrency=4, poll_seconds=0.1,
                      sms=sms, email=mail, wechat=wechat, contacts=contacts, clock=clock)
    yield loop
    for closing in (sms, mail, wechat, contacts, webhooks):
        await closing.close()


async def accepted_case(http, phone: str | None) -> str:
    return await intake_cases.accepted_case(http, bearer("window_clerk", STREET, subject="wc-1"), COMMUNITY, phone)


async def published(pool, case_id: str, event_type: str):
    """intake's record of the event, as its relay would publish it."""
    row = await pool.fetchrow(
        "SELECT o.key, o.value, o.headers FROM outbox o JOIN events e ON e.id = o.event_id "
        "WHERE e.stream_id = $1 AND e.type = $2", case_id, event_type)
    return from_kafka_message(headers_from_json(row["headers"]), row["key"], row["value"])


async def hand_in(app, event):
    async with app.state.pool.acquire() as conn, conn.transaction():
        return await app.state.notifications.on_event(conn, event)


async def told(app, event) -> str:
    """Hand the event in; the id of its SMS delivery. The rule also records a WeChat and an email
    delivery, skipped when sent: this applicant never chose those channels."""
    recorded = (await hand_in(app, event)).recorded
    rows = await app.state.pool.fetch("SELECT id, channel FROM notification_deliveries WHERE id = ANY($1)",
                                      list(recorded))
    assert sorted(r["channel"] for r in rows) == ["email", "sms", "wechat"], rows
    return next(r["id"] for r in rows if r["channel"] == "sms")


async def test_an_accepted_case_tells_its_applicant_by_sms_once(intake, notifications, sender, aliyun, caplog):
    caplog.set_level(logging.DEBUG)
    url, intake_pool = intake
    async with httpx.AsyncClient(base_url=url) as http:
        case_id = await accepted_case(http, MOBILE)
    event = await published(intake_pool, case_id, ACCEPTED)
    delivery = await told(notifications, event)
    assert (await hand_in(notifications, event)).recorded == ()  # redelivered: still one

    assert await sender.send_due() == 3  # the SMS; the WeChat and email deliveries skipped
    assert await sender.send_due() == 0
    skipped = await notifications.state.pool.fetch(
        "SELECT channel, status, events FROM notification_deliveries WHERE id <> $1", delivery)
    assert sorted((r["channel"], r["status"], r["events"]) for r in skipped) == [
        ("email", "skipped", 0), ("wechat", "skipped", 0)]  # not sent, not failed: no step, no figure
    [request] = aliyun.requests
    assert aliyun.problems == [] and aliyun.rejected == 0
    assert (request["PhoneNumbers"], request["TemplateCode"], request["OutId"]) == (MOBILE, "SMS_305000001", delivery)
    assert json.loads(request["TemplateParam"]) == {"case_number": event.data["case_number"],
                                                    "due_date": event.data["due_date"]}

    # intake recorded the one disclosure, naming the delivery; never the number
    rows = await intake_pool.fetch("SELECT data FROM events WHERE stream_id = $1 AND type = $2", case_id,
                                   "civicgrid.intake.case.contact_disclosed.v1")
    [disclosed] = [json.loads(r["data"]) if isinstance(r["data"], str) else dict(r["data"]) for r in rows]
    assert (disclosed["channel"], disclosed["actor"]) == ("sms", "svc-notifications")
    assert delivery in disclosed["purpose"]

    pool = notifications.state.pool
    row = await pool.fetchrow("SELECT status, provider_id, recipient FROM notification_deliveries WHERE id = $1",
                              delivery)
    assert (row["status"], row["recipient"]) == ("sent", f"applicant:{case_id}") and row["provider_id"]
    steps = await pool.fetch("SELECT type, data FROM events WHERE stream_id = $1 ORDER BY version",
                             f"notification-delivery:{delivery}")
    [(kind, data)] = [(r["type"].rsplit(".", 2)[-2], json.loads(r["data"]) if isinstance(r["data"], str)
                       else dict(r["data"])) for r in steps]
    assert (kind, data["channel"], data["recipient_kind"]) == ("sent", "sms", "applicant")
    # The number: in no table of notifications, no event, no log line of this process.
    tables = [r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    for table in tables:
        assert not await pool.fetchval(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE $1', f"%{MOBILE}%"), table
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("uvicorn")]
    assert not [line for line in ours if MOBILE in line]


async def test_an_applicant_without_a_mobile_number_gets_no_sms_and_the_delivery_says_why(
        intake, notifications, sender, aliyun):
    url, intake_pool = intake
    async with httpx.AsyncClient(base_url=url) as http:
        case_id = await accepted_case(http, None)
    delivery = await told(notifications, await published(intake_pool, case_id, ACCEPTED))
    assert await sender.send_due() == 3
    assert aliyun.requests == []
    row = await notifications.state.pool.fetchrow(
        "SELECT status, last_error FROM notification_deliveries WHERE id = $1", delivery)
    # failed for good: a dead letter the admin sees, replayable once intake holds a number
    assert row["status"] == "dead" and "no phone" in row["last_error"], dict(row)
    # as nobody to reach, not a failure of the channel: statistics keep it out of the delivery rate
    steps = await notifications.state.pool.fetch("SELECT type, data FROM events WHERE stream_id = $1 ORDER BY version",
                                                 f"notification-delivery:{delivery}")
    dead = [r["data"] for r in steps if r["type"].endswith(".dead_lettered.v1")]
    assert [d["reason"] for d in dead] == ["no_contact"], [dict(r) for r in steps]


async def test_an_sms_in_the_night_waits_for_the_morning(intake, notifications, sender, aliyun, clock):
    url, intake_pool = intake
    async with httpx.AsyncClient(base_url=url) as http:
        case_id = await accepted_case(http, MOBILE)
    clock.now = datetime(2026, 3, 4, 15, 10, tzinfo=timezone.utc)  # 23:10 China time: quiet hours (22:00-08:00)
    delivery = await told(notifications, await published(intake_pool, case_id, ACCEPTED))
    assert await sender.send_due() == 1  # the email (quiet hours hold no mail), skipped: not chosen
    due = await notifications.state.pool.fetchval(
        "SELECT next_attempt_at FROM notification_deliveries WHERE id = $1", delivery)
    assert due == datetime(2026, 3, 5, 0, 0, tzinfo=timezone.utc)  # 08:00 China time
    clock.now = datetime(2026, 3, 4, 23, 59, tzinfo=timezone.utc)
    assert await sender.send_due() == 0 and aliyun.requests == []
    clock.now = due
    assert await sender.send_due() == 2  # the SMS, and the WeChat message (skipped)
    assert [r["OutId"] for r in aliyun.requests] == [delivery]


async def test_a_retry_after_a_lost_answer_asks_aliyun_first_and_sends_nothing_twice(
        intake, notifications, sender, aliyun, clock):
    aliyun.clock = clock
    url, intake_pool = intake
    async with httpx.AsyncClient(base_url=url) as http:
        lost_case, failed_case = await accepted_case(http, MOBILE), await accepted_case(http, MOBILE)
    # Aliyun takes the first SMS and its answer is lost (502): the delivery is retried.
    lost = await told(notifications, await published(intake_pool, lost_case, ACCEPTED))
    aliyun.answers = ["lost"]
    assert await sender.send_due() == 3
    clock.advance(seconds=7)  # the schedule's 5 s, jittered
    assert await sender.send_due() == 1
    # The retry asked QuerySendDetails for the number's records of the day, found our OutId, sent nothing.
    assert [t["OutId"] for t in aliyun.taken] == [lost] and len(aliyun.requests) == 1
    assert [(q["PhoneNumber"], q["SendDate"]) for q in aliyun.queries] == [(MOBILE, "20260304")]
    pool = notifications.state.pool
    assert await pool.fetchval("SELECT status FROM notification_deliveries WHERE id = $1", lost) == "sent"

    # An attempt Aliyun refused before taking it (500): the retry finds no record and sends.
    failed = await told(notifications, await published(intake_pool, failed_case, ACCEPTED))
    aliyun.answers = ["500"]
    assert await sender.send_due() == 3
    clock.advance(seconds=7)
    assert await sender.send_due() == 1
    assert [t["OutId"] for t in aliyun.taken] == [lost, failed] and len(aliyun.requests) == 3
    assert await pool.fetchval("SELECT status FROM notification_deliveries WHERE id = $1", failed) == "sent"


async def test_every_applicant_rule_of_the_demo_district_texts_once(intake, notifications, sender, aliyun, clock):
    """The seeded rules: accepted (receipt number, due date), supplement requested, decided (with
    the invitation to rate), certificate issued; each event handed in twice, each texted once."""
    url, intake_pool = intake
    async with httpx.AsyncClient(base_url=url) as http:
        case_id = await accepted_case(http, MOBILE)
    samples = sample_events()
    later = [CloudEvent(id=str(uuid.uuid4()), source="/civicgrid/intake", type=t, subject=case_id, time=T0,
                        dataschema=None, data=samples[t][0]["data"])
             for t in ("civicgrid.intake.case.supplement_requested.v1", "civicgrid.intake.case.completed.v1",
                       "civicgrid.intake.case.certificate_issued.v1")]
    for e in [await published(intake_pool, case_id, ACCEPTED), *later]:
        await told(notifications, e)
        assert (await hand_in(notifications, e)).recorded == ()
    # Sent at once, four disclosures on one case contend for its stream in intake; one that loses
    # every try is answered 503 (contended) and comes again on the schedule, so the clock moves on.
    for _ in range(4):
        while await sender.send_due():
            pass
        if len(aliyun.requests) == 4:
            break
        clock.advance(seconds=10)
    assert sorted(r["TemplateCode"] for r in aliyun.requests) == [
        "SMS_305000001", "SMS_305000003", "SMS_305000005", "SMS_305000007"]
    by_code = {r["TemplateCode"]: json.loads(r.get("TemplateParam", "{}")) for r in aliyun.requests}
    assert by_code["SMS_305000003"] == {"count": "2"} and by_code["SMS_305000005"] == {"result": "已办结（准予）"}
    assert by_code["SMS_305000007"] == {"certificate": "QH-DB-2026-000123"}
    assert {r["PhoneNumbers"] for r in aliyun.requests} == {MOBILE}


# ---------------------------------------------------------------------- WeChat and email


async def choose(http, case_id: str, body: dict) -> None:
    clerk = bearer("window_clerk", STREET, subject="wc-1")
    applicant = (await http.get(f"/v1/cases/{case_id}", headers=clerk)).json()["applicant_id"]
    r = await http.put(f"/v1/applicants/{applicant}/contact-channels", headers=clerk, json=body)
    assert r.status_code == 200, r.text


async def test_an_applicant_who_chose_wechat_and_email_is_told_there_once_and_not_by_sms(
        intake, notifications, sender, aliyun, mailbox, wx, caplog):
    caplog.set_level(logging.DEBUG)
    url, intake_pool = intake
    async with httpx.AsyncClient(base_url=url) as http:
        case_id = await accepted_case(http, MOBILE)
        await choose(http, case_id, {"channels": ["wechat", "email"], "email": EMAIL, "wechat_openid": OPENID})
    event = await published(intake_pool, case_id, ACCEPTED)
    recorded = (await hand_in(notifications, event)).recorded
    assert len(recorded) == 3 and (await hand_in(notifications, event)).recorded == ()

    assert await sender.send_due() == 3
    assert await sender.send_due() == 0
    pool = notifications.state.pool
    by_channel = {r["channel"]: r for r in await pool.fetch(
        "SELECT id, channel, status, provider_id, events FROM notification_deliveries")}
    assert {c: r["status"] for c, r in by_channel.items()} == {"sms": "skipped", "email": "sent", "wechat": "sent"}
    assert aliyun.requests == []

    # the mail, as the SMTP server kept it
    [path] = mailbox.messages()
    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert mail["To"] == EMAIL and mail["Message-ID"] == message_id_for(by_channel["email"]["id"])
    assert mail["Subject"] == f"您的事项已受理，受理号 {event.data['case_number']}"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert event.data["case_number"] in text and event.data["due_date"] in text
    assert f"<p>您在窗口申请的事项已受理，受理号 {event.data['case_number']}" in html

    # the WeChat message, as WeChat took it
    [taken] = wx.taken
    assert wx.problems == []
    assert (taken["touser"], taken["template_id"]) == (OPENID, "QH-case-accepted-01")
    assert taken["data"] == {"character_string1": {"value": event.data["case_number"]},
                             "thing2": {"value": "事项已受理"}, "date3": {"value": event.data["due_date"]}}
    assert by_channel["wechat"]["provider_id"] == str(taken["msgid"])

    # intake recorded a disclosure per address given, none for the SMS it refused
    rows = await intake_pool.fetch("SELECT data FROM events WHERE stream_id = $1 AND type = $2 ORDER BY version",
                                   case_id, "civicgrid.intake.case.contact_disclosed.v1")
    disclosed = [json.loads(r["data"]) if isinstance(r["data"], str) else dict(r["data"]) for r in rows]
    assert sorted(d["channel"] for d in disclosed) == ["email", "wechat"]

    # neither address in any table of notifications, nor in a log line of this process
    tables = [r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("uvicorn", "mail.log")))
    for secret in (EMAIL, OPENID):
        for table in tables:
            assert not await pool.fetchval(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE $1',
                                           f"%{secret}%"), (table, secret)
        assert secret not in ours


async def test_a_wechat_message_refused_because_the_subscription_is_used_up_is_gone_not_retried(
        intake, notifications, sender, wx):
    """A subscribe message needs the resident's consent for each one (一次性订阅): WeChat answers
    43101 once it is used up, and the delivery ends there, retried never."""
    url, intake_pool = intake
    async with httpx.AsyncClient(base_url=url) as http:
        case_id = await accepted_case(http, MOBILE)
        await choose(http, case_id, {"channels": ["wechat"], "wechat_openid": OPENID})
    await hand_in(notifications, await published(intake_pool, case_id, ACCEPTED))
    wx.answers = ["43101"]
    assert await sender.send_due() == 3
    row = await notifications.state.pool.fetchrow(
        "SELECT status, last_error FROM notification_deliveries WHERE channel = 'wechat'")
    assert row["status"] == "disabled" and "43101" in row["last_error"], dict(row)
    assert wx.taken == [] and await sender.send_due() == 0
