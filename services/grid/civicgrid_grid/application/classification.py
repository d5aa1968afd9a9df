"""The district's classification table (digital urban management: parts 部件 and events 事件,
major and minor classes, a responsible department and a handling limit per minor class):
seeded on first start, read by anyone signed in, edited by the district's admin."""
from __future__ import annotations

from typing import Any, Collection, Mapping

from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.identity.principal import Principal
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_grid.application.ports import check_in, load_or_none
from civicgrid_grid.domain.classification import (
    ClassKey, Classification, MinorClass, classes_from_seed, seed_classification,
)


class ClassificationService:
    def __init__(self, transactions: Transactions, *, district: str, departments: Collection[str],
                 clock: Clock = utc_now) -> None:
        self.transactions = transactions
        self.district = district
        self.departments = frozenset(departments)
        self.clock = clock
        self.stream = Classification.stream_for(district)

    async def seed(self, document: Mapping[str, Any]) -> int:
        classes = classes_from_seed(document)
        at = self.clock()

        async def seed(uow: UnitOfWork) -> int:
            table = await uow.find(Classification, self.stream) or uow.add(Classification(self.stream))
            return len(seed_classification(table, classes, known_departments=self.departments, by="seed", at=at))

        return await self.transactions(seed)

    async def table(self) -> Classification:
        return await load_or_none(self.transactions, Classification, self.stream) or Classification(self.stream)

    async def _change(self, principal: Principal, command: Any) -> None:
        check_in(principal, self.district, "district")
        at = self.clock()

        async def change(uow: UnitOfWork) -> None:
            command(await uow.find(Classification, self.stream) or uow.add(Classification(self.stream)), at)

        await self.transactions(change)

    async def add(self, principal: Principal, data: Mapping[str, Any]) -> None:
        minor = MinorClass.from_data(data)
        await self._change(principal, lambda t, at: t.add_class(minor, known_departments=self.departments,
                                                                 by=principal.subject, at=at))

    async def revise(self, principal: Principal, data: Mapping[str, Any], reason: str) -> None:
        minor = MinorClass.from_data(data)
        await self._change(principal, lambda t, at: t.revise_class(minor, reason=reason,
                                                                    known_departments=self.departments,
                                                                    by=principal.subject, at=at))

    async def retire(self, principal: Principal, kind: str, major: str, minor: str, reason: str) -> None:
        key = ClassKey.parse(kind, major, minor)
        await self._change(principal, lambda t, at: t.retire_class(key, reason=reason, by=principal.subject, at=at))
