"""statistics' composition root: what the service is made of, wired in one fixed order.

    database → fact store → event store (its alerts) and their spans → the calendar's copy →
    units of work → alerts → facts → KPIs → what runs in the background (outbox relay, the
    consumer of the district's calendar, the faust worker)

Two processes use it: the API process (`bootstrap`, which also starts the faust worker as a
child process on the local stack) and each faust worker (`open_statistics`, for its facts and
alerts). Nothing else constructs services or adapters.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from civicgrid_common.calendar.overrides import install_calendar_schema, load_calendar
from civicgrid_common.calendar.sync import CalendarWatch, calendar_events_handler
from civicgrid_common.consumer import EventConsumer
from civicgrid_common.db import create_pool, ensure_database
from civicgrid_common.eventstore import EventStore
from civicgrid_common.outbox.relay import OutboxRelay
from civicgrid_common.service import ChildProcess, Runner, Wired
from civicgrid_common.unit_of_work import Transactions

from civicgrid_statistics.adapters.alerts import SqlWindows, SurgeSpans, install_alerts
from civicgrid_statistics.adapters.fact_store import FactTables, open_store
from civicgrid_statistics.adapters.kpi_reader import PgKpiReader
from civicgrid_statistics.application.alerts import AlertService
from civicgrid_statistics.application.facts import FactService
from civicgrid_statistics.application.kpis import KpiService
from civicgrid_statistics.config import StatisticsSettings
from civicgrid_statistics.domain.alerts import WindowRule


def window_rules(settings: StatisticsSettings) -> dict[str, WindowRule]:
    return {
        "complaint_surge": WindowRule("complaint_surge", settings.alert_complaint_threshold,
                                      timedelta(minutes=settings.alert_complaint_window_minutes)),
        "overdue_run": WindowRule("overdue_run", settings.alert_overdue_threshold,
                                  timedelta(minutes=settings.alert_overdue_window_minutes)),
    }


@dataclass(frozen=True)
class Statistics:
    pool: asyncpg.Pool
    store: EventStore
    transactions: Transactions
    facts: FactService
    kpis: KpiService


async def open_statistics(settings: StatisticsSettings) -> Statistics:
    await ensure_database(settings)
    pool = await create_pool(settings)
    await open_store(pool)
    # Every alert goes to the alerts topic, whatever its type.
    store = EventStore.for_service(pool, settings, topic_for=lambda _type: settings.alerts_topic)
    await store.install()
    await install_alerts(pool)
    await install_calendar_schema(pool)
    transactions = Transactions.for_service(store, [], settings)
    alerts = AlertService(transactions, SqlWindows(), SurgeSpans(), window_rules(settings))
    return Statistics(pool, store, transactions, FactService(transactions, FactTables(pool), alerts),
                      KpiService(PgKpiReader(pool), calendar=lambda: load_calendar(pool)))


async def bootstrap(settings: StatisticsSettings) -> Wired:
    statistics = await open_statistics(settings)
    runners: list[Runner] = [CalendarWatch(statistics.pool)]
    if settings.consume_calendar:  # intake owns the district's calendar: working days count the same here
        runners.append(EventConsumer(settings, statistics.pool, topics=[settings.calendar_topic],
                                     group_id=f"{settings.consumer_group}.calendar", handler=calendar_events_handler(),
                                     dead_letter_topic=settings.dead_letter_topic))
    if settings.outbox_relay:  # one relay per database publishes the alerts (an advisory lock)
        runners.append(OutboxRelay(statistics.pool, settings, name="statistics"))
    if settings.run_worker:  # the local stack; in Kubernetes the workers are their own Deployment
        runners.append(ChildProcess("statistics-worker",
                                    [sys.executable, "-m", "civicgrid_statistics.entrypoints.consumers", "worker"]))
    return Wired(pool=statistics.pool, runners=runners, close=statistics.pool.close, state={
        "store": statistics.store, "transactions": statistics.transactions, "kpis": statistics.kpis,
    })
