"""notifications' part of the demo: who was told what during the day.

- the community reviewers' inbox: the cases that reached their review (and a green-channel case
  the street's reviewers were told of at once), with what arrived live on the stream part 39
  holds open;
- civil affairs' system: each task's webhook, its signature verified by the department with the
  `standardwebhooks` package; the first answered 503 and was sent again on the retry schedule,
  under the same webhook-id, as the delivery's attempts show;
- leaders: a complaint surge or an overdue run in a community, when statistics raised one;
- applicants: each case the window accepted in part 20 texted to its applicant (receipt number
  and due date), as the local SendSms server received it (.local/sms/received.jsonl; the number
  came from intake's contact API at send time, and is shown masked here); Sun (no phone) gets
  none: the delivery is a dead letter saying why. Zhao (a landline) chose WeChat and email at the
  window: his mail as the stack's SMTP server kept it (.local/mail/) and his WeChat messages as
  the WeChat stand-in took them (.local/wechat/received.jsonl); his SMS deliveries are skipped.
  In the quiet hours (22:00-08:00 China time) the SMS and WeChat messages wait for the morning
  (mail does not), and the part says so;
- the district's delivery figures, as statistics counts them from notifications' delivery steps
  (GET /v1/kpis/notifications by channel): the part waits until they include this run's retried
  webhook.
"""
from __future__ import annotations

import asyncio
import os

from civicgrid_common.calendar.working_days import CHINA_TZ
from civicgrid_common.identity.tokens import mint_local_token

NOTIFICATIONS = os.environ.get("CIVICGRID_DEMO_NOTIFICATIONS_URL", "http://127.0.0.1:8004")
STATISTICS = os.environ.get("CIVICGRID_DEMO_STATISTICS_URL", "http://127.0.0.1:8005")
DISTRICT = "320104"


def _hm(instant) -> str:
    from datetime import datetime

    when = instant if isinstance(instant, datetime) else datetime.fromisoformat(instant)
    return when.astimezone(CHINA_TZ).strftime("%H:%M:%S")


async def run(ctx) -> None:
    listeners = ctx.facts.pop("notification_listeners", None)
    if listeners is None:
        ctx.say("part 39 did not run: nothing to show")
        return
    hooks, server, serving, streaming, live = listeners
    admin = {"Authorization": f"Bearer {mint_local_token('admin', DISTRICT)}"}
    reviewer = {"Authorization": f"Bearer {mint_local_token('community_reviewer', DISTRICT, subject='demo-reviewer')}"}
    leader = {"Authorization": f"Bearer {mint_local_token('leader', DISTRICT, subject='demo-leader')}"}

    # The first webhook is answered 503 and comes again after the schedule's 5 s (jittered).
    for _ in range(60):
        if any(h.get("answered") == 200 for h in hooks.received):
            break
        await asyncio.sleep(1)

    inbox = (await ctx.http.get(f"{NOTIFICATIONS}/v1/inbox", params={"limit": 5}, headers=reviewer)).json()
    ctx.say(f"community reviewers' inbox: {inbox['unread']} unread; the newest:")
    for item in inbox["items"]:
        ctx.say(f"  {_hm(item['created_at'])}  {item['title']} — {item['body']}")
    ctx.say(f"  {len(live)} item(s) arrived live on the open stream"
            + (f", the first at {_hm(live[0][0])}: {live[0][1]['title']}" if live else ""))

    alerts = (await ctx.http.get(f"{NOTIFICATIONS}/v1/inbox", params={"limit": 3}, headers=leader)).json()
    ctx.say(f"leaders' inbox: {alerts['unread']} unread" + ("".join(
        f"\n  {_hm(i['created_at'])}  {i['title']} — {i['body']}" for i in alerts["items"])))

    ctx.say(f"civil affairs' system received {len(hooks.received)} webhook(s):")
    for h in hooks.received[:6]:
        ctx.say(f"  {_hm(h['at'])}  {h['id']}  signature {'verified' if h['verified'] else 'REJECTED'}, "
                f"answered {h.get('answered', 400)}" + (f"  {h.get('type')}" if h.get("type") else ""))
    retried = next((h["id"] for h in hooks.received if h.get("answered") == 503), None)
    if retried:
        d = (await ctx.http.get(f"{NOTIFICATIONS}/v1/deliveries/{retried}", headers=admin)).json()
        ctx.say(f"delivery {retried}: {d['status']} after {d['attempts']} attempt(s):")
        for a in d["history"]:
            ctx.say(f"  attempt {a['attempt']} at {_hm(a['started_at'])}: {a['outcome']} "
                    f"(answer {a['status_code']}, {a['latency_ms']:.0f} ms)")

    streaming.cancel()
    server.should_exit = True
    await asyncio.gather(streaming, serving, return_exceptions=True)
    await applicants_texted(ctx, admin)
    await applicants_mailed_and_messaged(ctx)
    await delivery_figures(ctx, leader, since=ctx.started_at.isoformat())


async def applicants_texted(ctx, admin: dict) -> None:
    """The SMS the local SendSms server took during this run, and the applicants who got none."""
    import json
    from datetime import datetime

    from civicgrid_common.paths import local_state_dir

    received = local_state_dir() / "sms" / "received.jsonl"
    texts: list[dict] = []
    # notifications holds a non-urgent SMS back in its quiet hours (`make up` leaves the default)
    start, end, now = "22:00", "08:00", datetime.now(CHINA_TZ)
    night = f"{now:%H:%M}" >= start or f"{now:%H:%M}" < end
    for _ in range(3 if night else 30):  # the sender loop polls every second
        lines = received.read_text(encoding="utf-8").splitlines() if received.exists() else []
        texts = [m for m in map(json.loads, lines) if datetime.fromisoformat(m["received_at"]) >= ctx.started_at]
        if texts:  # Wang's accepted case; Zhao's and Sun's reach no mobile number
            break
        await asyncio.sleep(1)
    ctx.say(f"applicants texted (Aliyun SendSms, as the local server at :8025 received them): {len(texts)} SMS")
    if not texts and night:
        ctx.say(f"  it is {now:%H:%M} in China, inside notifications' quiet hours ({start}-{end}): Wang's SMS "
                f"waits until {end}, when the local server will have it (an urgent rule's would go at once)")
    for m in texts[:6]:
        number = m["phone_numbers"]
        ctx.say(f"  {_hm(m['received_at'])}  to {number[:3]}****{number[-4:]}  【{m['sign_name']}】 "
                f"{m['template_code']} {m['template_param']}  OutId {m['out_id']}")
    dead = (await ctx.http.get(f"{NOTIFICATIONS}/v1/deliveries/dead-letters", headers=admin)).json()
    none = [d for d in dead if d["channel"] == "sms" and datetime.fromisoformat(d["created_at"]) >= ctx.started_at]
    if none:
        ctx.say(f"  {len(none)} SMS dead-lettered this run (their applicants have a landline or no phone), e.g. "
                f"{none[0]['last_error']}")


async def applicants_mailed_and_messaged(ctx) -> None:
    """The mail and the WeChat messages to Zhao (he chose them at the window) during this run."""
    import email
    import email.policy
    import json
    from datetime import datetime

    from civicgrid_common.paths import local_state_dir

    mail_dir, wechat_log = local_state_dir() / "mail", local_state_dir() / "wechat" / "received.jsonl"
    mails: list = []
    for _ in range(30):  # the sender loop polls every second; mail is never held for the night
        mails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                 for p in sorted(mail_dir.glob("*.eml")) if p.stat().st_mtime >= ctx.started_at.timestamp()]
        if mails:
            break
        await asyncio.sleep(1)
    ctx.say(f"mail to applicants (the stack's SMTP server at :1025 kept {len(mails)} in {mail_dir}):")
    for m in mails[:4]:
        ctx.say(f"  to {m['To']}: {m['Subject']}")
    lines = wechat_log.read_text(encoding="utf-8").splitlines() if wechat_log.exists() else []
    taken = [m for m in map(json.loads, lines) if datetime.fromisoformat(m["received_at"]) >= ctx.started_at]
    ctx.say(f"WeChat subscribe messages (as the local server at :8026 took them): {len(taken)}")
    for m in taken[:4]:
        ctx.say(f"  to {m['touser'][:4]}…{m['touser'][-4:]}  {m['template_id']}  "
                + ", ".join(f"{k}={v['value']}" for k, v in m["data"].items()))
    if not taken:
        now = datetime.now(CHINA_TZ)
        ctx.say(f"  none yet: at {now:%H:%M} China time a WeChat message may be waiting for the end of the quiet "
                "hours, like an SMS")


async def delivery_figures(ctx, leader: dict, since: str) -> None:
    """Statistics' delivery figures by channel, once they count this run's failed attempts."""
    async def by_channel(**as_of: str) -> dict:
        r = await ctx.http.get(f"{STATISTICS}/v1/kpis/notifications", params={"group_by": "channel", **as_of},
                               headers=leader)
        r.raise_for_status()
        return r.json()

    before = (await by_channel(as_of=since))["totals"]
    for _ in range(30):  # the relay and statistics' workers take a moment
        now = await by_channel()
        if now["totals"]["failed_attempts"] > before["failed_attempts"]:
            break
        await asyncio.sleep(1)
    ctx.say(f"statistics' delivery figures for district {DISTRICT} (GET /v1/kpis/notifications, this run "
            f"{now['totals']['deliveries'] - before['deliveries']} of {now['totals']['deliveries']} deliveries):")
    for g in now["groups"]:
        p50 = "-" if g["seconds_to_deliver_p50"] is None else f"{g['seconds_to_deliver_p50']:.2f} s"
        p99 = "-" if g["seconds_to_deliver_p99"] is None else f"{g['seconds_to_deliver_p99']:.2f} s"
        rate = "-" if g["delivery_rate"] is None else f"{g['delivery_rate']:.0%}"
        ctx.say(f"  {g['label']}: {g['deliveries']} deliveries, {g['succeeded']} sent or delivered, "
                f"{g['dead']} dead, {g['pending']} pending, {g['failed_attempts']} failed attempt(s); "
                f"delivery rate {rate}; time to deliver p50 {p50}, p99 {p99}")
