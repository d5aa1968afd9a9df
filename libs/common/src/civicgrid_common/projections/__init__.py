"""Projections: read models kept by a runner, rebuilt from the log and swapped in without a gap.

    runner = ProjectionRunner(settings, pool, CaseCounts(), topics=["civicgrid.intake.cases"])
    await runner.run()                                          # until runner.stop()
    report = await rebuild(settings, pool, CaseCounts(), topics=[...])

Readers query the views in schema `read_<name>`; each version's tables live in
`proj_<name>_v<N>`. Readers use READ COMMITTED (PostgreSQL's default): a reader holding a
REPEATABLE READ snapshot across a swap would see the new version as of its old snapshot,
possibly still empty.
"""
from civicgrid_common.projections.protocol import Projection, ident, rows_digest, table_digest
from civicgrid_common.projections.rebuild import RebuildError, RebuildReport, rebuild
from civicgrid_common.projections.runner import ProjectionRunner
from civicgrid_common.projections.store import read_schema, version_schema

__all__ = [
    "Projection", "ProjectionRunner", "RebuildError", "RebuildReport", "ident", "read_schema", "rebuild",
    "rows_digest", "table_digest", "version_schema",
]
