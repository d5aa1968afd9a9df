"""Use cases of the affairs catalogue: read it, seed it, and let an admin change it.

The catalogue is one aggregate per district (its stream id is the district code); every change
is a new version of an entry, and open cases keep the version they started with.

Who may change it is decided here: an admin of this district (an admin of another district, or
of one street, does not edit this district's list). Every refusal is a RuleViolation the web
layer answers in one place: an unknown or retired code is `AffairNotFound` (404), a rule of the
catalogue a `CatalogueRuleViolation` (422 naming the field), the wrong caller `NotTheDistrictsAdmin`
(403). The affair itself arrives checked (an `Affair` cannot be made otherwise).
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Callable, TypeVar

from civicgrid_common.contracts import Departments
from civicgrid_common.eventstore import AggregateNotFound
from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.problems import Refusal, RuleViolation
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_intake.domain.affair import Affair
from civicgrid_intake.domain.catalogue import (
    AffairRevision,
    Catalogue,
    CatalogueRuleViolation,
    affairs_from_seed,
    seed_catalogue,
)

T = TypeVar("T")


def demo_seed() -> tuple[Affair, ...]:
    """The affairs of the demo district (intake/domain/seed/affairs.json)."""
    text = resources.files("civicgrid_intake.domain.seed").joinpath("affairs.json").read_text(encoding="utf-8")
    return affairs_from_seed(json.loads(text))


class NotTheDistrictsAdmin(RuleViolation):
    refusal = Refusal.FORBIDDEN

    def __init__(self, district: str) -> None:
        super().__init__("not_the_districts_admin", f"changing the catalogue needs an admin of district {district}")


class CatalogueService:
    def __init__(self, transactions: Transactions, district: str, departments: Departments) -> None:
        self.transactions = transactions
        self.district = district
        self.departments = departments

    # ------------------------------------------------------------------ reads (everyone signed in)

    async def load(self) -> Catalogue:
        try:
            return await self.transactions.load(Catalogue, self.district)
        except AggregateNotFound:
            return Catalogue(self.district)

    async def active(self) -> tuple[AffairRevision, ...]:
        return (await self.load()).active()

    async def current(self, code: str) -> AffairRevision:
        return (await self.load()).current(code)

    async def revisions(self, code: str) -> tuple[AffairRevision, ...]:
        return (await self.load()).revisions(code)

    # ------------------------------------------------------------------ commands (this district's admin)

    async def add(self, principal: Principal, affair: Affair) -> AffairRevision:
        self._check_admin(principal)
        self._check_departments(affair, at="")
        await self._change(lambda c: c.add_affair(affair))
        return await self.current(affair.code)

    async def revise(self, principal: Principal, code: str, affair: Affair, reason: str) -> AffairRevision:
        """A new version of entry `code`; fields are named in the revision's input {reason, affair}."""
        self._check_admin(principal)
        if affair.code != code:
            raise CatalogueRuleViolation("affair/code", f"the body is for {affair.code}, the path for {code}")
        self._check_departments(affair, at="affair/")
        await self._change(lambda c: c.revise_affair(affair, reason))
        return await self.current(affair.code)

    async def retire(self, principal: Principal, code: str, reason: str) -> None:
        self._check_admin(principal)
        await self._change(lambda c: c.retire_affair(code, reason))

    async def seed_if_empty(self, affairs: tuple[Affair, ...]) -> list[str]:
        """Demo data on first start only: once the catalogue has entries, they are the admins'
        to change, and a restart must not put the seed's versions back over their edits."""

        def seed(catalogue: Catalogue) -> list[str]:
            return [] if catalogue.codes() else seed_catalogue(catalogue, affairs)

        return await self._change(seed)

    # ------------------------------------------------------------------ plumbing

    def _check_admin(self, principal: Principal) -> None:
        # The district itself among the admin's jurisdictions: a street's admin is inside the
        # district but does not change its list.
        if not principal.has_any(Role.ADMIN) or self.district not in principal.jurisdictions:
            raise NotTheDistrictsAdmin(self.district)

    def _check_departments(self, affair: Affair, *, at: str) -> None:
        """The affair's owning department and every department its routing names exist."""
        if affair.department not in self.departments:
            raise CatalogueRuleViolation(f"{at}department", f"{affair.department!r} is no department "
                                                            "(contracts/departments.yaml lists them)")
        for code in self.departments.unknown(affair.routing.departments()):
            raise CatalogueRuleViolation(f"{at}routing", f"{code!r} is no department "
                                                         "(contracts/departments.yaml lists them)")

    async def _change(self, command: Callable[[Catalogue], T]) -> T:
        async def change(uow: UnitOfWork) -> T:
            catalogue = await uow.find(Catalogue, self.district) or uow.add(Catalogue(self.district))
            return command(catalogue)

        return await self.transactions(change)
