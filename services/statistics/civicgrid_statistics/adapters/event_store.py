"""statistics' own event store (its alerts) in its database, with the outbox its relay publishes."""
from __future__ import annotations

from datetime import timedelta

import asyncpg

from civicgrid_common.contracts import Contracts
from civicgrid_common.db import install_schema
from civicgrid_common.eventstore import EventStore

from civicgrid_statistics.adapters import alerts
from civicgrid_statistics.adapters.fact_store import Alerts
from civicgrid_statistics.config import StatisticsSettings
from civicgrid_statistics.domain.alerts import WindowRule


def event_store(pool: asyncpg.Pool, settings: StatisticsSettings) -> EventStore:
    return EventStore(pool, Contracts(settings.contracts_dir), source=settings.source,
                      schema_base_url=settings.schema_base_url, topic_for=lambda _type: settings.alerts_topic)


def window_rules(settings: StatisticsSettings) -> dict[str, WindowRule]:
    return {
        "complaint_surge": WindowRule("complaint_surge", settings.alert_complaint_threshold,
                                      timedelta(minutes=settings.alert_complaint_window_minutes)),
        "overdue_run": WindowRule("overdue_run", settings.alert_overdue_threshold,
                                  timedelta(minutes=settings.alert_overdue_window_minutes)),
    }


async def open_alerts(pool: asyncpg.Pool, settings: StatisticsSettings) -> Alerts:
    """Install the event store and the alerts' table; the function the worker hands to record()."""
    store = event_store(pool, settings)
    await store.install()
    await install_schema(pool, alerts.DDL)
    rules = window_rules(settings)

    async def decide(conn: asyncpg.Connection, schema: str, fresh: list) -> object:
        return await alerts.evaluate(conn, schema, store, rules, fresh)

    return decide
