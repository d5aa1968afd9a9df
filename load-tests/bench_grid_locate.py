"""grid_locate_ratio_vs_strtree: the grid service's `GridMap.locate(lat, lon)` over a bare
shapely STRtree query on the same polygons, for the same points.

Work: a generated city of 50,000 grids (grid_city.py: ten million residents at about 200 a
grid; irregular 8-corner polygons of about 200 by 200 m that tile the city around 32.0°N
118.8°E) and 100,000 query points, 95% inside a grid and 5% in a band outside every grid;
GRID_BENCH_GRIDS=N and GRID_BENCH_POINTS=N for other sizes. Nothing of it needs the stack.
Ours: `GridMap.locate(lat, lon)`, the domain's whole path: the coordinates checked (finite
numbers, in range, inside China's box) into a GeoPoint, its shapely Point, the tree query
with predicate "intersects" (boundary included, as the domain wants) and the lowest code on a
shared edge.
Peer: a bare `STRtree` over the same polygons: `tree.query(Point(lon, lat), predicate=
"intersects")` and the first hit's code, or None; nothing checked.
Both answer every point, and must agree with each other and with the grid each point was
drawn in. Points per second; the two sides alternate over a few rounds on the same list of
points. The build time of each index and the process's RSS are reported beside the ratio.
"""
from __future__ import annotations

import gc
import os
import resource

import psutil
import shapely
from shapely import Point, STRtree

from civicgrid_grid.domain.geometry import GridMap

from grid_city import City, Queries, generate_city, query_points
from harness import Result, Timer

GRIDS = int(os.environ.get("GRID_BENCH_GRIDS", "50000"))
POINTS = int(os.environ.get("GRID_BENCH_POINTS", "100000"))
ROUNDS = 3  # each side answers every point ROUNDS times
SLICE = 5_000  # the sides alternate every SLICE points
WARM_UP = 2_000

_city: tuple[City, Queries, float] | None = None
_rss: dict[str, float] = {}  # MB: at import, with the city generated, with the first GridMap built


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def city() -> tuple[City, Queries, float]:
    """The city and its points, generated once a process (not timed against either side)."""
    global _city
    if _city is None:
        _rss.setdefault("imported", rss_mb())
        with Timer() as t:
            c = generate_city(GRIDS)
            q = query_points(c, POINTS)
        _city = (c, q, t.seconds)
        _rss["city"] = rss_mb()
    return _city


def ours_locate(grid_map: GridMap, lats: list[float], lons: list[float]) -> list[str | None]:
    locate = grid_map.locate
    return [locate(lat, lon) for lat, lon in zip(lats, lons)]


def peer_locate(tree: STRtree, codes: list[str], lats: list[float], lons: list[float]) -> list[str | None]:
    query = tree.query
    out: list[str | None] = []
    for lat, lon in zip(lats, lons):
        found = query(Point(lon, lat), predicate="intersects")
        out.append(codes[found[0]] if len(found) else None)
    return out


async def run() -> Result:
    c, q, generated_in = city()
    codes = list(c.grids)  # code order, as GridMap holds them
    polygons = [c.grids[code] for code in codes]

    gc.collect()
    with Timer() as ours_build:
        grid_map = GridMap(c.grids)
    _rss.setdefault("index", rss_mb())
    with Timer() as peer_build:
        tree = STRtree(polygons)

    # Warm both up, then alternate in slices of the points (ours first on one slice, the peer
    # first on the next): drift on a shared machine falls on both sides alike.
    ours_locate(grid_map, q.lat[:WARM_UP], q.lon[:WARM_UP])
    peer_locate(tree, codes, q.lat[:WARM_UP], q.lon[:WARM_UP])
    ours_s = peer_s = 0.0
    flip = False
    for _ in range(ROUNDS):
        ours_answers: list[str | None] = []
        peer_answers: list[str | None] = []
        for start in range(0, len(q), SLICE):
            lats, lons = q.lat[start:start + SLICE], q.lon[start:start + SLICE]
            for side in (("peer", "ours") if flip else ("ours", "peer")):
                with Timer() as t:
                    answers = (ours_locate(grid_map, lats, lons) if side == "ours"
                               else peer_locate(tree, codes, lats, lons))
                if side == "ours":
                    ours_s += t.seconds
                    ours_answers += answers
                else:
                    peer_s += t.seconds
                    peer_answers += answers
            flip = not flip
    if ours_answers != q.expected:
        wrong = sum(a != e for a, e in zip(ours_answers, q.expected))
        raise AssertionError(f"GridMap.locate answered {wrong} of {len(q)} points with another grid than drawn in")
    if peer_answers != ours_answers:
        raise AssertionError("the bare STRtree and GridMap.locate disagree")

    ours_rate = len(q) * ROUNDS / ours_s
    peer_rate = len(q) * ROUNDS / peer_s
    outside = sum(e is None for e in q.expected)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    vertices = int(shapely.get_num_coordinates(polygons[0]))
    stats = (f"index build: GridMap {ours_build.seconds * 1000:.0f} ms, "
             f"bare STRtree {peer_build.seconds * 1000:.0f} ms; "
             f"RSS {_rss['imported']:.0f} MB after imports, {_rss['city']:.0f} MB with the city and points, "
             f"{_rss['index']:.0f} MB with the GridMap, now {rss_mb():.0f} MB (peak {peak_mb:.0f} MB); "
             f"city and points generated in {generated_in:.1f} s")
    print(f"  grid_locate: ours {ours_rate:,.0f} points/s, bare {peer_rate:,.0f} points/s, "
          f"ratio {ours_rate / peer_rate:.3f}; {stats}", flush=True)
    return Result(
        name="grid_locate_ratio_vs_strtree",
        ours=ours_rate,
        peer=peer_rate,
        unit="points/s",
        ours_label="civicgrid GridMap.locate(lat, lon) (coordinates checked, intersects, lowest code on an edge)",
        peer_label="bare shapely STRtree.query(Point, predicate='intersects'), first hit's code",
        work=(f"{len(c):,} grids ({len(c.communities()):,} communities, {vertices - 1}-corner polygons), "
              f"{len(q):,} points ({outside:,} outside every grid) x {ROUNDS} rounds each side; {stats}"),
    )
