"""`civicgrid rebuild statistics [--verify]`: replay the topics from the beginning into a fresh
version of the fact store, compare its checksum (every fact and every figure) with the live
version's, and swap the readers' views to it in one transaction only when they are equal.

The live faust workers keep running: they hold the projection's advisory lock shared for each
transaction; the rebuild holds it exclusively while it finishes exactly at their checkpoints,
so they wait at a transaction boundary and then continue on the new version.
"""
from __future__ import annotations

import asyncio
import sys

from civicgrid_common.db import create_pool
from civicgrid_common.projections import RebuildError, RebuildReport, rebuild

from civicgrid_statistics.adapters.fact_store import StatisticsProjection, open_store
from civicgrid_statistics.config import StatisticsSettings


async def rebuild_fact_store(settings: StatisticsSettings) -> RebuildReport:
    pool = await create_pool(settings)
    try:
        await open_store(pool)
        return await rebuild(settings, pool, StatisticsProjection(), topics=settings.topics)
    finally:
        await pool.close()


def rebuild_statistics(verify: bool = True) -> int:
    """The entry point of group `civicgrid.rebuild`: exit status 0 only when the rebuilt version
    equals the live one (and is now active). Without `verify` the outcome is printed the same,
    but a difference is not an error."""
    settings = StatisticsSettings()
    try:
        report = asyncio.run(rebuild_fact_store(settings))
    except RebuildError as exc:
        print(f"civicgrid rebuild statistics: {exc}", file=sys.stderr)
        return 1
    print(f"statistics: {report.describe()}")
    print(f"live checksum    {report.live_checksum}\nrebuilt checksum {report.rebuilt_checksum}")
    return 0 if report.equal or not verify else 1
