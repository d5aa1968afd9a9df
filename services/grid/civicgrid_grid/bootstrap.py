"""grid's composition root: what the service is made of, wired in one fixed order.

    database → event store → read tables, grants, photos, calendar copy, timers → locator →
    units of work (grid, incident, report and dispute tables; incident deadline timers) →
    the services → classification seeded, the daily check armed → what runs in the background
    (outbox relay; consumers of intake's complaints, approval's access decisions, the
    departments' results and the district's calendar; timers)

Nothing else constructs services or adapters; entry points ask for what they need from here.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from civicgrid_common.calendar.working_days import CHINA_TZ, local_date
from civicgrid_common.calendar.overrides import install_calendar_schema
from civicgrid_common.calendar.sync import CalendarWatch, calendar_events_handler
from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.consumer import EventConsumer
from civicgrid_common.db import create_pool, ensure_database
from civicgrid_common.eventstore import EventStore
from civicgrid_common.outbox.relay import OutboxRelay
from civicgrid_common.service import Runner, Wired
from civicgrid_common.timers import TimerWorker, install_timers
from civicgrid_common.unit_of_work import Transactions

from civicgrid_grid.adapters.calendar import CachedCalendar
from civicgrid_grid.adapters.deadlines import OWNER, IncidentDeadlineProjector, schedule_missing_check
from civicgrid_grid.adapters.grants import AccessGrants, install_grants
from civicgrid_grid.adapters.locator import GridLocator
from civicgrid_grid.adapters.photos import PhotoStore
from civicgrid_grid.adapters.photos import install as install_photos
from civicgrid_grid.adapters.views import (
    DailyReportProjector, DisputeProjector, GridReads, IncidentProjector, RegistryProjector, install_views,
)
from civicgrid_grid.application.classification import ClassificationService
from civicgrid_grid.application.field_work import FieldWorkService
from civicgrid_grid.application.incidents import IncidentService
from civicgrid_grid.application.registry import RegistryService
from civicgrid_grid.application.stability import StabilityService
from civicgrid_grid.config import GridSettings
from civicgrid_grid.domain.seed import seed_document
from civicgrid_grid.entrypoints.consumers import (
    access_handler, complaints_handler, department_results_handler, timers_handler,
)


async def bootstrap(settings: GridSettings, *, clock: Clock = utc_now) -> Wired:
    await ensure_database(settings)
    pool = await create_pool(settings)
    store = EventStore.for_service(pool, settings)
    await store.install()
    photos = PhotoStore(pool)
    for install in (install_views, install_grants, install_calendar_schema, install_timers, install_photos):
        await install(pool)

    calendar = CachedCalendar(pool, ttl_seconds=settings.calendar_cache_seconds)

    reads = GridReads(pool)
    locator = GridLocator(reads, refresh_seconds=settings.locate_refresh_seconds)
    grants = AccessGrants()
    transactions = Transactions.for_service(
        store, [RegistryProjector(), IncidentProjector(), DailyReportProjector(), DisputeProjector(),
                IncidentDeadlineProjector(settings.warning_share)], settings)
    departments = sorted(store.contracts.departments)
    classification = ClassificationService(transactions, district=settings.district, departments=departments,
                                           clock=clock)
    registry = RegistryService(transactions, locator, clock=clock)
    field_work = FieldWorkService(transactions, locator, calendar, reads, district=settings.district,
                                  check_hour=time(settings.report_check_hour), clock=clock)
    incidents = IncidentService(transactions, locator, calendar, photos, district=settings.district,
                                departments=departments, clock=clock)
    stability = StabilityService(transactions, locator, grants, clock=clock)
    if settings.seed_classification:
        await classification.seed(seed_document())
    # The daily check: today's (due at once if its hour has passed and it never fired, e.g. the
    # first start after 17:00), else the next; each firing arms the next (exactly once).
    today = datetime.combine(local_date(clock()), time(0), CHINA_TZ) - timedelta(microseconds=1)
    nxt = field_work.next_check(today, await calendar())
    async with pool.acquire() as conn:
        await schedule_missing_check(conn, nxt, field_work.day_of(nxt).isoformat())

    timers = TimerWorker(pool, owner=OWNER, handler=timers_handler(incidents, field_work, calendar), clock=clock,
                         poll_interval=settings.timer_poll_seconds)
    runners: list[Runner] = [CalendarWatch(pool)]
    if settings.outbox_relay:
        runners.append(OutboxRelay(pool, settings, name="grid"))
    if settings.timers:
        runners.append(timers)
    consumers = {}
    if settings.consume:
        for name, topics, handler in (
            ("intake-complaints", [settings.intake_complaints_topic], complaints_handler(incidents, locator)),
            ("approval-access", [settings.approval_access_topic], access_handler(grants)),
            ("department-results", settings.department_result_topics,
             department_results_handler(incidents, store.contracts)),
            ("calendar", [settings.calendar_topic], calendar_events_handler()),
        ):
            consumers[name] = EventConsumer(settings, pool, topics=topics, group_id=f"{settings.consumer_group}.{name}",
                                            handler=handler, dead_letter_topic=settings.dead_letter_topic)
        runners.extend(consumers.values())
    return Wired(pool=pool, runners=runners, close=pool.close, state={
        "store": store, "transactions": transactions, "classification": classification, "registry": registry,
        "field_work": field_work, "incidents": incidents, "stability": stability, "grid_reads": reads,
        "locator": locator, "photos": photos, "grants": grants, "timers": timers, "consumers": consumers,
    })
