"""What the application needs from the adapters, as protocols (the bootstrap hands in the real ones)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Protocol, Sequence

import asyncpg


@dataclass(frozen=True)
class Address:
    """Where an in-app item goes: a person (`user`, their token subject) or the holders of a
    role in a jurisdiction (`role`)."""

    kind: str
    address: str
    jurisdiction: str | None = None

    @property
    def key(self) -> str:
        """The recipient as the ledger keys it: one delivery per (event, channel, key)."""
        return f"user:{self.address}" if self.kind == "user" else f"role:{self.address}@{self.jurisdiction}"


class Ledger(Protocol):
    async def record(self, conn: asyncpg.Connection, *, event_id: str, event_type: str, rule_id: str, channel: str,
                     recipient: str, urgent: bool, message: Mapping[str, Any], status: str,
                     at: datetime, error: str | None = None, not_before: datetime | None = None) -> str | None: ...


class Inbox(Protocol):
    async def deliver(self, conn: asyncpg.Connection, *, delivery_id: str, address_kind: str, address: str,
                      jurisdiction: str | None, event_type: str, urgent: bool, title: str, body: str,
                      link: str | None, at: datetime, digest: bool = False) -> int: ...

    async def digestible(self, conn: asyncpg.Connection, *, subject: str, roles: Sequence[str],
                         jurisdictions: Sequence[str], after: datetime, until: datetime,
                         limit: int) -> tuple[list[tuple[int, str]], int]: ...


class Facts(Protocol):
    async def remember(self, conn: asyncpg.Connection, subject: str, facts: Mapping[str, Any], *,
                       at: datetime) -> None: ...

    async def about(self, conn: asyncpg.Connection, subject: str) -> dict[str, Any]: ...
