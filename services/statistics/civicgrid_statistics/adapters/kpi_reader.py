"""The KPI reader over read_statistics (the views of the active version of the fact store)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from civicgrid_common.projections import read_schema

from civicgrid_statistics.adapters import kpi_sql
from civicgrid_statistics.adapters.fact_store import NAME
from civicgrid_statistics.domain.figures import Filters


class PgKpiReader:
    def __init__(self, pool: asyncpg.Pool, schema: str | None = None) -> None:
        self.pool = pool
        self.schema = schema or read_schema(NAME)

    async def cases(self, filters: Filters, group_by: str, as_of: datetime | None) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            return await kpi_sql.case_figures(conn, self.schema, filters, group_by, as_of)

    async def complaints(self, filters: Filters, group_by: str, as_of: datetime | None) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            return await kpi_sql.complaint_figures(conn, self.schema, filters, group_by, as_of)

    async def satisfaction(self, filters: Filters, as_of: datetime | None) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            return await kpi_sql.satisfaction_figures(conn, self.schema, filters, as_of)

    async def workload(self, filters: Filters, as_of: datetime | None) -> dict[str, list[dict[str, Any]]]:
        async with self.pool.acquire() as conn:
            return await kpi_sql.workload_figures(conn, self.schema, filters, as_of)

    async def grid(self, filters: Filters, group_by: str, as_of: datetime | None) -> dict[str, list[dict[str, Any]]]:
        async with self.pool.acquire() as conn:
            return await kpi_sql.grid_figures(conn, self.schema, filters, group_by, as_of)

    async def notifications(self, filters: Filters, group_by: str, as_of: datetime | None) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            return await kpi_sql.notification_figures(conn, self.schema, filters, group_by, as_of)
