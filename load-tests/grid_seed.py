"""A grid registry seeded with the generated city (grid_city.py), and grid workers' tokens for it:
shared by the daily-report benchmark (bench_grid_report.py) and the evening-peak load scenario
(grid_evening_peak.py).

The bulk path. Through the API a community is one `PUT .../boundary` and then one
`POST .../grids` per grid, each its own command on the community's `GridRegistry` stream: the
stream replayed, the grid checked against the boundary and the grids before it, one event
appended, and the registry projector rewriting every grid row of the community. 50,000 grids
are 51,000 such requests, whose cost grows with the community's size. Here each community is ONE
command in the application's unit of work (`app.state.transactions`, the same one the registry
service runs its commands in): the domain's `GridRegistry.set_boundary` and then
`define_grid` for each of its grids, every rule of the domain checked as the API would, and the
same events (`registry.boundary_set`, one `registry.grid_defined` per grid) appended with their
outbox rows and projected into `grid_view` in one transaction. What the registry holds
afterwards is what the API would have left; only the number of commands differs.

A community's boundary is the union of its grids (they tile it exactly).
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any, Sequence

import shapely

from civicgrid_grid.domain.codes import CommunityCode
from civicgrid_grid.domain.geometry import to_geojson
from civicgrid_grid.domain.registry import Grid, GridRegistry

from grid_city import City

SEEDED_BY = "admin-loadtest"
RESIDENTS, HOUSEHOLDS = 200, 75  # a micro-grid of the generated city (its households warned of, as the API would)


def community_plan(city: City) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """Each community's code, boundary (GeoJSON) and grids (as the API's request bodies)."""
    plan = []
    for community, codes in city.communities().items():
        polygons = [city.grids[c] for c in codes]
        boundary = shapely.union_all(polygons)
        if boundary.geom_type != "Polygon":
            raise AssertionError(f"community {community}'s grids do not make one polygon")
        grids = [{"code": c, "kind": "residential", "name": f"网格 {c[-3:]}", "polygon": to_geojson(p),
                  "households": HOUSEHOLDS, "residents": RESIDENTS, "responsible_party": f"gw-{c}"}
                 for c, p in zip(codes, polygons)]
        plan.append((community, to_geojson(boundary), grids))
    return plan


async def seed_registry(app: Any, city: City, *, at: datetime, concurrency: int = 4) -> int:
    """Every community of `city` into the registry of a running app (its lifespan entered):
    one unit of work a community, `concurrency` at a time. Returns the grids defined."""
    transactions = app.state.transactions
    plan = community_plan(city)
    queue = list(reversed(plan))

    async def seed_one(community: str, boundary: dict[str, Any], grids: Sequence[dict[str, Any]]) -> None:
        code = CommunityCode.parse(community, "community")
        parsed = [Grid.from_data(g, code) for g in grids]

        async def command(uow: Any) -> None:
            stream = GridRegistry.stream_for(code.value)
            registry = await uow.find(GridRegistry, stream) or uow.add(GridRegistry(stream))
            registry.set_boundary(boundary, by=SEEDED_BY, at=at)
            for grid in parsed:
                registry.define_grid(grid, by=SEEDED_BY, at=at)

        await transactions(command)

    async def worker() -> None:
        while queue:
            await seed_one(*queue.pop())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    app.state.locator.changed()
    return sum(len(g) for _, _, g in plan)


# ---------------------------------------------------------------------------- tokens

_KEY: Any = None


def _load_key() -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from civicgrid_common.identity.localkeys import ensure_local_keys, private_key_path
    from civicgrid_common.paths import local_state_dir

    keys = local_state_dir() / "keys"
    ensure_local_keys(keys)
    return load_pem_private_key(private_key_path(keys).read_bytes(), password=None)


def _mint(codes: Sequence[str]) -> list[str]:
    """One grid worker's token per grid code: role grid_worker, the grid as its jurisdiction,
    subject gw-<code>; signed with the local stack's key, for the settings' issuer and audience
    (what mint_local_token does, with the key parsed once instead of per token)."""
    global _KEY
    from civicgrid_common.identity.tokens import mint_token
    from civicgrid_common.settings import PlatformSettings

    if _KEY is None:
        _KEY = _load_key()
    s = PlatformSettings()
    # PyJWT takes the parsed key object as well as its PEM.
    return [mint_token(_KEY, "grid_worker", [c], subject=f"gw-{c}", issuer=s.jwt_issuer, audience=s.jwt_audience)
            for c in codes]


def worker_tokens(codes: Sequence[str], *, processes: int | None = None) -> list[str]:
    """The tokens of `_mint`, signed in a few processes (RS256 signing is ~1 ms a token)."""
    processes = processes or min(4, os.cpu_count() or 1)
    if len(codes) < 2_000 or processes < 2:
        return _mint(codes)
    step = -(-len(codes) // (processes * 4))
    chunks = [list(codes[i:i + step]) for i in range(0, len(codes), step)]
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        return [t for chunk in pool.map(_mint, chunks) for t in chunk]


# ---------------------------------------------------------------------------- the report day

def last_working_day(calendar: Any, today: date) -> date:
    """`today` if it is a working day, else the working day before it."""
    day = today
    while not calendar.is_working_day(day):
        day -= timedelta(days=1)
    return day
