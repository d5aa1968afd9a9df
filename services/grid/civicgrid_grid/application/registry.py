"""The grid registry's use cases: a community's boundary and grids (defined, revised, redrawn,
split, merged, retired), buildings, components and grid workers; locating a point.

The district's admin keeps the registry (a 403 for anyone else, from the route); every change
is one command on the community's `GridRegistry` in a unit of work, whose projector writes the
`grid_view` table in the same transaction; the locator reloads its R-tree after it."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.identity.principal import Principal
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_grid.application.ports import Locator, check_in
from civicgrid_grid.domain.classification import Classification, Kind
from civicgrid_grid.domain.codes import CommunityCode, GridCode
from civicgrid_grid.domain.geometry import GeoPoint
from civicgrid_grid.domain.registry import Grid, GridRegistry


class RegistryService:
    def __init__(self, transactions: Transactions, locator: Locator, *, clock: Clock = utc_now) -> None:
        self.transactions = transactions
        self.locator = locator
        self.clock = clock

    async def _change(self, principal: Principal, community: str, command: Any, *, new: bool = False) -> Any:
        code = CommunityCode.parse(community, "community")
        check_in(principal, code.value, "community")
        at = self.clock()

        async def change(uow: UnitOfWork) -> Any:
            stream = GridRegistry.stream_for(code.value)
            registry = await uow.find(GridRegistry, stream) or uow.add(GridRegistry(stream))
            return command(registry, at)

        result = await self.transactions(change)
        self.locator.changed()
        return result

    async def set_boundary(self, principal: Principal, community: str, polygon: Any) -> None:
        await self._change(principal, community, lambda r, at: r.set_boundary(polygon, by=principal.subject, at=at))

    async def define(self, principal: Principal, community: str, grid: Mapping[str, Any]) -> list[dict[str, Any]]:
        parsed = Grid.from_data(grid, CommunityCode.parse(community, "community"))
        return await self._change(principal, community, lambda r, at: r.define_grid(parsed, by=principal.subject, at=at))

    async def revise(self, principal: Principal, grid: str, changes: Mapping[str, Any], reason: str) -> list[dict]:
        code = GridCode.parse(grid, "grid")
        return await self._change(principal, code.community.value, lambda r, at: r.revise_grid(
            code.value, changes, reason=reason, by=principal.subject, at=at))

    async def redraw(self, principal: Principal, grid: str, polygon: Any, reason: str) -> None:
        code = GridCode.parse(grid, "grid")
        await self._change(principal, code.community.value, lambda r, at: r.redraw_grid(
            code.value, polygon, reason=reason, by=principal.subject, at=at))

    async def split(self, principal: Principal, grid: str, parts: Sequence[Mapping[str, Any]], reason: str) -> dict:
        code = GridCode.parse(grid, "grid")
        community = code.community
        parsed = [Grid.from_data(p, community, f"parts/{i}") for i, p in enumerate(parts)]
        return await self._change(principal, community.value, lambda r, at: r.split_grid(
            code.value, parsed, reason=reason, by=principal.subject, at=at))

    async def merge(self, principal: Principal, community: str, codes: Sequence[str], into: Mapping[str, Any],
                    reason: str) -> list[dict[str, Any]]:
        parsed = Grid.from_data(into, CommunityCode.parse(community, "community"), "into")
        return await self._change(principal, community, lambda r, at: r.merge_grids(
            list(codes), parsed, reason=reason, by=principal.subject, at=at))

    async def retire(self, principal: Principal, grid: str, reason: str) -> None:
        code = GridCode.parse(grid, "grid")
        await self._change(principal, code.community.value, lambda r, at: r.retire_grid(
            code.value, reason=reason, by=principal.subject, at=at))

    async def register_building(self, principal: Principal, grid: str, building: str, place: Any,
                                name: str | None) -> str:
        code = GridCode.parse(grid, "grid")
        return str(await self._change(principal, code.community.value, lambda r, at: r.register_building(
            code.value, building, place, name=name, by=principal.subject, at=at)))

    async def register_component(self, principal: Principal, community: str, component_id: str, lat: float,
                                 lon: float) -> str:
        """A component's class must be a part class of the district's table as it is now."""
        location = GeoPoint.parse(lat, lon, field="location")
        code = CommunityCode.parse(community, "community")
        check_in(principal, code.value, "community")
        at = self.clock()

        async def register(uow: UnitOfWork) -> str:
            table = await uow.get(Classification, Classification.stream_for(code.district.value))
            parts = {r.key for r in table.active(Kind.PART)}
            stream = GridRegistry.stream_for(code.value)
            registry = await uow.find(GridRegistry, stream) or uow.add(GridRegistry(stream))
            return registry.register_component(component_id, location, part_classes=parts, by=principal.subject,
                                               at=at)

        return await self.transactions(register)

    async def assign_workers(self, principal: Principal, grid: str, workers: Sequence[str], lead: str) -> None:
        code = GridCode.parse(grid, "grid")
        await self._change(principal, code.community.value, lambda r, at: r.assign_workers(
            code.value, workers, lead=lead, by=principal.subject, at=at))

    async def locate(self, lat: float, lon: float) -> str | None:
        point = GeoPoint.parse(lat, lon, field="location")
        return await self.locator.locate(point.lat, point.lon)
