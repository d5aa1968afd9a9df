"""The district's active grids as an R-tree in memory (the domain's GridMap, on shapely's
STRtree): `GET /v1/grids/locate` and every report that files something in a grid ask it.

The tree is built from `grid_view` and rebuilt when the registry's generation moves: at once
after a registry command of this process, and for changes made by another replica when a
caller asks for a fresh answer (a command filing an incident), or at most `refresh_seconds`
after the change for plain lookups."""
from __future__ import annotations

import asyncio
import time

from shapely import Polygon

from civicgrid_grid.adapters.views import GridReads
from civicgrid_grid.domain.geometry import GridMap, from_geojson


class GridLocator:
    def __init__(self, reads: GridReads, *, refresh_seconds: float = 1.0) -> None:
        self.reads = reads
        self.refresh_seconds = refresh_seconds
        self._map: GridMap | None = None
        self._polygons: dict[str, Polygon] = {}
        self._generation: int | None = None
        self._checked = 0.0
        self._lock = asyncio.Lock()

    def changed(self) -> None:
        self._generation = None

    async def _current(self, fresh: bool) -> GridMap:
        due = fresh or time.monotonic() - self._checked >= self.refresh_seconds
        if self._map is not None and self._generation is not None and not due:
            return self._map
        async with self._lock:
            generation = await self.reads.generation()
            self._checked = time.monotonic()
            if self._map is None or generation != self._generation:
                polygons = {code: from_geojson(polygon) for code, polygon in await self.reads.polygons()}
                self._map, self._polygons, self._generation = GridMap(polygons), polygons, generation
            return self._map

    async def locate(self, lat: float, lon: float, *, fresh: bool = False) -> str | None:
        return (await self._current(fresh)).locate(lat, lon)

    async def area(self, code: str) -> Polygon | None:
        await self._current(False)
        return self._polygons.get(code)

