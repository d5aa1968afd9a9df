"""What approval learned of intake's cases from their events (registered, accepted, green
channel, withdrawn) and the approval it started for each: the `case_facts` table, written in
the consumer's transaction through the unit of work's connection."""
from __future__ import annotations

import json
from typing import Any, Mapping

import asyncpg

from civicgrid_common.db import install_schema
from civicgrid_common.unit_of_work import UnitOfWork

CASE_FACTS_DDL = """
CREATE TABLE IF NOT EXISTS case_facts (
    case_id      text        PRIMARY KEY,
    registered   jsonb,
    accepted     jsonb,
    green_reason text,
    approval_id  text,
    withdrawn    boolean     NOT NULL DEFAULT false
);
"""
COLUMNS = ("registered", "accepted", "green_reason", "approval_id", "withdrawn")
JSON_COLUMNS = ("registered", "accepted")


async def install_case_facts(pool: asyncpg.Pool) -> None:
    await install_schema(pool, [CASE_FACTS_DDL])


def _object(value: Any) -> Any:
    """A jsonb object; rows written by the first release hold it as a JSON string."""
    return json.loads(value) if isinstance(value, str) else value


class CaseFactsTable:
    """The application's CaseFacts port."""

    async def record(self, uow: UnitOfWork, case_id: str, **facts: Any) -> None:
        unknown = set(facts) - set(COLUMNS)
        if unknown or not facts:
            raise ValueError(f"case facts are {COLUMNS}, not {sorted(unknown)}")
        names = list(facts)  # checked against COLUMNS above: safe to name in the statement
        values = ", ".join(f"${i}::jsonb" if n in JSON_COLUMNS else f"${i}" for i, n in enumerate(names, start=2))
        await uow.conn.execute(
            f"INSERT INTO case_facts (case_id, {', '.join(names)}) VALUES ($1, {values}) "
            f"ON CONFLICT (case_id) DO UPDATE SET {', '.join(f'{n} = EXCLUDED.{n}' for n in names)}",
            case_id, *facts.values())

    async def of(self, uow: UnitOfWork, case_id: str) -> Mapping[str, Any] | None:
        row = await uow.conn.fetchrow("SELECT * FROM case_facts WHERE case_id = $1", case_id)
        if row is None:
            return None
        return {k: _object(v) if k in JSON_COLUMNS and v is not None else v for k, v in dict(row).items()}
