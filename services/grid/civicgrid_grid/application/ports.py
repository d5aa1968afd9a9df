"""What the application needs from the adapters, as protocols: the adapters implement them,
bootstrap.py wires them, and the application never imports an adapter."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable, Protocol, Sequence, TypeVar

from civicgrid_common.aggregate import Aggregate
from civicgrid_common.calendar.working_days import WorkingCalendar
from civicgrid_common.eventstore import AggregateNotFound
from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.problems import NotFound, OutsideJurisdiction
from civicgrid_common.unit_of_work import Transactions

from civicgrid_grid.domain.community_work import AccessGrant

A = TypeVar("A", bound=Aggregate)


class Locator(Protocol):
    """The district's active grids as an R-tree (adapters/locator.py)."""

    async def locate(self, lat: float, lon: float, *, fresh: bool = False) -> str | None:
        """The one grid the point lies in, or None; `fresh`: first catch up with changes made
        by other replicas (a command that files something in a grid asks for it)."""

    async def area(self, code: str) -> Any:
        """The active grid's polygon (shapely), or None."""

    def changed(self) -> None:
        """A registry command of this process committed: reload before the next locate."""


class Calendars(Protocol):
    async def __call__(self) -> WorkingCalendar: ...


class Grants(Protocol):
    """approval's access decisions as grid keeps them (adapters/grants.py)."""

    async def in_force(self, conn: Any, department: str, community: str) -> Iterable[AccessGrant]: ...


class Photos(Protocol):
    """The content-addressed photo store (adapters/photos.py)."""

    async def missing(self, digests: Iterable[str]) -> set[str]: ...


@dataclass(frozen=True)
class GridRow:
    code: str
    community: str


class ActiveGrids(Protocol):
    """The active grids (adapters/views.py): the missing-report check asks for them."""

    async def active_codes(self, conn: Any, prefix: str) -> list[str]: ...

    async def active_communities(self, conn: Any, prefix: str) -> list[str]: ...

    async def reported(self, conn: Any, prefix: str, day: date) -> set[str]: ...

    async def unknown_incidents(self, grid: str, ids: Sequence[str]) -> list[str]: ...


GRID_STAFF = frozenset({Role.GRID_WORKER, Role.COMMUNITY_REVIEWER, Role.STREET_REVIEWER, Role.LEADER, Role.AUDITOR,
                        Role.ADMIN})


def check_in(principal: Principal, code: str, field: str) -> None:
    """A code named in the input must lie in the caller's jurisdiction (403, naming the field)."""
    if not principal.may_act_in(code):
        raise OutsideJurisdiction(field)


class GridNotFound(NotFound):
    def __init__(self, what: str, id: str) -> None:
        super().__init__(what, id)


async def load_or_none(transactions: Transactions, cls: type[A], stream_id: str) -> A | None:
    """An aggregate for reading, or None when its stream does not exist (or is of another type)."""
    try:
        return await transactions.load(cls, stream_id)
    except AggregateNotFound:
        return None
