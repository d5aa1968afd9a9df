"""Use cases of the affairs catalogue: read it, seed it, and let an admin change it.

The catalogue is one aggregate per district (its stream id is the district code); every change
is a new version of an entry, and open cases keep the version they started with.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Callable

from civicgrid_common.contracts import Departments
from civicgrid_common.eventstore import AggregateNotFound, ConcurrencyConflict, Repository

from intake.domain.catalogue import (
    Affair,
    AffairRevision,
    Catalogue,
    CatalogueRuleViolation,
    affairs_from_seed,
    seed_catalogue,
)

# A conflicting concurrent change is retried on fresh state: catalogue edits are rare and small.
_ATTEMPTS = 3


def demo_seed() -> tuple[Affair, ...]:
    """The affairs of the demo district (intake/domain/seed/affairs.json)."""
    text = resources.files("intake.domain.seed").joinpath("affairs.json").read_text(encoding="utf-8")
    return affairs_from_seed(json.loads(text))


class CatalogueService:
    def __init__(self, repository: Repository[Catalogue], district: str, departments: Departments) -> None:
        self.repository = repository
        self.district = district
        self.departments = departments

    def _check_departments(self, affair: Affair) -> None:
        """The affair's owning department and every department its routing names exist."""
        if affair.department not in self.departments:
            raise CatalogueRuleViolation("department", f"{affair.department!r} is no department "
                                                       "(contracts/departments.yaml lists them)")
        for code in self.departments.unknown(affair.routing.departments()):
            raise CatalogueRuleViolation("routing", f"{code!r} is no department (contracts/departments.yaml lists them)")

    async def load(self) -> Catalogue:
        try:
            return await self.repository.load(self.district)
        except AggregateNotFound:
            return Catalogue(self.district)

    async def active(self) -> tuple[AffairRevision, ...]:
        return (await self.load()).active()

    async def current(self, code: str) -> AffairRevision:
        return (await self.load()).current(code)

    async def revisions(self, code: str) -> tuple[AffairRevision, ...]:
        return (await self.load()).revisions(code)

    async def seed_if_empty(self, affairs: tuple[Affair, ...]) -> list[str]:
        """Demo data on first start only: once the catalogue has entries, they are the admins'
        to change, and a restart must not put the seed's versions back over their edits."""

        def seed(catalogue: Catalogue) -> list[str]:
            return [] if catalogue.codes() else seed_catalogue(catalogue, affairs)

        return await self._change(seed)

    async def add(self, affair: Affair) -> AffairRevision:
        self._check_departments(affair)
        await self._change(lambda c: c.add_affair(affair))
        return await self.current(affair.code)

    async def revise(self, affair: Affair, reason: str) -> AffairRevision:
        self._check_departments(affair)
        await self._change(lambda c: c.revise_affair(affair, reason))
        return await self.current(affair.code)

    async def retire(self, code: str, reason: str) -> None:
        await self._change(lambda c: c.retire_affair(code, reason))

    async def _change(self, command: Callable[[Catalogue], object]):
        for attempt in range(_ATTEMPTS):
            catalogue = await self.load()
            result = command(catalogue)
            try:
                await self.repository.save(catalogue)
                return result
            except ConcurrencyConflict:
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")
