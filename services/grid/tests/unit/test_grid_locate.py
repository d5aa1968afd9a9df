"""Locate: a point maps to exactly one grid, or to none outside every grid. Checked on a few
hundred generated grids against a brute-force `polygon.covers(point)` over all of them."""
from __future__ import annotations

import random

import pytest
from shapely import Point, Polygon

from civicgrid_grid.domain.geometry import GridMap, InvalidGeometry, to_geojson
from civicgrid_grid.domain.rules import InvalidInput

from grid_builders import ADMIN, T0, grid, grid_code, registry, ticks

COLUMNS, ROWS = 20, 15  # 300 grids
WEST, SOUTH, STEP = 118.781, 32.021, 0.0009  # about 85 by 100 m a grid


def lattice(seed: int = 11) -> list[list[tuple[float, float]]]:
    """Jittered lattice vertices: neighbouring cells share their vertices exactly, so they touch
    along whole edges; the quadrilaterals are irregular, not boxes."""
    rng = random.Random(seed)
    jitter = STEP * 0.3
    return [[(WEST + i * STEP + (rng.uniform(-jitter, jitter) if 0 < i < COLUMNS else 0),
              SOUTH + j * STEP + (rng.uniform(-jitter, jitter) if 0 < j < ROWS else 0))
             for j in range(ROWS + 1)] for i in range(COLUMNS + 1)]


def cells(vertices: list[list[tuple[float, float]]]) -> dict[str, Polygon]:
    polygons = {}
    for i in range(COLUMNS):
        for j in range(ROWS):
            ring = [vertices[i][j], vertices[i + 1][j], vertices[i + 1][j + 1], vertices[i][j + 1]]
            # Numbered west to east, north to south, as grid codes are.
            polygons[grid_code(1 + (ROWS - 1 - j) * COLUMNS + i)] = Polygon(ring)
    return polygons


@pytest.fixture(scope="module")
def generated():
    vertices = lattice()
    polygons = cells(vertices)
    r, t = registry(), ticks(T0)
    for code, polygon in polygons.items():
        r.define_grid(grid(int(code[-3:]), to_geojson(polygon)), by=ADMIN, at=next(t))
    return r, vertices


def brute_force(r, point: Point) -> list[str]:
    return sorted(code for code, g in r.grids.items() if g.polygon.covers(point))


def test_the_generated_registry_holds_300_grids_that_touch_but_never_overlap(generated) -> None:
    r, _ = generated
    assert len(r.grids) == COLUMNS * ROWS == len(r.grid_map())


def test_locate_agrees_with_brute_force_covers_on_random_points(generated) -> None:
    r, _ = generated
    rng = random.Random(7)
    located = outside = 0
    for _ in range(3000):
        # The box spans the lattice and a margin around it that lies in no grid.
        lat, lon = rng.uniform(32.019, 32.037), rng.uniform(118.779, 118.801)
        covering = brute_force(r, Point(lon, lat))
        assert len(covering) <= 1, "a random point is inside one grid or on no edge"
        found = r.locate(lat, lon)
        assert found == (covering[0] if covering else None)
        located += found is not None
        outside += found is None
    assert located > 1500 and outside > 500  # both cases were exercised


def test_a_point_on_shared_edges_and_corners_gets_exactly_one_grid_the_lowest_code(generated) -> None:
    r, vertices = generated
    shared = 0
    for i in range(1, COLUMNS):
        for j in range(1, ROWS):
            lon, lat = vertices[i][j]
            covering = brute_force(r, Point(lon, lat))
            assert len(covering) == 4  # an inner lattice vertex is the corner of four grids
            assert r.locate(lat, lon) == covering[0] == r.locate(lat, lon)
            assert r.grid_map().covering(Point(lon, lat)) == covering
            shared += 1
    assert shared == (COLUMNS - 1) * (ROWS - 1)


def test_locate_outside_every_grid_is_none_and_a_bad_coordinate_is_refused(generated) -> None:
    r, _ = generated
    assert r.locate(32.05, 118.79) is None
    assert GridMap({}).locate(32.03, 118.79) is None
    with pytest.raises(InvalidGeometry) as refused:
        r.locate(118.79, 32.03)  # swapped
    assert refused.value.field == "lat"
    with pytest.raises(InvalidGeometry) as refused:
        r.locate(32.03, float("nan"))
    assert refused.value.field == "lon"


def test_a_new_grid_is_refused_where_generated_grids_already_are(generated) -> None:
    r, vertices = generated
    (lon0, lat0), (lon1, lat1) = vertices[5][5], vertices[6][6]
    inner = Polygon([(lon0, lat0), (lon1, lat0), (lon1, lat1), (lon0, lat1)])
    with pytest.raises(InvalidInput) as refused:
        r.define_grid(grid(999, to_geojson(inner)), by=ADMIN, at=T0.replace(year=2027))
    assert refused.value.code == "overlaps_grid"
