"""Keeping facts: the facts of a batch of records and the partitions' next offsets are written
in one unit of work, and the window alerts the new facts cause are decided in it too, so a
fact, its checkpoint and its alert commit together or not at all."""
from __future__ import annotations

from typing import Mapping, Protocol, Sequence

from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_statistics.application.alerts import AlertService
from civicgrid_statistics.domain.facts import Fact


class FactLog(Protocol):
    """The fact store (adapters/fact_store.py)."""

    async def record(self, uow: UnitOfWork, facts: Sequence[Fact],
                     positions: Mapping[tuple[str, int], int]) -> tuple[str, list[Fact]]:
        """Insert the facts (a known event id adds nothing) and advance the checkpoints; the
        active version's schema and the facts that were new."""

    async def checkpoint(self, topic: str, partition: int) -> int | None:
        """The next offset the active version expects from a partition (None: nothing yet)."""


class FactService:
    def __init__(self, transactions: Transactions, facts: FactLog, alerts: AlertService) -> None:
        self.transactions = transactions
        self.facts = facts
        self.alerts = alerts

    async def keep(self, facts: Sequence[Fact], positions: Mapping[tuple[str, int], int]) -> None:
        async def keep(uow: UnitOfWork) -> None:
            schema, fresh = await self.facts.record(uow, facts, positions)
            if fresh:
                await self.alerts.decide(uow, schema, fresh)

        await self.transactions(keep)

    async def checkpoint(self, topic: str, partition: int) -> int | None:
        return await self.facts.checkpoint(topic, partition)
