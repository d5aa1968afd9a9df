"""approval's composition root: what the service is made of, wired in one fixed order.

    seal master key (fail fast) → database → event store → tables and timers → seal keys →
    units of work (read tables, deadline timers) → the approval service → workflows seeded →
    what runs in the background (outbox relay, consumers of intake's cases, the departments'
    opinions and the district's calendar, deadline timers)

Nothing else constructs services or adapters; entry points ask for what they need from here.
"""
from __future__ import annotations

from civicgrid_common.calendar.overrides import install_calendar_schema, load_calendar
from civicgrid_common.calendar.sync import CalendarWatch, calendar_events_handler
from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.consumer import EventConsumer
from civicgrid_common.db import create_pool, ensure_database
from civicgrid_common.eventstore import EventStore
from civicgrid_common.outbox.relay import OutboxRelay
from civicgrid_common.service import Runner, Wired
from civicgrid_common.timers import TimerWorker, install_timers
from civicgrid_common.unit_of_work import Transactions

from civicgrid_approval.adapters.approval_views import ApprovalViewProjector, ApprovalViewReads, install_views
from civicgrid_approval.adapters.case_facts import CaseFactsTable, install_case_facts
from civicgrid_approval.adapters.deadlines import OWNER, DeadlineProjector
from civicgrid_approval.adapters.keystore import SealKeyStore, load_master_key
from civicgrid_approval.application.service import ApprovalService
from civicgrid_approval.config import ApprovalSettings
from civicgrid_approval.domain.seed import seed_definitions
from civicgrid_approval.entrypoints.consumers import (
    deadline_timers_handler, department_opinions_handler, intake_cases_handler,
)


async def bootstrap(settings: ApprovalSettings, *, clock: Clock = utc_now) -> Wired:
    # Without its master key approval must not seal anything: fail first.
    master_key = load_master_key(settings.seal_master_key_file, settings.environment)
    await ensure_database(settings)
    pool = await create_pool(settings)
    store = EventStore.for_service(pool, settings)
    await store.install()
    for install in (install_views, install_case_facts, install_calendar_schema, install_timers):
        await install(pool)
    keys = SealKeyStore(pool, master_key)
    await keys.install()

    def calendar():
        return load_calendar(pool)

    transactions = Transactions.for_service(
        store, [ApprovalViewProjector(), DeadlineProjector(calendar, settings.warning_share)], settings)
    views = ApprovalViewReads(pool)
    approvals = ApprovalService(transactions, keys, views, CaseFactsTable(), calendar=calendar,
                                departments=store.contracts.departments, district=settings.district, clock=clock)
    if settings.seed_workflows:
        await approvals.seed_if_empty(seed_definitions())

    # Deadlines: warnings and overdue marks from durable timers (exactly once, across restarts);
    # tests that fire them themselves call timers.fire_due().
    timers = TimerWorker(pool, owner=OWNER, handler=deadline_timers_handler(approvals), clock=clock,
                         poll_interval=settings.timer_poll_seconds)
    runners: list[Runner] = [CalendarWatch(pool)]
    if settings.outbox_relay:  # one relay per database publishes (an advisory lock); others wait
        runners.append(OutboxRelay(pool, settings, name="approval"))
    if settings.timers:
        runners.append(timers)
    consumers = {}
    if settings.consume:
        for name, topics, handler in (
            ("intake-cases", [settings.intake_cases_topic], intake_cases_handler(approvals)),
            ("department-opinions", settings.department_opinion_topics,
             department_opinions_handler(approvals, store.contracts, settings.schema_base_url)),
            # intake owns the district's calendar: approval counts its deadlines on the same days
            ("calendar", [settings.calendar_topic], calendar_events_handler()),
        ):
            consumers[name] = EventConsumer(settings, pool, topics=topics, group_id=f"{settings.consumer_group}.{name}",
                                            handler=handler, dead_letter_topic=settings.dead_letter_topic)
        runners.extend(consumers.values())
    return Wired(pool=pool, runners=runners, close=pool.close, state={
        "store": store, "transactions": transactions, "approvals": approvals, "approval_views": views,
        "seal_keys": keys, "timers": timers, "consumers": consumers,
    })
