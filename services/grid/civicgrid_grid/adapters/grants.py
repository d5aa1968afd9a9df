"""The access grants (准入) approval decided, as grid keeps them from `civicgrid.approval.access`:
the department, the kind of work, the communities and the dates an approved application names."""
from __future__ import annotations

from datetime import date
from typing import Any, Mapping

import asyncpg

from civicgrid_common.db import install_schema

from civicgrid_grid.domain.community_work import AccessGrant, WorkKind

GRANTS_DDL = """
CREATE TABLE IF NOT EXISTS access_grants (
    application_id text    PRIMARY KEY,
    department     text    NOT NULL,
    work_kind      text    NOT NULL,
    communities    text[]  NOT NULL,
    valid_from     date    NOT NULL,
    valid_until    date    NOT NULL
);
CREATE INDEX IF NOT EXISTS access_grants_department ON access_grants (department);
"""


async def install_grants(pool: asyncpg.Pool) -> None:
    await install_schema(pool, [GRANTS_DDL])


class AccessGrants:
    async def record(self, conn: asyncpg.Connection, data: Mapping[str, Any]) -> bool:
        """An approved decision becomes a grant (a redelivered one changes nothing); a refused
        one grants nothing."""
        if data.get("outcome") != "approved":
            return False
        a = data["application"]
        return bool(await conn.fetchval(
            "INSERT INTO access_grants VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING RETURNING true",
            data["application_id"], a["department"], a["work_kind"], list(a["communities"]),
            date.fromisoformat(a["valid_from"]), date.fromisoformat(a["valid_until"])))

    async def in_force(self, conn: asyncpg.Connection, department: str, community: str) -> list[AccessGrant]:
        rows = await conn.fetch("SELECT * FROM access_grants WHERE department = $1 AND $2 = ANY(communities)",
                                department, community)
        return [AccessGrant(r["application_id"], r["department"], WorkKind(r["work_kind"]), frozenset(r["communities"]),
                            r["valid_from"], r["valid_until"]) for r in rows]
