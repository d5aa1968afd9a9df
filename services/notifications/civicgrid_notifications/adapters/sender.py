"""The sender loop: deliveries that leave the process (department webhooks; SMS, email and
WeChat messages to a case's applicant, at the address intake's contact API gives for that one
message), each leased and committed as `sending` before its request leaves, then finished with
the attempt's outcome.

Retries follow the configured schedule (jittered ±20 %), later when the receiver says so
(Retry-After); a 410 disables the endpoint; after the schedule's last attempt the delivery is
dead-lettered, visible in the API and replayable. Sends run concurrently, each in a slot of its
own that is refilled as soon as it frees, so one endpoint that hangs (up to the 15 s timeout, or
not at all once its circuit is open) holds one slot and not the others.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import date, datetime, timedelta
from typing import Sequence

import asyncpg

from civicgrid_common.calendar.working_days import local_date
from civicgrid_common.clock import Clock, utc_now

from civicgrid_notifications.adapters import ledger
from civicgrid_notifications.adapters.channels import Outgoing, SendResult
from civicgrid_notifications.adapters.contacts import Contact, IntakeContacts
from civicgrid_notifications.adapters.email import SmtpSender
from civicgrid_notifications.adapters.endpoints import Endpoints
from civicgrid_notifications.adapters.sms import AliyunSmsSender
from civicgrid_notifications.adapters.webhooks import WebhookEndpoint, WebhookSender
from civicgrid_notifications.adapters.wechat import WechatSubscribeSender

log = logging.getLogger(__name__)

# The channels that reach a case's applicant, and the setting that configures each provider.
_PROVIDER_SETTING = {"sms": "CIVICGRID_SMS_ACCESS_KEY_ID", "email": "CIVICGRID_SMTP_HOST",
                     "wechat": "CIVICGRID_WECHAT_APP_ID"}


def next_attempt(schedule: Sequence[float], attempts: int, *, now: datetime, retry_after: float | None,
                 rand: random.Random | None = None) -> datetime | None:
    """When to try again after `attempts` tries, or None when the schedule is spent: the
    schedule lists each attempt's pause after the one before (the first's is 0: at once)."""
    if attempts >= len(schedule):
        return None
    pause = schedule[attempts] * (rand or random).uniform(0.8, 1.2)
    if retry_after is not None:
        pause = max(pause, retry_after)
    return now + timedelta(seconds=pause)


class SenderLoop:
    name = "webhook-sender"

    def __init__(self, pool: asyncpg.Pool, deliveries: ledger.DeliveryLedger, endpoints: Endpoints,
                 webhooks: WebhookSender, *, schedule: Sequence[float], lease_seconds: float, batch: int,
                 concurrency: int, poll_seconds: float, sms: AliyunSmsSender | None = None,
                 email: SmtpSender | None = None, wechat: WechatSubscribeSender | None = None,
                 contacts: IntakeContacts | None = None, clock: Clock = utc_now) -> None:
        self.pool = pool
        self.deliveries = deliveries
        self.endpoints = endpoints
        self.webhooks = webhooks
        self.sms = sms
        self.email = email
        self.wechat = wechat
        self.contacts = contacts
        self.schedule = list(schedule)
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Keep every slot busy: claim as many due deliveries as there are free slots, send each
        in a task of its own, and claim again as soon as one finishes. An endpoint that hangs
        holds one slot until its timeout, never the deliveries claimed after it (waiting for a
        whole batch, one hanging endpoint held back every batch behind it)."""
        in_flight: set[asyncio.Task[None]] = set()
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                want = min(self.concurrency - len(in_flight), self.batch)
                due: list[ledger.Delivery] = []
                if want > 0:
                    try:
                        due = await self._claim(want)
                    except (OSError, asyncpg.PostgresError) as exc:  # the database away: wait and try again
                        log.warning("sender: %s", exc)
                for delivery in due:
                    task = asyncio.create_task(self._send_one(delivery))
                    in_flight.add(task)
                    task.add_done_callback(self._finished(in_flight))
                if want > 0 and len(due) == want:
                    continue  # more may be due, and slots are free
                await asyncio.wait({stopping, *in_flight}, timeout=self.poll_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)

    @staticmethod
    def _finished(in_flight: set[asyncio.Task[None]]):
        def done(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            if not task.cancelled() and task.exception() is not None:
                # Its lease runs out and the delivery is tried again; say why it was not finished.
                log.error("sender: a send failed: %r", task.exception())
        return done

    async def _claim(self, limit: int) -> list[ledger.Delivery]:
        async with self.pool.acquire() as conn, conn.transaction():
            return await ledger.claim_due(conn, now=self.clock(), lease=self.lease, limit=limit)

    def stop(self) -> None:
        self._stopping.set()

    async def send_due(self) -> int:
        """Lease one batch of what is due and send it; how many were attempted (for tests and
        tools: the service runs `run`)."""
        due = await self._claim(self.batch)
        await asyncio.gather(*(self._send_one(d) for d in due))
        return len(due)

    async def _send_one(self, delivery: ledger.Delivery) -> None:
        async with self._slots:
            started = self.clock()
            began = time.monotonic()
            result = await self._attempt(delivery, started)
            now = self.clock()
            retry_at = (next_attempt(self.schedule, delivery.attempts, now=now, retry_after=result.retry_after)
                        if result.outcome == "retry" else None)
            async with self.pool.acquire() as conn, conn.transaction():
                status = await self.deliveries.finish_attempt(
                    conn, delivery, started_at=started, outcome=result.outcome, status_code=result.status_code,
                    latency_ms=result.latency_ms or (time.monotonic() - began) * 1000, error=result.error,
                    provider_id=result.provider_id, next_attempt_at=retry_at, now=now)
            if result.outcome == "gone" and delivery.channel == "webhook":
                await self.endpoints.disable(delivery.recipient.removeprefix("department:"),
                                             f"the endpoint answered {result.status_code}: gone", now=now)
            log.info("delivery %s attempt %d: %s -> %s", delivery.id, delivery.attempts, result.outcome, status)

    async def _attempt(self, delivery: ledger.Delivery, now: datetime) -> SendResult:
        if delivery.channel in _PROVIDER_SETTING:
            return await self._attempt_to_applicant(delivery)
        department = delivery.recipient.removeprefix("department:")
        endpoint = await self.endpoints.get(department, now=now)
        if endpoint is None:
            return SendResult("retry", error=f"department {department} has no webhook endpoint yet")
        if not endpoint.enabled:
            return SendResult("retry", error=f"the endpoint of {department} is disabled: {endpoint.disabled_reason}")
        if endpoint.unreadable:  # tampered with, or another key: sign nothing with what is left; rotating fixes it
            return SendResult("retry", error=f"{endpoint.unreadable} signing secret(s) of {department} do not open "
                                             "under this service's key; rotate the endpoint's secret")
        if not endpoint.secrets:
            return SendResult("failed", error=f"the endpoint of {department} has no active secret")
        target = WebhookEndpoint(department=department, url=endpoint.url, secrets=list(endpoint.secrets),
                                 allow_private=endpoint.allow_private)
        message = Outgoing(delivery_id=delivery.id, channel="webhook", address=endpoint.url, fields=delivery.message)
        return await self.webhooks.send_to(target, message)

    async def _attempt_to_applicant(self, delivery: ledger.Delivery) -> SendResult:
        """An SMS, an email or a WeChat subscribe message to the case's applicant, at the address
        intake gives now for this one message (it records the disclosure); the address is held
        only for the provider's request. Asked first even without a provider: an applicant who
        did not choose the channel makes the delivery skipped, not a retry waiting for a provider
        nobody needs.

        A repeat after a lost answer: SendSms is not idempotent, so a retry first asks Aliyun
        whether it holds our OutId; an email carries the same Message-ID each attempt (a mail
        client shows one); WeChat's subscribe/send takes no idempotency key and offers no
        look-up, so a send whose answer was lost may arrive twice."""
        channel = delivery.channel
        adapter = {"sms": self.sms, "email": self.email, "wechat": self.wechat}[channel]
        if self.contacts is None:
            return SendResult("retry", error="intake's contact API is not configured")
        case_id = delivery.recipient.removeprefix("applicant:")  # the applicant of this case
        contact = await self.contacts.address(case_id, channel, purpose=f"notification delivery {delivery.id}")
        if contact.outcome != "found" or contact.address is None:
            return _no_address(contact)
        if adapter is None:
            return SendResult("retry", error=f"the applicant chose {channel}, and no {channel} provider is "
                                             f"configured ({_PROVIDER_SETTING[channel]})")
        if channel == "sms" and delivery.attempts > 1:
            assert self.sms is not None
            taken = await self.sms.already_sent(contact.address, delivery.id, _china_days(delivery.created_at,
                                                                                          self.clock()))
            if taken is None:
                return SendResult("retry", error="cannot tell whether an earlier attempt reached Aliyun "
                                                 "(QuerySendDetails did not answer)")
            if taken:
                log.info("delivery %s: Aliyun holds an earlier attempt's SMS; not sent again", delivery.id)
                return SendResult("sent", error=None)
        return await adapter.send(Outgoing(delivery_id=delivery.id, channel=channel, address=contact.address,
                                           fields=delivery.message))


def _no_address(contact: Contact) -> SendResult:
    outcome = {"retry": "retry", "not_chosen": "not_chosen"}.get(contact.outcome, "unreachable")
    return SendResult(outcome, error=contact.error)  # type: ignore[arg-type]


def _china_days(since: datetime, now: datetime) -> list[date]:
    """The China dates from `since` to `now`, the last 30 at most (QuerySendDetails' reach)."""
    first, last = local_date(since), local_date(now)
    days = [last - timedelta(days=n) for n in range(min((last - first).days, 29) + 1)]
    return list(reversed(days))
