"""A generated city of grids, for the locate benchmark and its unit test. Deterministic: the
same seed gives the same city and the same query points. Pure: no I/O.

The numbers. A city of ten million (Nanjing is 9.5 million) at about 200 residents a grid is
50,000 grids. That is finer than the usual 300 to 500 households (about 1,000 residents) of a
unit grid in the guidelines, on purpose: a fine-meshed city (micro-grids, 微网格) is the large
end of what the index must hold. The hierarchy is a round, plausible one:

    10 districts (区)          x 10 streets (街道) x 10 communities (社区) x 50 grids (网格)
    = 100 streets, 1,000 communities, 50,000 grids

Nanjing has 11 districts, about 100 streets and about 1,300 communities: the same order.

The layout. The grids are cells of one lattice of about 200 by 200 m (0.0018° of latitude
by 0.0021° of longitude at 32°N), its corners jittered (±20% of a cell) and each edge bent at a
jittered midpoint (±10%), so a grid is an irregular octagon-like polygon of 8 corners.
Neighbours share their vertices exactly, so grids tile the city: they touch along whole edges
and never overlap. Keeping every corner in its own fifth of a cell around its lattice point
keeps opposite edges in disjoint bands, so no polygon crosses itself (every one is also
checked). Blocks of the lattice nest:

    community  10 rows x  5 columns of grids       about 2.0 x 1.0 km
    street      2 rows x  5 columns of communities about 4.0 x 5.2 km
    district    2 rows x  5 columns of streets     about 8.0 x 26 km
    city       districts 5 rows x 2 columns        about 40 x 52 km, 2,000 km², around 32.0°N 118.8°E

Codes are GB/T 2260 district codes of Nanjing (320102 Xuanwu, 320104 Qinhuai, ...), then
street, community and grid numbers from 001; grids are numbered west to east, north to south
inside their community, as the domain's codes say. `generate_city(n)` keeps the first n grids
in code order (the last community may be partly filled, and the lattice cells of grids not
kept are holes outside every grid); more than one city's worth adds districts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely import Polygon

DEFAULT_GRIDS = 50_000
DEFAULT_SEED = 20_260_302
CENTRE_LAT, CENTRE_LON = 32.0, 118.8
CELL_LAT, CELL_LON = 0.0018, 0.0021  # about 200 m by 198 m at 32°N
CORNER_JITTER, MIDPOINT_JITTER = 0.2, 0.1  # fractions of a cell

# Blocks, as (rows, columns) of the level below.
GRIDS_IN_COMMUNITY = (10, 5)
COMMUNITIES_IN_STREET = (2, 5)
STREETS_IN_DISTRICT = (2, 5)
DISTRICT_COLUMNS = 2  # districts are laid out in rows of two

# Nanjing's districts (GB/T 2260); more districts than these take unused 3201xx numbers.
NANJING_DISTRICTS = ("320102", "320104", "320105", "320106", "320111", "320113",
                     "320114", "320115", "320116", "320117", "320118")


def _per(block: tuple[int, int]) -> int:
    return block[0] * block[1]


GRIDS_PER_COMMUNITY = _per(GRIDS_IN_COMMUNITY)
GRIDS_PER_STREET = GRIDS_PER_COMMUNITY * _per(COMMUNITIES_IN_STREET)
GRIDS_PER_DISTRICT = GRIDS_PER_STREET * _per(STREETS_IN_DISTRICT)
# A district's size in lattice cells.
DISTRICT_ROWS = GRIDS_IN_COMMUNITY[0] * COMMUNITIES_IN_STREET[0] * STREETS_IN_DISTRICT[0]
DISTRICT_COLS = GRIDS_IN_COMMUNITY[1] * COMMUNITIES_IN_STREET[1] * STREETS_IN_DISTRICT[1]


def district_codes(count: int) -> list[str]:
    extra = [f"3201{k:02d}" for k in range(1, 100) if f"3201{k:02d}" not in NANJING_DISTRICTS]
    codes = list(NANJING_DISTRICTS) + extra
    if count > len(codes):
        raise ValueError(f"at most {len(codes)} districts ({len(codes) * GRIDS_PER_DISTRICT} grids)")
    return codes[:count]


@dataclass(frozen=True)
class City:
    """Plain data: every grid's code and polygon (normalized, as the registry stores them), in
    code order; where the city's lattice lies; the seed it came from."""

    grids: dict[str, Polygon]
    bounds: tuple[float, float, float, float]  # west, south, east, north of the whole lattice
    seed: int
    cells: dict[str, tuple[int, int]] = field(repr=False)  # code -> (row from the north, column)

    def __len__(self) -> int:
        return len(self.grids)

    def community_of(self, code: str) -> str:
        return code[:12]

    def communities(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for code in self.grids:
            out.setdefault(code[:12], []).append(code)
        return out

    def grid_map(self):
        """The domain's locate index over this city (GridMap takes code -> shapely Polygon)."""
        from civicgrid_grid.domain.geometry import GridMap

        return GridMap(self.grids)


def _layout(n: int) -> tuple[list[str], list[tuple[int, int]], int]:
    """The first n grids' codes in code order, each with its lattice cell (row from the north,
    column from the west), and the number of districts."""
    districts = max(1, math.ceil(n / GRIDS_PER_DISTRICT))
    codes, cells = [], []
    gr, gc = GRIDS_IN_COMMUNITY
    cr, cc = COMMUNITIES_IN_STREET
    sr, sc = STREETS_IN_DISTRICT
    for d, district in enumerate(district_codes(districts)):
        d_row, d_col = divmod(d, DISTRICT_COLUMNS)
        for s in range(_per(STREETS_IN_DISTRICT)):
            s_row, s_col = divmod(s, sc)
            street = f"{district}{s + 1:03d}"
            for c in range(_per(COMMUNITIES_IN_STREET)):
                c_row, c_col = divmod(c, cc)
                community = f"{street}{c + 1:03d}"
                top = ((d_row * sr + s_row) * cr + c_row) * gr
                left = ((d_col * sc + s_col) * cc + c_col) * gc
                for g in range(GRIDS_PER_COMMUNITY):
                    if len(codes) == n:
                        return codes, cells, districts
                    row, col = divmod(g, gc)  # west to east, then the next row south
                    codes.append(f"{community}{g + 1:03d}")
                    cells.append((top + row, left + col))
    return codes, cells, districts


def generate_city(n: int = DEFAULT_GRIDS, seed: int = DEFAULT_SEED) -> City:
    if n < 1:
        raise ValueError("a city has at least one grid")
    codes, cells, districts = _layout(n)
    rows = math.ceil(districts / DISTRICT_COLUMNS) * DISTRICT_ROWS
    cols = min(districts, DISTRICT_COLUMNS) * DISTRICT_COLS
    north = CENTRE_LAT + rows * CELL_LAT / 2
    west = CENTRE_LON - cols * CELL_LON / 2
    rng = np.random.default_rng(seed)
    # Lattice corners (rows + 1) x (cols + 1), row 0 the northern edge; and the midpoints of
    # horizontal edges (rows + 1) x cols and of vertical edges rows x (cols + 1). Each is
    # drawn once, so both cells that share it use the same coordinates.
    r = np.arange(rows + 1)[:, None]
    c = np.arange(cols + 1)[None, :]
    corner_lat = north - r * CELL_LAT + rng.uniform(-CORNER_JITTER, CORNER_JITTER, (rows + 1, cols + 1)) * CELL_LAT
    corner_lon = west + c * CELL_LON + rng.uniform(-CORNER_JITTER, CORNER_JITTER, (rows + 1, cols + 1)) * CELL_LON
    h_lat = north - r * CELL_LAT + rng.uniform(-MIDPOINT_JITTER, MIDPOINT_JITTER, (rows + 1, cols)) * CELL_LAT
    h_lon = west + (c[:, :-1] + 0.5) * CELL_LON + rng.uniform(-MIDPOINT_JITTER, MIDPOINT_JITTER,
                                                               (rows + 1, cols)) * CELL_LON
    v_lat = north - (r[:-1] + 0.5) * CELL_LAT + rng.uniform(-MIDPOINT_JITTER, MIDPOINT_JITTER,
                                                             (rows, cols + 1)) * CELL_LAT
    v_lon = west + c * CELL_LON + rng.uniform(-MIDPOINT_JITTER, MIDPOINT_JITTER, (rows, cols + 1)) * CELL_LON

    i = np.array([cell[0] for cell in cells])
    j = np.array([cell[1] for cell in cells])
    # The ring, counter-clockwise from the south-west corner: SW, S mid, SE, E mid, NE, N mid, NW, W mid.
    ring_lon = np.stack([corner_lon[i + 1, j], h_lon[i + 1, j], corner_lon[i + 1, j + 1], v_lon[i, j + 1],
                         corner_lon[i, j + 1], h_lon[i, j], corner_lon[i, j], v_lon[i, j]], axis=1)
    ring_lat = np.stack([corner_lat[i + 1, j], h_lat[i + 1, j], corner_lat[i + 1, j + 1], v_lat[i, j + 1],
                         corner_lat[i, j + 1], h_lat[i, j], corner_lat[i, j], v_lat[i, j]], axis=1)
    coords = np.stack([ring_lon, ring_lat], axis=2)  # (n, 8, 2), x = lon, y = lat
    polygons = shapely.normalize(shapely.polygons(coords))
    invalid = np.flatnonzero(~shapely.is_valid(polygons))
    if invalid.size:
        raise AssertionError(f"generated an invalid polygon for {codes[invalid[0]]}: "
                             f"{shapely.is_valid_reason(polygons[invalid[0]])}")
    south = north - rows * CELL_LAT
    east = west + cols * CELL_LON
    return City(grids=dict(zip(codes, polygons.tolist())), bounds=(west, south, east, north), seed=seed,
                cells=dict(zip(codes, cells)))


@dataclass(frozen=True)
class Queries:
    """N query points as (lat, lon) Python floats, and the grid each lies in (None outside)."""

    lat: list[float]
    lon: list[float]
    expected: list[str | None]

    def __len__(self) -> int:
        return len(self.lat)

    def pairs(self) -> list[tuple[float, float]]:
        return list(zip(self.lat, self.lon))


def query_points(city: City, n: int, *, outside: float = 0.05, seed: int | None = None) -> Queries:
    """n points in random order: about (1 - outside) of them in a grid chosen uniformly, drawn
    uniformly from its polygon (strictly inside: the expected grid is the only one); the rest
    in a band of up to 2 km around the city's lattice, outside every grid."""
    rng = np.random.default_rng(city.seed + 1 if seed is None else seed)
    codes = list(city.grids)
    polygons = np.array([city.grids[c] for c in codes], dtype=object)
    outside_n = int(round(n * outside))
    inside_n = n - outside_n

    which = rng.integers(0, len(codes), inside_n)
    boxes = shapely.bounds(polygons[which])  # (k, 4): minx, miny, maxx, maxy
    lon = np.empty(inside_n)
    lat = np.empty(inside_n)
    todo = np.arange(inside_n)
    while todo.size:  # rejection sampling inside each chosen polygon's box
        b = boxes[todo]
        x = rng.uniform(b[:, 0], b[:, 2])
        y = rng.uniform(b[:, 1], b[:, 3])
        ok = shapely.contains_xy(polygons[which[todo]], x, y)
        lon[todo[ok]], lat[todo[ok]] = x[ok], y[ok]
        todo = todo[~ok]

    # Outside: a band from just beyond the jittered edge of the lattice to 2 km (0.018°) out.
    west, south, east, north = city.bounds
    margin_lat, margin_lon = CELL_LAT * (CORNER_JITTER + 0.05), CELL_LON * (CORNER_JITTER + 0.05)
    band = 0.018
    side = rng.integers(0, 4, outside_n)
    depth = rng.uniform(0, band, outside_n)
    o_lat = np.where(side == 0, north + margin_lat + depth,
                     np.where(side == 1, south - margin_lat - depth,
                              rng.uniform(south - margin_lat - band, north + margin_lat + band, outside_n)))
    o_lon = np.where(side == 2, east + margin_lon + depth,
                     np.where(side == 3, west - margin_lon - depth,
                              rng.uniform(west - margin_lon - band, east + margin_lon + band, outside_n)))

    all_lat = np.concatenate([lat, o_lat])
    all_lon = np.concatenate([lon, o_lon])
    expected = [codes[k] for k in which] + [None] * outside_n
    order = rng.permutation(n)
    return Queries(lat=all_lat[order].tolist(), lon=all_lon[order].tolist(),
                   expected=[expected[k] for k in order])
