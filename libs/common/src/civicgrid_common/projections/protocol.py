"""What a projection is: tables in a schema it is given, an apply step, and a checksum.

A projection never names its schema itself: the runtime hands it one per version
(`proj_<name>_v<N>`), so a rebuild can fill a fresh version next to the live one.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable
from uuid import UUID

import asyncpg

from civicgrid_common.cloudevents import CloudEvent

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@runtime_checkable
class Projection(Protocol):
    name: str  # lower-case identifier; names the schemas proj_<name>_v<N> and read_<name>

    async def create(self, conn: asyncpg.Connection, schema: str) -> None:
        """Create the projection's tables inside `schema` (which exists and is empty)."""

    async def apply(self, conn: asyncpg.Connection, schema: str, event: CloudEvent) -> None:
        """Apply one event to the tables in `schema` (inside the caller's transaction)."""

    async def checksum(self, conn: asyncpg.Connection, schema: str) -> str:
        """A digest over every row, in a fixed order: equal iff the contents are equal."""

    # Optional: `async def apply_many(conn, schema, events: list[CloudEvent])` applies a whole
    # batch in one go (same effect as `apply` on each in order); the runner and the rebuild
    # use it when a projection has it.


def ident(name: str) -> str:
    """A validated, quoted SQL identifier (schema, table and view names are built, not bound)."""
    if not _IDENT.match(name):
        raise ValueError(f"{name!r} is not a plain lower-case SQL identifier")
    return f'"{name}"'


def _canonical(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def rows_digest(rows: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 over the rows as canonical JSON lines, in the order given.

    Column order within a row does not matter (keys are sorted); row order does, so callers
    pass rows sorted by a key."""
    h = hashlib.sha256()
    count = 0
    for row in rows:
        line = json.dumps(_canonical(dict(row)), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        h.update(line.encode("utf-8"))
        h.update(b"\n")
        count += 1
    return f"{count}:{h.hexdigest()}"


async def table_digest(conn: asyncpg.Connection, schema: str, table: str, order_by: Sequence[str]) -> str:
    """rows_digest over every row of schema.table, ordered by `order_by` columns."""
    if not order_by:
        raise ValueError("a checksum needs a fixed row order")
    order = ", ".join(ident(c) for c in order_by)
    rows = await conn.fetch(f"SELECT * FROM {ident(schema)}.{ident(table)} ORDER BY {order}")
    return rows_digest(dict(r) for r in rows)
