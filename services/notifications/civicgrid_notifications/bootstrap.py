"""notifications' composition root: what the service is made of, wired in one fixed order.

    database → event store → ledger, inbox, facts and endpoint tables → units of work → the
    notification service (the rule book seeded) → people's preferences and their digest timers →
    channels (webhooks; SMS, email and WeChat with intake's contact API) → what runs in the
    background (outbox relay; the consumer of the source topics; the webhook sender; the live
    inbox's listener)

Nothing else constructs services or adapters; entry points ask for what they need from here.
"""
from __future__ import annotations

from datetime import timedelta

from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.keyfiles import LOCAL_ENVIRONMENT
from civicgrid_common.consumer import EventConsumer
from civicgrid_common.db import create_pool, ensure_database, install_schema
from civicgrid_common.eventstore import EventStore
from civicgrid_common.identity.service_tokens import ClientCredentialsToken
from civicgrid_common.outbox.relay import OutboxRelay
from civicgrid_common.service import Runner, Wired
from civicgrid_common.timers import TimerWorker, install_timers
from civicgrid_common.unit_of_work import Transactions

from civicgrid_notifications.adapters.contacts import IntakeContacts, LocalNotifierToken, NoNotifierToken
from civicgrid_notifications.adapters.email import SmtpSender
from civicgrid_notifications.adapters.endpoints import Endpoints, SecretBox, load_secrets_key
from civicgrid_notifications.adapters.facts import FACTS_DDL, SubjectFacts
from civicgrid_notifications.adapters.inbox import INBOX_DDL, InboxStore
from civicgrid_notifications.adapters.ledger import LEDGER_DDL, DeliveryLedger
from civicgrid_notifications.adapters.live import InboxBroadcaster
from civicgrid_notifications.adapters.sender import SenderLoop
from civicgrid_notifications.adapters.sms import AliyunSmsSender
from civicgrid_notifications.adapters.webhooks import WebhookSender
from civicgrid_notifications.adapters.wechat import WechatSubscribeSender
from civicgrid_notifications.application.notify import NotificationService
from civicgrid_notifications.application.preferences import TIMER_OWNER, PreferenceService
from civicgrid_notifications.config import NotificationsSettings
from civicgrid_notifications.application.seeding import seed_rule_book
from civicgrid_notifications.domain.quiet_hours import QuietHours
from civicgrid_notifications.domain.seed import sample_events, seed_document
from civicgrid_notifications.entrypoints.consumers import events_handler, timers_handler


def notifier_token(settings: NotificationsSettings) -> ClientCredentialsToken | LocalNotifierToken | NoNotifierToken:
    """This service's own token for intake's contact API: from the identity provider when a
    client is configured there; on the local stack without one, minted with the local key."""
    if settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret:
        return ClientCredentialsToken(settings.oidc_issuer, settings.oidc_client_id,
                                      settings.oidc_client_secret.get_secret_value(),
                                      backchannel=settings.oidc_backchannel_url)
    if settings.environment == LOCAL_ENVIRONMENT:
        return LocalNotifierToken(settings.district)
    return NoNotifierToken()


async def bootstrap(settings: NotificationsSettings, *, clock: Clock = utc_now) -> Wired:
    # Without its key nothing could be signed for a department: fail first.
    box = SecretBox(load_secrets_key(settings.webhook_secrets_key_file, settings.environment))
    await ensure_database(settings)
    pool = await create_pool(settings)
    store = EventStore.for_service(pool, settings)
    await store.install()
    await install_schema(pool, [LEDGER_DDL, INBOX_DDL, FACTS_DDL])
    await install_timers(pool)
    endpoints = Endpoints(pool, box)
    await endpoints.install()

    transactions = Transactions.for_service(store, [], settings)
    consumed = {t for spec in store.contracts.topics if spec.name in settings.source_topics for t in spec.event_types}
    samples = sample_events()
    for event_type, events in samples.items():  # a sample that drifted from its contract is a bug here
        for event in events:
            store.contracts.validate(event_type, event["data"])
    deliveries = DeliveryLedger(store, settings.district,
                                dedup_window=timedelta(seconds=settings.dedup_window_seconds) or None)
    notifications = NotificationService(transactions, store, deliveries, InboxStore(), SubjectFacts(),
                                        district=settings.district,
                                        consumed_types=consumed.__contains__, samples=samples,
                                        quiet_hours=QuietHours.parse(settings.quiet_hours), clock=clock)
    preferences = PreferenceService(transactions, deliveries, InboxStore(), clock=clock)
    digests = TimerWorker(pool, owner=TIMER_OWNER, handler=timers_handler(preferences), clock=clock,
                          poll_interval=settings.timer_poll_seconds)
    if settings.seed_rules:
        await seed_rule_book(notifications, seed_document())

    webhooks = WebhookSender(timeout=settings.webhook_timeout_seconds)
    sms = None
    if settings.sms_access_key_id and settings.sms_access_key_secret:
        sms = AliyunSmsSender(settings.sms_access_key_id, settings.sms_access_key_secret.get_secret_value(),
                              endpoint=settings.sms_endpoint, daily_limit=settings.sms_daily_limit, clock=clock)
    email = None
    if settings.smtp_host:
        email = SmtpSender(settings.smtp_host, settings.smtp_port, sender_address=settings.mail_from,
                           use_tls=settings.smtp_security == "tls",
                           start_tls={"starttls": True, "tls": False, "none": False}[settings.smtp_security],
                           username=settings.smtp_username,
                           password=settings.smtp_password.get_secret_value() if settings.smtp_password else None)
    wechat = None
    if settings.wechat_app_id and settings.wechat_app_secret:
        wechat = WechatSubscribeSender(settings.wechat_app_id, settings.wechat_app_secret.get_secret_value(),
                                       base_url=settings.wechat_endpoint, clock=clock)
    token = notifier_token(settings)
    contacts = IntakeContacts(settings.intake_url, token)
    broadcaster = InboxBroadcaster(pool, settings.dsn())
    runners: list[Runner] = [broadcaster]
    if settings.outbox_relay:
        runners.append(OutboxRelay(pool, settings, name="notifications"))
    if settings.timers:
        runners.append(digests)
    if settings.send:
        runners.append(SenderLoop(pool, deliveries, endpoints, webhooks, schedule=settings.retry_schedule,
                                  lease_seconds=settings.send_lease_seconds, batch=settings.send_batch,
                                  concurrency=settings.send_concurrency, poll_seconds=settings.send_poll_seconds,
                                  sms=sms, email=email, wechat=wechat, contacts=contacts, clock=clock))
    consumers = {}
    if settings.consume:
        consumers["events"] = EventConsumer(settings, pool, topics=settings.source_topics,
                                            group_id=f"{settings.consumer_group}.events",
                                            handler=events_handler(notifications),
                                            dead_letter_topic=settings.dead_letter_topic)
        runners.extend(consumers.values())

    async def close() -> None:
        await webhooks.close()
        await contacts.close()
        if isinstance(token, ClientCredentialsToken):
            await token.close()
        for provider in (sms, email, wechat):
            if provider is not None:
                await provider.close()
        await pool.close()

    return Wired(pool=pool, runners=runners, close=close, state={
        "store": store, "notifications": notifications, "preferences": preferences, "digests": digests, "endpoints": endpoints, "broadcaster": broadcaster,
        "consumers": consumers, "clock": clock, "departments": frozenset(store.contracts.departments),
    })
